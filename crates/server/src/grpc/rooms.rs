//! `palaver.v1.Rooms`: the same domain calls as `/api/v1/rooms/*` and
//! `/api/v1/dms`. Who may do what is decided in the domain.

use palaver_domain::accounts::UserLookup;
use palaver_domain::model::Role;
use palaver_domain::rooms::RoomSettings;
use palaver_domain::{Error, RoomId, UserId};
use palaver_grpc::records;
use palaver_grpc::v1::{self, rooms_server::Rooms, user_ref};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::status::{self, ErrorStatus};
use crate::node::AppState;
use crate::wire;

pub struct RoomsApi {
    state: AppState,
}

impl RoomsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn members_of(&self, members: &[palaver_domain::model::Member]) -> Vec<v1::Member> {
        members
            .iter()
            .map(|m| records::member(&wire::member(m, self.state.presence.is_online(m.user.id))))
            .collect()
    }
}

fn room(room: &palaver_domain::model::Room) -> Response<v1::Room> {
    Response::new(records::room(&wire::room(room)))
}

fn empty() -> Response<v1::Empty> {
    Response::new(v1::Empty {})
}

fn lookup(user: Option<v1::UserRef>) -> Result<UserLookup, Status> {
    match user.and_then(|user| user.user) {
        Some(user_ref::User::Id(id)) => Ok(UserLookup::Id(UserId(id))),
        Some(user_ref::User::Username(name)) => Ok(UserLookup::Username(name)),
        None => Err(status::invalid("`user` needs an `id` or a `username`")),
    }
}

#[tonic::async_trait]
impl Rooms for RoomsApi {
    async fn create_room(
        &self,
        request: Request<v1::CreateRoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let created = self
            .state
            .services
            .rooms
            .create(user, &req.name, req.password.as_deref())
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&created))
    }

    async fn join_room(
        &self,
        request: Request<v1::JoinRoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let user = Caller::bearer(&request)?.user;
        let from = Caller::of(&request)?.from;
        let req = request.into_inner();
        let joined = self
            .state
            .services
            .rooms
            .join(user, &req.code, req.password.as_deref(), from)
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&joined))
    }

    async fn direct_room(
        &self,
        request: Request<v1::DirectRoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let user = Caller::bearer(&request)?.user;
        let other = lookup(request.into_inner().user)?;
        let direct = self
            .state
            .services
            .direct_room(user, &other)
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&direct))
    }

    async fn get_room(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let user = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let found = self
            .state
            .services
            .rooms
            .get(user, id)
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&found))
    }

    async fn list_rooms(
        &self,
        request: Request<v1::Empty>,
    ) -> Result<Response<v1::RoomList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let rooms = self
            .state
            .services
            .rooms
            .list(user)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::RoomList {
            rooms: rooms
                .iter()
                .map(|summary| records::room_summary(&wire::room_summary(summary)))
                .collect(),
        }))
    }

    async fn list_members(
        &self,
        request: Request<v1::MembersRequest>,
    ) -> Result<Response<v1::MemberList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let page = self.member_page(user, request.into_inner()).await?;
        Ok(Response::new(v1::MemberList {
            members: self.members_of(&page.members),
            next: next_member(&page),
        }))
    }

    async fn list_online(
        &self,
        request: Request<v1::MembersRequest>,
    ) -> Result<Response<v1::UserList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let page = self.member_page(user, request.into_inner()).await?;
        let users = page
            .members
            .iter()
            .filter(|m| self.state.presence.is_online(m.user.id))
            .map(|m| records::user(&wire::user(&m.user)))
            .collect();
        Ok(Response::new(v1::UserList {
            users,
            next: next_member(&page),
        }))
    }

    async fn leave(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let user = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let services = &self.state.services;
        services.rooms.leave(user, id).await.map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn invite(
        &self,
        request: Request<v1::InviteRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let who = lookup(req.user)?;
        let services = &self.state.services;
        services
            .invite(actor, RoomId(req.room_id), &who)
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn list_invitations(
        &self,
        request: Request<v1::InvitationsRequest>,
    ) -> Result<Response<v1::InvitationList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let rooms = &self.state.services.rooms;
        let page = rooms
            .invitations(user, req.after.map(RoomId), req.limit.unwrap_or(50))
            .await
            .map_err(ErrorStatus)?;
        let next = match page.has_more {
            true => page.invitations.last().map(|i| i.room_id.0),
            false => None,
        };
        Ok(Response::new(v1::InvitationList {
            invitations: page
                .invitations
                .iter()
                .map(|i| v1::Invitation {
                    room_id: i.room_id.0,
                    room_name: i.room_name.clone(),
                    by: i.by.0,
                    created_at: i.created_at.to_rfc3339(),
                })
                .collect(),
            next,
        }))
    }

    async fn accept_invitation(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let user = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let rooms = &self.state.services.rooms;
        let joined = rooms
            .accept_invitation(user, id)
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&joined))
    }

    async fn decline_invitation(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let user = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let rooms = &self.state.services.rooms;
        rooms
            .decline_invitation(user, id)
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn kick(
        &self,
        request: Request<v1::MemberRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let rooms = &self.state.services.rooms;
        rooms
            .kick(actor, RoomId(req.room_id), UserId(req.user_id))
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn ban(
        &self,
        request: Request<v1::MemberRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let services = &self.state.services;
        services
            .ban(actor, RoomId(req.room_id), UserId(req.user_id))
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn unban(
        &self,
        request: Request<v1::MemberRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let rooms = &self.state.services.rooms;
        rooms
            .unban(actor, RoomId(req.room_id), UserId(req.user_id))
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn set_role(
        &self,
        request: Request<v1::SetRoleRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let role = match Role::parse(&req.role) {
            Some(role @ (Role::Admin | Role::Member)) => role,
            Some(Role::Owner) => {
                let err = Error::invalid("role", "transfer ownership with TransferOwnership");
                return Err(ErrorStatus(err).into());
            }
            None => {
                let err = Error::invalid("role", "must be `admin` or `member`");
                return Err(ErrorStatus(err).into());
            }
        };
        let rooms = &self.state.services.rooms;
        rooms
            .set_role(actor, RoomId(req.room_id), UserId(req.user_id), role)
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn transfer_ownership(
        &self,
        request: Request<v1::MemberRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let rooms = &self.state.services.rooms;
        rooms
            .transfer_ownership(actor, RoomId(req.room_id), UserId(req.user_id))
            .await
            .map_err(ErrorStatus)?;
        Ok(empty())
    }

    async fn update_room(
        &self,
        request: Request<v1::UpdateRoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let settings = RoomSettings {
            name: req.name,
            password: req.password,
        };
        let rooms = &self.state.services.rooms;
        let updated = rooms
            .update(actor, RoomId(req.room_id), settings)
            .await
            .map_err(ErrorStatus)?;
        Ok(room(&updated))
    }

    async fn rotate_code(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Room>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let rooms = &self.state.services.rooms;
        let rotated = rooms.rotate_code(actor, id).await.map_err(ErrorStatus)?;
        Ok(room(&rotated))
    }

    async fn delete_room(
        &self,
        request: Request<v1::RoomRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let actor = Caller::bearer(&request)?.user;
        let id = RoomId(request.into_inner().room_id);
        let rooms = &self.state.services.rooms;
        rooms.delete(actor, id).await.map_err(ErrorStatus)?;
        Ok(empty())
    }
}

impl RoomsApi {
    async fn member_page(
        &self,
        user: UserId,
        req: v1::MembersRequest,
    ) -> Result<palaver_domain::rooms::MemberPage, Status> {
        self.state
            .services
            .rooms
            .members(
                user,
                RoomId(req.room_id),
                req.after.map(UserId),
                req.limit.unwrap_or(200),
            )
            .await
            .map_err(|e| ErrorStatus(e).into())
    }
}

/// The `next` cursor of a page of members: its last user id, if more follow.
fn next_member(page: &palaver_domain::rooms::MemberPage) -> Option<i64> {
    match page.has_more {
        true => page.members.last().map(|m| m.user.id.0),
        false => None,
    }
}
