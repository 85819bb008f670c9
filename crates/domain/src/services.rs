//! Wires the domain services together over one store and one bus.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::accounts::{AccountTimes, Accounts, CodeLimits, Codes, UserLookup};
use crate::activity::Activity;
use crate::admin::Admin;
use crate::attachments::{AttachmentLimits, Attachments};
use crate::blobs::Blobs;
use crate::bus::Bus;
use crate::error::Result;
use crate::ids::{RoomId, UserId};
use crate::mail::{MailQueue, Mailer};
use crate::messages::{MessageWriter, Messages, WriterConfig};
use crate::model::Room;
use crate::outbox::Publisher;
use crate::passwords::{HashCost, HashingLimits, Passwords};
use crate::rooms::Rooms;
use crate::store::Store;
use crate::throttle::{RateLimits, Throttles};
use crate::tokens::AccessTokens;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub refresh_token_ttl_secs: i64,
    /// How long a deleted account's username cannot be registered again.
    pub username_hold_secs: i64,
    pub hashing: HashingLimits,
    pub rates: RateLimits,
    pub codes: CodeLimits,
    pub attachments: AttachmentLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4096,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            username_hold_secs: 30 * 24 * 3600,
            hashing: HashingLimits::default(),
            rates: RateLimits::default(),
            codes: CodeLimits::default(),
            attachments: AttachmentLimits::default(),
        }
    }
}

pub struct Services {
    pub accounts: Accounts,
    pub rooms: Rooms,
    pub messages: Messages,
    pub activity: Activity,
    pub admin: Admin,
    store: Arc<dyn Store>,
    throttles: Arc<Throttles>,
}

impl Services {
    /// Builds the services and starts the message writer; the returned handle
    /// completes once the writer has flushed after the services are dropped.
    pub fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        access: AccessTokens,
        mailer: Arc<dyn Mailer>,
        hash_cost: HashCost,
        limits: Limits,
        writer: WriterConfig,
    ) -> Result<(Self, JoinHandle<()>)> {
        let passwords = Passwords::new(hash_cost, limits.hashing)?;
        let throttles = Arc::new(Throttles::new(&limits.rates));
        throttles.spawn_forgetting();
        let publisher = Publisher::new(bus, store.clone());
        let (writer, writer_task) = MessageWriter::spawn(store.clone(), publisher.clone(), writer);
        let services = Self {
            accounts: Accounts::new(
                store.clone(),
                publisher.clone(),
                passwords.clone(),
                access,
                AccountTimes {
                    refresh_token_ttl_secs: limits.refresh_token_ttl_secs,
                    username_hold_secs: limits.username_hold_secs,
                },
                throttles.clone(),
                Codes::new(store.clone(), MailQueue::start(mailer), limits.codes),
            ),
            rooms: Rooms::new(
                store.clone(),
                publisher.clone(),
                passwords,
                throttles.clone(),
            ),
            messages: Messages::new(
                store.clone(),
                writer,
                publisher.clone(),
                limits.max_body_bytes,
                limits.attachments.claim_within,
                throttles.clone(),
            ),
            activity: Activity::new(store.clone(), publisher.clone(), throttles.clone()),
            admin: Admin::new(
                store.clone(),
                publisher,
                throttles.clone(),
                limits.username_hold_secs,
            ),
            store,
            throttles,
        };
        Ok((services, writer_task))
    }

    /// Invites a user, named by id or username, into `room`. The actor's
    /// membership is checked before the invitee is looked up, so a stranger
    /// to the room learns nothing, not even whether the user exists.
    pub async fn invite(&self, actor: UserId, room: RoomId, who: &UserLookup) -> Result<()> {
        self.rooms.require_member(actor, room).await?;
        let invitee = self.accounts.find(who).await?;
        self.rooms.invite(actor, room, &invitee).await
    }

    /// Bans `target` from `room` (removing them if they are a member).
    pub async fn ban(&self, actor: UserId, room: RoomId, target: UserId) -> Result<()> {
        self.rooms.require_member(actor, room).await?;
        // The target must exist (an unknown id would break the ban's foreign key).
        self.accounts.user(target).await?;
        self.rooms.ban(actor, room, target).await
    }

    /// The caller's direct room with another user: created on first use, the
    /// same room every time and from either side.
    pub async fn direct_room(&self, caller: UserId, other: &UserLookup) -> Result<Room> {
        let me = self.accounts.user(caller).await?;
        let other = self.accounts.find(other).await?;
        self.rooms.direct(&me, &other).await
    }

    /// The attachments service over `blobs`, drawing on the same budgets
    /// as every other service.
    pub fn attachments(&self, blobs: Arc<dyn Blobs>, limits: AttachmentLimits) -> Attachments {
        Attachments::new(self.store.clone(), blobs, self.throttles.clone(), limits)
    }

    /// Whether the store answers (readiness).
    pub async fn check_store(&self) -> Result<(), crate::store::StoreError> {
        self.store.ping().await
    }
}
