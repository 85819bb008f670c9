//! REST calls.

mod admin;
mod attachments;
mod mentions;
mod search;

use palaver_protocol::rest::{
    Accepted, Account, PasswordResetCompleteRequest, PasswordResetConfirmRequest,
    PasswordResetRequest, ResetTokenResponse, VerifyEmailRequest,
};
use palaver_protocol::rest::{
    BanInfo, ChangePasswordRequest, CreateRoomRequest, DeleteAccountRequest, DirectRequest,
    EditMessageRequest, HistoryQuery, InvitationPage, InviteRequest, JoinRoomRequest, Jwks,
    LoginRequest, LogoutRequest, MarkReadRequest, Member, Message, MessagePage, PostMessageRequest,
    ReadMarker, RefreshRequest, RegisterRequest, RoleRequest, Room, RoomSummary, SessionInfo,
    TokenResponse, UpdateProfileRequest, UpdateRoomRequest, User, UserIdRequest, UserPage, UserRef,
};
use palaver_protocol::ErrorBody;
use reqwest::{Method, RequestBuilder, Response};
use rustls::ClientConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tls::{describe, Trust};
use crate::ws::{WsAuth, WsConnection};
use crate::{ClientError, Result};

/// Cheap to clone; `with_token` returns a client acting as a user.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    trust: Trust,
}

impl Client {
    /// `base` is the server's root, e.g. `http://127.0.0.1:8080`, or
    /// `https://chat.example.com` with a certificate the system trusts.
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_trust(base, Trust::default())
    }

    /// A client of `base` trusting `trust` over TLS: its REST calls, and the
    /// WebSocket of [`Client::connect`].
    pub fn with_trust(base: impl Into<String>, trust: Trust) -> Self {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(ClientConfig::clone(&trust.http1()))
            .build()
            .expect("a rustls configuration and no other setting cannot fail to build");
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            token: None,
            trust,
        }
    }

    /// What this client trusts over TLS.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` (e.g. `/api/v1/rooms`) carrying the bearer token, if any.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<User> {
        self.register_with(RegisterRequest {
            username: username.into(),
            password: password.into(),
            display_name: display_name.map(Into::into),
            email: None,
        })
        .await
    }

    /// Registers with every field of the request (an e-mail address too).
    pub async fn register_with(&self, request: RegisterRequest) -> Result<User> {
        self.call(Method::POST, "/api/v1/auth/register", Some(&request))
            .await
    }

    /// The caller's own account, e-mail address included.
    pub async fn account(&self) -> Result<Account> {
        self.call::<(), _>(Method::GET, "/api/v1/users/me", None)
            .await
    }

    /// Sets the account's address (unverified; a code is mailed to it).
    pub async fn set_email(&self, email: &str) -> Result<Account> {
        let body = UpdateProfileRequest {
            display_name: None,
            email: Some(email.into()),
        };
        self.call(Method::PATCH, "/api/v1/users/me", Some(&body))
            .await
    }

    pub async fn verify_email(&self, code: &str) -> Result<Account> {
        let body = VerifyEmailRequest { code: code.into() };
        self.call(Method::POST, "/api/v1/auth/email/verify", Some(&body))
            .await
    }

    /// Asks for a reset code for `login` (a username or an address).
    pub async fn request_password_reset(&self, login: &str) -> Result<Accepted> {
        let body = PasswordResetRequest {
            login: login.into(),
        };
        self.call(Method::POST, "/api/v1/auth/password-reset", Some(&body))
            .await
    }

    pub async fn resend_password_reset(&self, login: &str) -> Result<Accepted> {
        let body = PasswordResetRequest {
            login: login.into(),
        };
        self.call(
            Method::POST,
            "/api/v1/auth/password-reset/resend",
            Some(&body),
        )
        .await
    }

    pub async fn confirm_password_reset(
        &self,
        login: &str,
        code: &str,
    ) -> Result<ResetTokenResponse> {
        let body = PasswordResetConfirmRequest {
            login: login.into(),
            code: code.into(),
        };
        self.call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Some(&body),
        )
        .await
    }

    pub async fn complete_password_reset(
        &self,
        reset_token: &str,
        new_password: &str,
    ) -> Result<()> {
        let body = PasswordResetCompleteRequest {
            reset_token: reset_token.into(),
            new_password: new_password.into(),
        };
        self.call_empty(
            Method::POST,
            "/api/v1/auth/password-reset/complete",
            Some(&body),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<TokenResponse> {
        let body = LoginRequest {
            username: username.into(),
            password: password.into(),
            cookie: false,
        };
        self.call(Method::POST, "/api/v1/auth/login", Some(&body))
            .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse> {
        let body = RefreshRequest {
            refresh_token: Some(refresh_token.into()),
            cookie: false,
        };
        self.call(Method::POST, "/api/v1/auth/refresh", Some(&body))
            .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        let body = LogoutRequest {
            refresh_token: Some(refresh_token.into()),
        };
        self.call_empty(Method::POST, "/api/v1/auth/logout", Some(&body))
            .await
    }

    /// Ends every login of this account, this one included.
    pub async fn logout_all(&self) -> Result<()> {
        self.call_empty::<()>(Method::POST, "/api/v1/auth/logout-all", None)
            .await
    }

    /// This account's live logins, newest first.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.call::<(), _>(Method::GET, "/api/v1/auth/sessions", None)
            .await
    }

    pub async fn end_session(&self, id: &str) -> Result<()> {
        let path = format!(
            "/api/v1/auth/sessions/{}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Every other login of the account ends; this one stays signed in.
    pub async fn change_password(&self, current: &str, new_password: &str) -> Result<()> {
        let body = ChangePasswordRequest {
            current_password: current.into(),
            new_password: new_password.into(),
        };
        self.call_empty(Method::POST, "/api/v1/auth/password", Some(&body))
            .await
    }

    /// Deletes this account (`erase`: its message bodies too); every login
    /// of it ends.
    pub async fn delete_account(&self, password: &str, erase: bool) -> Result<()> {
        let body = DeleteAccountRequest {
            password: password.into(),
        };
        let path = if erase {
            "/api/v1/users/me?erase=true"
        } else {
            "/api/v1/users/me"
        };
        self.call_empty(Method::DELETE, path, Some(&body)).await
    }

    /// The public keys access tokens are signed with (`/.well-known/jwks.json`).
    pub async fn jwks(&self) -> Result<Jwks> {
        self.call::<(), _>(Method::GET, "/.well-known/jwks.json", None)
            .await
    }

    pub async fn me(&self) -> Result<User> {
        self.call::<(), _>(Method::GET, "/api/v1/users/me", None)
            .await
    }

    pub async fn create_room(&self, name: &str, password: Option<&str>) -> Result<Room> {
        let body = CreateRoomRequest {
            name: name.into(),
            password: password.map(Into::into),
        };
        self.call(Method::POST, "/api/v1/rooms", Some(&body)).await
    }

    pub async fn join_room(&self, code: &str, password: Option<&str>) -> Result<Room> {
        let body = JoinRoomRequest {
            code: code.into(),
            password: password.map(Into::into),
        };
        self.call(Method::POST, "/api/v1/rooms/join", Some(&body))
            .await
    }

    pub async fn rooms(&self) -> Result<Vec<RoomSummary>> {
        self.call::<(), _>(Method::GET, "/api/v1/rooms", None).await
    }

    pub async fn room(&self, id: i64) -> Result<Room> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/rooms/{id}"), None)
            .await
    }

    pub async fn members(&self, id: i64) -> Result<Vec<Member>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/rooms/{id}/members"), None)
            .await
    }

    pub async fn leave(&self, id: i64) -> Result<()> {
        self.call_empty::<()>(Method::POST, &format!("/api/v1/rooms/{id}/leave"), None)
            .await
    }

    pub async fn history(&self, room: i64, query: &HistoryQuery) -> Result<MessagePage> {
        let mut params = Vec::new();
        if let Some(before) = query.before {
            params.push(format!("before={before}"));
        }
        if let Some(after) = query.after {
            params.push(format!("after={after}"));
        }
        if let Some(limit) = query.limit {
            params.push(format!("limit={limit}"));
        }
        let path = format!("/api/v1/rooms/{room}/messages?{}", params.join("&"));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn post_message(
        &self,
        room: i64,
        body: &str,
        client_id: Option<&str>,
    ) -> Result<Message> {
        self.post_reply(room, body, client_id, None).await
    }

    /// Posts a message answering `reply_to` (a seq of the same room).
    pub async fn post_reply(
        &self,
        room: i64,
        body: &str,
        client_id: Option<&str>,
        reply_to: Option<u64>,
    ) -> Result<Message> {
        let body = PostMessageRequest {
            body: body.into(),
            client_id: client_id.map(Into::into),
            reply_to,
            attachments: Vec::new(),
        };
        self.call(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&body),
        )
        .await
    }

    pub async fn edit_message(&self, room: i64, seq: u64, body: &str) -> Result<Message> {
        let body = EditMessageRequest { body: body.into() };
        self.call(
            Method::PATCH,
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            Some(&body),
        )
        .await
    }

    pub async fn delete_message(&self, room: i64, seq: u64) -> Result<()> {
        self.call_empty::<()>(
            Method::DELETE,
            &format!("/api/v1/rooms/{room}/messages/{seq}"),
            None,
        )
        .await
    }

    /// Reacts to a message with `emoji` (one emoji, or `:name:`); again
    /// changes nothing.
    pub async fn react(&self, room: i64, seq: u64, emoji: &str) -> Result<()> {
        self.call_empty::<()>(Method::PUT, &reaction_path(room, seq, emoji), None)
            .await
    }

    /// Takes one's reaction back; one not there changes nothing.
    pub async fn unreact(&self, room: i64, seq: u64, emoji: &str) -> Result<()> {
        self.call_empty::<()>(Method::DELETE, &reaction_path(room, seq, emoji), None)
            .await
    }

    /// Invites `user` into the room (owner or admin); they become a member
    /// by accepting.
    pub async fn invite(&self, room: i64, user: UserRef) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/invitations");
        self.call_empty(Method::POST, &path, Some(&InviteRequest { user }))
            .await
    }

    /// The invitations waiting for an answer, by room id, after `after`.
    pub async fn invitations(&self, after: Option<i64>, limit: u32) -> Result<InvitationPage> {
        let mut path = format!("/api/v1/invitations?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Accepts the invitation into `room`: a member from now on.
    pub async fn accept_invitation(&self, room: i64) -> Result<Room> {
        let path = format!("/api/v1/invitations/{room}/accept");
        self.call::<(), _>(Method::POST, &path, None).await
    }

    pub async fn decline_invitation(&self, room: i64) -> Result<()> {
        let path = format!("/api/v1/invitations/{room}");
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// The room's members who are online now.
    pub async fn online(&self, room: i64) -> Result<Vec<Member>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/rooms/{room}/online"), None)
            .await
    }

    pub async fn kick(&self, room: i64, user: i64) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/members/{user}");
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// `role`: `admin` or `member` (owner only).
    pub async fn set_role(&self, room: i64, user: i64, role: &str) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/members/{user}/role");
        let body = RoleRequest { role: role.into() };
        self.call_empty(Method::PUT, &path, Some(&body)).await
    }

    pub async fn transfer_ownership(&self, room: i64, user: i64) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/owner");
        self.call_empty(Method::POST, &path, Some(&UserIdRequest { user_id: user }))
            .await
    }

    pub async fn ban(&self, room: i64, user: i64) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/bans");
        self.call_empty(Method::POST, &path, Some(&UserIdRequest { user_id: user }))
            .await
    }

    pub async fn bans(&self, room: i64) -> Result<Vec<BanInfo>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/rooms/{room}/bans"), None)
            .await
    }

    pub async fn unban(&self, room: i64, user: i64) -> Result<()> {
        let path = format!("/api/v1/rooms/{room}/bans/{user}");
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }

    /// Renames the room and/or sets (`Some("")`: removes) its password.
    pub async fn update_room(
        &self,
        room: i64,
        name: Option<&str>,
        password: Option<&str>,
    ) -> Result<Room> {
        let body = UpdateRoomRequest {
            name: name.map(Into::into),
            password: password.map(Into::into),
        };
        self.call(Method::PATCH, &format!("/api/v1/rooms/{room}"), Some(&body))
            .await
    }

    pub async fn rotate_code(&self, room: i64) -> Result<Room> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/rooms/{room}/code"), None)
            .await
    }

    pub async fn delete_room(&self, room: i64) -> Result<()> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/rooms/{room}"), None)
            .await
    }

    /// The direct room with `user` (an id or a username).
    pub async fn direct_room(&self, user: UserRef) -> Result<Room> {
        self.call(Method::POST, "/api/v1/dms", Some(&DirectRequest { user }))
            .await
    }

    pub async fn search_users(
        &self,
        q: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage> {
        let mut url = url_with_query("/api/v1/users", &[("q", q)]);
        if let Some(after) = after {
            url = url_with_query(&url, &[("after", after)]);
        }
        if let Some(limit) = limit {
            url = url_with_query(&url, &[("limit", &limit.to_string())]);
        }
        self.call::<(), _>(Method::GET, &url, None).await
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/users/{id}"), None)
            .await
    }

    pub async fn update_display_name(&self, display_name: &str) -> Result<User> {
        let body = UpdateProfileRequest {
            display_name: Some(display_name.into()),
            email: None,
        };
        self.call(Method::PATCH, "/api/v1/users/me", Some(&body))
            .await
    }

    /// Moves the caller's read marker forward; returns where it now is.
    pub async fn mark_read(&self, room: i64, seq: u64) -> Result<ReadMarker> {
        self.call(
            Method::PUT,
            &format!("/api/v1/rooms/{room}/read"),
            Some(&MarkReadRequest { seq }),
        )
        .await
    }

    pub async fn read_markers(&self, room: i64) -> Result<Vec<ReadMarker>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/rooms/{room}/read-markers"),
            None,
        )
        .await
    }

    /// Opens `/api/v1/ws` and authenticates with this client's token in the
    /// `Authorization` header, returning once `ready` arrived.
    pub async fn connect(&self) -> Result<WsConnection> {
        let token = self
            .token
            .clone()
            .ok_or_else(|| ClientError::Protocol("no access token".into()))?;
        WsConnection::connect_with(&self.base, WsAuth::Header(token), &self.trust).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let response = self.send(method, path, body).await?;
        response
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    async fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<()> {
        self.send(method, path, body).await.map(drop)
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        checked(response).await
    }
}

/// `response` if it succeeded, else its error body as `ClientError::Api`.
async fn checked(response: Response) -> Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        }),
        Err(_) => Err(ClientError::Protocol(format!(
            "status {status} without an error body: {text}"
        ))),
    }
}

/// `path` with `pairs` appended as URL-encoded query parameters.
/// A reaction's path, its emoji percent-encoded as one segment.
fn reaction_path(room: i64, seq: u64, emoji: &str) -> String {
    let emoji: String = url::form_urlencoded::byte_serialize(emoji.as_bytes()).collect();
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}")
}

fn url_with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = path.to_owned();
    for (key, value) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(key);
        out.push('=');
        out.push_str(&url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>());
    }
    out
}
