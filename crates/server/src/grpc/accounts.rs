//! `palaver.v1.Accounts`: the same domain calls as `POST /api/v1/auth/*`.

use palaver_domain::accounts::Session;
use palaver_grpc::records;
use palaver_grpc::v1::{self, accounts_server::Accounts};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::status::ErrorStatus;
use crate::node::AppState;
use crate::wire;

pub struct AccountsApi {
    state: AppState,
}

impl AccountsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn tokens(session: Session) -> v1::Tokens {
    v1::Tokens {
        access_token: session.access_token,
        refresh_token: session.refresh_token,
        expires_in: session.expires_in,
        user: Some(records::user(&wire::user(&session.user))),
    }
}

#[tonic::async_trait]
impl Accounts for AccountsApi {
    async fn register(
        &self,
        request: Request<v1::RegisterRequest>,
    ) -> Result<Response<v1::User>, Status> {
        let from = Caller::of(&request)?.from;
        let req = request.into_inner();
        let user = self
            .state
            .services
            .accounts
            .register(
                &req.username,
                req.password,
                req.display_name.as_deref(),
                req.email.as_deref(),
                from,
            )
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(records::user(&wire::user(&user))))
    }

    async fn login(
        &self,
        request: Request<v1::LoginRequest>,
    ) -> Result<Response<v1::Tokens>, Status> {
        let caller = Caller::of(&request)?.clone();
        let req = request.into_inner();
        let session = self
            .state
            .services
            .accounts
            .login(
                &req.username,
                &req.password,
                caller.from,
                caller.user_agent.as_deref(),
            )
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(tokens(session)))
    }

    async fn refresh(
        &self,
        request: Request<v1::RefreshRequest>,
    ) -> Result<Response<v1::Tokens>, Status> {
        let from = Caller::of(&request)?.from;
        let req = request.into_inner();
        let session = self
            .state
            .services
            .accounts
            .refresh(&req.refresh_token, from)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(tokens(session)))
    }

    async fn logout(
        &self,
        request: Request<v1::LogoutRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let from = Caller::of(&request)?.from;
        let req = request.into_inner();
        self.state
            .services
            .accounts
            .logout(&req.refresh_token, from)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::Empty {}))
    }

    async fn me(&self, request: Request<v1::Empty>) -> Result<Response<v1::User>, Status> {
        let user = Caller::bearer(&request)?.user;
        let user = self
            .state
            .services
            .accounts
            .user(user)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(records::user(&wire::user(&user))))
    }
}
