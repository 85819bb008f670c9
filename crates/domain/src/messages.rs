//! Messages: posting (through the batching writer), history and catch-up.

pub mod emoji;
pub mod mentions;
pub mod reactions;
pub mod search;
mod writer;

use std::sync::Arc;

pub use writer::{MessageWriter, WriterConfig};

use crate::attachments::{is_attachment_id, MAX_PER_MESSAGE};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::model::{Message, Role};
use crate::outbox::Publisher;
use crate::store::{
    AppendOutcome, AttachmentClaim, Mention, NewMessage, ReactionCount, SearchRequest, Store,
};
use crate::throttle::{Caller, ClientAddr, Operation, Throttles};
use crate::time::Timestamp;
use crate::values::{ClientId, MessageBody};

/// A stored message, and whether it was stored before (idempotent retry).
#[derive(Debug, Clone)]
pub struct Posted {
    pub message: Message,
    pub duplicate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRange {
    /// Newest messages older than `before` (the newest overall when `None`).
    Before(Option<u64>),
    /// Oldest messages newer than `after`.
    After(u64),
    /// Oldest messages newer than `after` and older than `before`.
    Between { after: u64, before: u64 },
}

#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// Ascending by seq.
    pub messages: Vec<Message>,
    pub has_more: bool,
    /// The messages' reactions as the reader sees them, by seq
    /// (`reactions::counts_for` picks one message's).
    pub reactions: Vec<ReactionCount>,
}

/// What a search asks for, as the caller gave it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchAsked<'a> {
    /// The words (`search::SearchTerms::parse`).
    pub query: &'a str,
    /// Only this room.
    pub room: Option<RoomId>,
    /// Only messages sent before this.
    pub before: Option<Timestamp>,
    /// Results skipped: the `next` of the previous page.
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

/// Search results, best first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// The offset of the next page, when there is one.
    pub next: Option<u32>,
}

/// A found message and its body cut into matching and other runs.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub message: Message,
    pub parts: Vec<search::Part>,
}

/// Searches running at once, node-wide; past them a search is refused
/// `overloaded`, to be tried again after `SEARCH_RETRY_AFTER`.
pub const SEARCHES_AT_ONCE: usize = 4;
const SEARCH_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A page of a user's mentions, newest first.
#[derive(Debug, Clone)]
pub struct MentionPage {
    pub mentions: Vec<Mention>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

pub struct Messages {
    store: Arc<dyn Store>,
    writer: MessageWriter,
    publisher: Publisher,
    max_body_bytes: usize,
    /// How long after its upload a message may still carry a file.
    claim_within: std::time::Duration,
    throttles: Arc<Throttles>,
    searches_at_once: tokio::sync::Semaphore,
}

impl Messages {
    pub fn new(
        store: Arc<dyn Store>,
        writer: MessageWriter,
        publisher: Publisher,
        max_body_bytes: usize,
        claim_within: std::time::Duration,
        throttles: Arc<Throttles>,
    ) -> Self {
        Self {
            store,
            writer,
            publisher,
            max_body_bytes,
            claim_within,
            throttles,
            searches_at_once: tokio::sync::Semaphore::new(SEARCHES_AT_ONCE),
        }
    }

    /// Stores a message and resolves once it is durable. Membership is checked
    /// inside the storing transaction, so a removed member can never slip one in.
    /// Every valid message counts against the sender's send limit, whatever
    /// transport it came by.
    pub async fn post(
        &self,
        sender: UserId,
        room: RoomId,
        body: String,
        client_id: Option<String>,
        reply_to: Option<u64>,
        attachments: Vec<String>,
    ) -> Result<Posted> {
        let body = MessageBody::parse(body, self.max_body_bytes)?.into_inner();
        let client_id = client_id.map(ClientId::parse).transpose()?;
        let attachments = self.attachment_claim(attachments)?;
        self.throttles
            .charge(Operation::Send, Caller::user(sender))?;
        // A mention reaches its member even in a room they muted: a message
        // naming anyone draws the sender's mention budget too (whether a
        // name is a member is decided when it is stored).
        if !mentions::parse(&body).is_empty() {
            self.throttles
                .charge(Operation::Mention, Caller::user(sender))?;
        }
        if let Some(target) = reply_to {
            // Seqs are never reused and messages never vanish, so a seq that
            // exists now exists for good. (A non-member learns nothing: the
            // storing transaction answers NotFound for them anyway.)
            if self.store.message(room, target).await?.is_none() {
                self.require_member(sender, room).await?;
                // Not `Invalid`: whether the seq exists is the room's state,
                // not something the request's form could have said.
                return Err(Error::NotFound("message to reply to"));
            }
        }
        let outcome = self
            .writer
            .append(NewMessage {
                room_id: room,
                sender_id: sender,
                body,
                client_id: client_id.map(ClientId::into_inner),
                reply_to,
                created_at: Timestamp::now(),
                attachments,
            })
            .await?;
        match outcome {
            AppendOutcome::Stored(message) => Ok(Posted {
                message,
                duplicate: false,
            }),
            AppendOutcome::Duplicate(message) => Ok(Posted {
                message,
                duplicate: true,
            }),
            AppendOutcome::NotMember => Err(Error::NotFound("room")),
            // Not the sender's own unclaimed upload in this room: whether it
            // exists at all is not told.
            AppendOutcome::AttachmentsRefused => Err(Error::NotFound("attachment")),
        }
    }

    /// The uploads a message lists: at most `MAX_PER_MESSAGE` attachment
    /// ids, each kept once (whose they are the store decides when it stores
    /// the message). An id of another shape names no file: `NotFound`, as
    /// for any file the sender may not attach.
    fn attachment_claim(&self, mut ids: Vec<String>) -> Result<Option<AttachmentClaim>> {
        if ids.is_empty() {
            return Ok(None);
        }
        if ids.len() > MAX_PER_MESSAGE {
            return Err(Error::invalid(
                "attachments",
                format!("at most {MAX_PER_MESSAGE} per message"),
            ));
        }
        if !ids.iter().all(|id| is_attachment_id(id)) {
            return Err(Error::NotFound("attachment"));
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        Ok(Some(AttachmentClaim {
            ids,
            uploaded_since: Timestamp::now().minus(self.claim_within),
        }))
    }

    /// See `MessageWriter::committing`.
    pub fn committing(&self) -> bool {
        self.writer.committing()
    }

    pub async fn history(
        &self,
        reader: UserId,
        room: RoomId,
        range: HistoryRange,
        limit: Option<u32>,
    ) -> Result<HistoryPage> {
        let limit = page_limit(limit)?;
        self.require_member(reader, room).await?;
        // One extra row tells whether another page exists.
        let mut messages = match range {
            HistoryRange::Before(before) => {
                self.store.messages_before(room, before, limit + 1).await?
            }
            HistoryRange::After(after) => self.store.messages_after(room, after, limit + 1).await?,
            HistoryRange::Between { after, before } => {
                let mut page = self.store.messages_after(room, after, limit + 1).await?;
                page.retain(|message| message.seq < before);
                page
            }
        };
        let has_more = messages.len() > limit as usize;
        if has_more {
            match range {
                HistoryRange::Before(_) => {
                    messages.remove(0);
                }
                HistoryRange::After(_) | HistoryRange::Between { .. } => {
                    messages.truncate(limit as usize)
                }
            }
        }
        let reactions = self.counts_of(reader, room, &messages).await?;
        Ok(HistoryPage {
            messages,
            has_more,
            reactions,
        })
    }

    /// Replaces the body of the editor's own message.
    pub async fn edit(
        &self,
        editor: UserId,
        room: RoomId,
        seq: u64,
        body: String,
    ) -> Result<Message> {
        self.throttles
            .charge(Operation::Edit, Caller::user(editor))?;
        let body = MessageBody::parse(body, self.max_body_bytes)?;
        self.require_member(editor, room).await?;
        let message = self.existing(room, seq).await?;
        if message.sender_id != editor {
            return Err(Error::Forbidden("only its sender can edit a message"));
        }
        if message.deleted_at.is_some() {
            return Err(Error::Conflict("the message was deleted"));
        }
        let edited = self
            .store
            .edit_message(room, seq, &body.into_inner(), Timestamp::now())
            .await?
            .ok_or(Error::Conflict("the message was deleted"))?;
        Ok(self.publisher.publish_committed(edited))
    }

    /// Deletes a message: its sender may, and so may the room's owner and admins.
    /// Deleting an already deleted message succeeds and changes nothing.
    pub async fn delete(&self, user: UserId, room: RoomId, seq: u64) -> Result<()> {
        self.throttles
            .charge(Operation::MessageDelete, Caller::user(user))?;
        let role = self.require_member(user, room).await?;
        let message = self.existing(room, seq).await?;
        if message.sender_id != user && role < Role::Admin {
            return Err(Error::Forbidden(
                "only its sender, an admin or the owner can delete a message",
            ));
        }
        if let Some(deleted) = self
            .store
            .delete_message(room, seq, Timestamp::now())
            .await?
        {
            self.publisher.publish_committed(deleted);
        }
        Ok(())
    }

    async fn existing(&self, room: RoomId, seq: u64) -> Result<Message> {
        self.store
            .message(room, seq)
            .await?
            .ok_or(Error::NotFound("message"))
    }

    /// Messages after `after`, with their reactions as `reader` sees them,
    /// for resuming connections and filling gaps (`has_more`: the page is full).
    pub async fn catch_up(
        &self,
        reader: UserId,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> Result<HistoryPage> {
        self.require_member(reader, room).await?;
        let messages = self.store.messages_after(room, after, limit).await?;
        let reactions = self.counts_of(reader, room, &messages).await?;
        Ok(HistoryPage {
            has_more: messages.len() == limit as usize,
            messages,
            reactions,
        })
    }

    /// Messages of `reader`'s rooms (of `room` alone, when given) that hold
    /// every word of `query`, sent before `before`, best first, from
    /// `offset` on. Only rooms `reader` is a member of when the store reads
    /// them are searched, and deleted messages are never found.
    pub async fn search(
        &self,
        reader: UserId,
        asked: SearchAsked<'_>,
        from: ClientAddr,
    ) -> Result<SearchPage> {
        let SearchAsked {
            query,
            room,
            before,
            offset,
            limit,
        } = asked;
        self.throttles
            .charge(Operation::Search, Caller::user(reader).from(from))?;
        let terms = search::SearchTerms::parse(query)?;
        let limit = match limit {
            None => search::DEFAULT_RESULTS,
            Some(n @ 1..=search::MAX_RESULTS) => n,
            Some(_) => return Err(Error::invalid("limit", "must be between 1 and 50")),
        };
        let offset = offset.unwrap_or(0);
        if offset >= search::MAX_OFFSET {
            return Err(Error::invalid(
                "cursor",
                "results past the 500th are not searched: narrow the query",
            ));
        }
        let rooms = match room {
            Some(room) => {
                self.require_member(reader, room).await?;
                vec![room]
            }
            None => (self.store.room_positions(reader).await?.into_iter())
                .map(|(room, _)| room)
                .collect(),
        };
        // A few searches at once: each reads the index at length, and the
        // readers they hold are every other read's too.
        let Ok(_searching) = self.searches_at_once.try_acquire() else {
            metrics::counter!("palaver_searches_refused_total").increment(1);
            return Err(Error::Overloaded {
                retry_after: SEARCH_RETRY_AFTER,
            });
        };
        let mut found = self
            .store
            .search_messages(SearchRequest {
                reader,
                terms: &terms,
                rooms: &rooms,
                before: before.unwrap_or(Timestamp(i64::MAX)),
                offset,
                limit: limit + 1,
            })
            .await?;
        let next = (found.len() > limit as usize)
            .then_some(offset + limit)
            .filter(|next| *next < search::MAX_OFFSET);
        found.truncate(limit as usize);
        let hits = found
            .into_iter()
            .map(|message| SearchHit {
                parts: terms.highlight(&message.body),
                message,
            })
            .collect();
        Ok(SearchPage { hits, next })
    }

    /// `reader`'s mentions, newest first, from `cursor` on (a page's `next`):
    /// messages still live, in rooms they are still a member of.
    pub async fn mentions(
        &self,
        reader: UserId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<MentionPage> {
        let limit = match limit {
            None => mentions::DEFAULT_PAGE,
            Some(n @ 1..=mentions::MAX_PAGE) => n,
            Some(_) => return Err(Error::invalid("limit", "must be between 1 and 100")),
        };
        let before = cursor.map(mentions::parse_cursor).transpose()?;
        let mut found = self.store.mentions(reader, before, limit + 1).await?;
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = (more)
            .then(|| {
                found
                    .last()
                    .map(|last| mentions::encode_cursor(last.cursor()))
            })
            .flatten();
        Ok(MentionPage {
            mentions: found,
            next,
        })
    }

    async fn require_member(&self, user: UserId, room: RoomId) -> Result<Role> {
        self.store
            .member_role(room, user)
            .await?
            .ok_or(Error::NotFound("room"))
    }
}

fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limit_defaults_and_bounds() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some(200)).unwrap(), 200);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(201)).is_err());
    }
}
