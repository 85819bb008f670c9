//! `palaver.v1.Messages`: the same domain calls as
//! `/api/v1/rooms/{id}/messages` and `PUT /api/v1/rooms/{id}/read`.

use palaver_domain::error::Error;
use palaver_domain::messages::{HistoryRange, SearchAsked};
use palaver_domain::time::Timestamp;
use palaver_domain::RoomId;
use palaver_grpc::records;
use palaver_grpc::v1::{self, messages_server::Messages};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::status::{self, ErrorStatus};
use crate::node::AppState;
use crate::wire;

pub struct MessagesApi {
    state: AppState,
}

impl MessagesApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// Seqs are stored as signed 64-bit integers, as REST bounds them too.
fn seq(value: u64, field: &str) -> Result<u64, Status> {
    if value > i64::MAX as u64 {
        return Err(status::invalid(format!("`{field}` is out of range")));
    }
    Ok(value)
}

fn message(message: &palaver_domain::model::Message) -> v1::Message {
    records::message(&wire::message(message))
}

#[tonic::async_trait]
impl Messages for MessagesApi {
    async fn send(
        &self,
        request: Request<v1::SendRequest>,
    ) -> Result<Response<v1::Message>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let reply_to = req.reply_to.map(|s| seq(s, "reply_to")).transpose()?;
        let posted = self
            .state
            .services
            .messages
            .post(
                user,
                RoomId(req.room_id),
                req.body,
                req.client_id,
                reply_to,
                req.attachments,
            )
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(message(&posted.message)))
    }

    async fn history(
        &self,
        request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::MessageList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let before = req.before_seq.map(|s| seq(s, "before_seq")).transpose()?;
        let after = req.after_seq.map(|s| seq(s, "after_seq")).transpose()?;
        let range = match (before, after) {
            (before, None) => HistoryRange::Before(before),
            (None, Some(after)) => HistoryRange::After(after),
            (Some(before), Some(after)) => HistoryRange::Between { after, before },
        };
        let limit = (req.limit != 0).then_some(req.limit);
        let page = self
            .state
            .services
            .messages
            .history(user, RoomId(req.room_id), range, limit)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::MessageList {
            messages: wire::history(&page).iter().map(records::message).collect(),
            has_more: page.has_more,
        }))
    }

    async fn search(
        &self,
        request: Request<v1::SearchRequest>,
    ) -> Result<Response<v1::SearchResults>, Status> {
        let user = Caller::bearer(&request)?.user;
        let from = Caller::of(&request)?.from;
        let req = request.into_inner();
        let before = (req.before.as_deref())
            .map(|raw| {
                Timestamp::parse_rfc3339(raw)
                    .ok_or_else(|| Error::invalid("before", "must be an RFC 3339 time"))
            })
            .transpose()
            .map_err(ErrorStatus)?;
        let offset = (req.cursor.as_deref())
            .map(|raw| {
                raw.parse::<u32>()
                    .map_err(|_| Error::invalid("cursor", "must be the next of a previous page"))
            })
            .transpose()
            .map_err(ErrorStatus)?;
        let limit = (req.limit != 0).then_some(req.limit);
        let page = self
            .state
            .services
            .messages
            .search(
                user,
                SearchAsked {
                    query: &req.query,
                    room: req.room_id.map(RoomId),
                    before,
                    offset,
                    limit,
                },
                from,
            )
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::SearchResults {
            results: (page.hits.iter())
                .map(|hit| v1::SearchResult {
                    message: Some(message(&hit.message)),
                    parts: (hit.parts.iter())
                        .map(|part| v1::TextPart {
                            text: part.text.clone(),
                            matched: part.matched,
                        })
                        .collect(),
                })
                .collect(),
            next: page.next.map(|next| next.to_string()),
        }))
    }

    async fn mentions(
        &self,
        request: Request<v1::MentionsRequest>,
    ) -> Result<Response<v1::MentionList>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let limit = (req.limit != 0).then_some(req.limit);
        let page = self
            .state
            .services
            .messages
            .mentions(user, req.cursor.as_deref(), limit)
            .await
            .map_err(ErrorStatus)?;
        let page = wire::mention_page(&page);
        Ok(Response::new(v1::MentionList {
            mentions: (page.mentions.iter())
                .map(|item| v1::MentionItem {
                    message: Some(records::message(&item.message)),
                    room_name: item.room_name.clone(),
                })
                .collect(),
            next: page.next,
        }))
    }

    async fn edit(
        &self,
        request: Request<v1::EditRequest>,
    ) -> Result<Response<v1::Message>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let target = seq(req.seq, "seq")?;
        let edited = self
            .state
            .services
            .messages
            .edit(user, RoomId(req.room_id), target, req.body)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(message(&edited)))
    }

    async fn delete(
        &self,
        request: Request<v1::MessageRef>,
    ) -> Result<Response<v1::Empty>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let target = seq(req.seq, "seq")?;
        let messages = &self.state.services.messages;
        messages
            .delete(user, RoomId(req.room_id), target)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::Empty {}))
    }

    async fn mark_read(
        &self,
        request: Request<v1::MessageRef>,
    ) -> Result<Response<v1::ReadMarker>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let target = seq(req.seq, "seq")?;
        let rooms = &self.state.services.rooms;
        let now_at = rooms
            .mark_read(user, RoomId(req.room_id), target)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::ReadMarker {
            room_id: req.room_id,
            seq: now_at,
        }))
    }

    async fn react(
        &self,
        request: Request<v1::ReactionRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let target = seq(req.seq, "seq")?;
        let messages = &self.state.services.messages;
        messages
            .react(user, RoomId(req.room_id), target, &req.emoji)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::Empty {}))
    }

    async fn unreact(
        &self,
        request: Request<v1::ReactionRequest>,
    ) -> Result<Response<v1::Empty>, Status> {
        let user = Caller::bearer(&request)?.user;
        let req = request.into_inner();
        let target = seq(req.seq, "seq")?;
        let messages = &self.state.services.messages;
        messages
            .unreact(user, RoomId(req.room_id), target, &req.emoji)
            .await
            .map_err(ErrorStatus)?;
        Ok(Response::new(v1::Empty {}))
    }
}
