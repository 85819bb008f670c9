//! The node's presence task: counts connections per user (through the hub),
//! hears other nodes' presence over the bus, and pushes `presence` frames to
//! the connections that share a room with a user whose status changed.
//!
//! One task owns the [`PresenceBoard`], fed by a bounded channel, so nothing
//! locks around it; HTTP handlers read a snapshot of who is online.
//!
//! Sessions hold the channel's strong ends; the bus's delivery only a weak
//! one ([`RemotePresence`]). The task publishes on that same bus, so a strong
//! end there would keep its own input open forever: with a weak one the
//! task ends once the last session and the HTTP state are gone, and drops
//! the services it holds (which lets the message writer finish).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palaver_domain::events::DomainEvent;
use palaver_domain::presence_board::{PresenceBoard, Transition};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, Services, UserId};
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::frames;
use crate::hub::Hub;

/// A silent node's users stay online elsewhere for this many heartbeat periods.
const MISSED_HEARTBEATS: u32 = 3;
/// Presence inputs waiting for the task; beyond this they are dropped (and, in
/// a cluster, repaired by the next heartbeat).
const QUEUE: usize = 16_384;

enum PresenceInput {
    /// A local connection of the user, following these rooms.
    Connected(UserId, Vec<RoomId>),
    /// A local connection closed; it followed these rooms.
    Disconnected(UserId, Vec<RoomId>),
    Remote(Arc<DomainEvent>),
}

/// Cheap to clone: a handle on the presence task.
#[derive(Clone)]
pub struct Presence {
    inputs: mpsc::Sender<PresenceInput>,
    online: Arc<RwLock<HashSet<UserId>>>,
}

/// The task's end of the channel, until [`PresenceInbox::spawn`] starts it;
/// what is sent meanwhile waits in the channel.
pub struct PresenceInbox {
    inputs: mpsc::Receiver<PresenceInput>,
    online: Arc<RwLock<HashSet<UserId>>>,
}

/// Hands other nodes' presence to the task without keeping it alive.
#[derive(Clone)]
pub struct RemotePresence {
    inputs: mpsc::WeakSender<PresenceInput>,
}

impl Presence {
    pub fn channel() -> (Presence, PresenceInbox) {
        let (inputs, rx) = mpsc::channel(QUEUE);
        let online = Arc::new(RwLock::new(HashSet::new()));
        let inbox = PresenceInbox {
            inputs: rx,
            online: online.clone(),
        };
        (Self { inputs, online }, inbox)
    }

    /// A connection of `user` has followed `rooms` and sent `ready`: those
    /// are the rooms told if the user just came online, with no store read.
    pub fn connected(&self, user: UserId, rooms: Vec<RoomId>) {
        send(&self.inputs, PresenceInput::Connected(user, rooms));
    }

    /// A connection counted by [`Presence::connected`] closed.
    pub fn disconnected(&self, user: UserId, rooms: Vec<RoomId>) {
        send(&self.inputs, PresenceInput::Disconnected(user, rooms));
    }

    pub fn remote(&self) -> RemotePresence {
        RemotePresence {
            inputs: self.inputs.downgrade(),
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.online.read().contains(&user)
    }
}

impl RemotePresence {
    /// Another node's `Presence` or `NodeHeartbeat`; dropped once the task ended.
    pub fn send(&self, event: Arc<DomainEvent>) {
        if let Some(inputs) = self.inputs.upgrade() {
            send(&inputs, PresenceInput::Remote(event));
        }
    }
}

fn send(inputs: &mpsc::Sender<PresenceInput>, input: PresenceInput) {
    if inputs.try_send(input).is_err() {
        // A cluster's next heartbeat repairs what this loses.
        tracing::warn!("presence queue full: an update was dropped");
        metrics::counter!("palaver_presence_updates_dropped_total").increment(1);
    }
}

impl PresenceInbox {
    /// Starts the task. `cluster`: announce to other nodes and send a heartbeat
    /// every `heartbeat`. It ends when every [`Presence`] handle is gone.
    pub fn spawn(
        self,
        node: String,
        cluster: bool,
        heartbeat: Duration,
        hub: Arc<Hub>,
        services: Arc<Services>,
    ) -> JoinHandle<()> {
        let task = PresenceTask {
            node,
            cluster,
            hub,
            services,
            heartbeat,
            board: PresenceBoard::new(heartbeat * MISSED_HEARTBEATS),
            online: self.online,
        };
        tokio::spawn(task.run(self.inputs))
    }
}

struct PresenceTask {
    node: String,
    cluster: bool,
    heartbeat: Duration,
    hub: Arc<Hub>,
    services: Arc<Services>,
    board: PresenceBoard,
    online: Arc<RwLock<HashSet<UserId>>>,
}

impl PresenceTask {
    async fn run(mut self, mut inputs: mpsc::Receiver<PresenceInput>) {
        let mut tick = tokio::time::interval((self.heartbeat / 5).min(Duration::from_secs(1)));
        let mut last_heartbeat = Instant::now();
        loop {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.on_input(input),
                    None => return,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    for transition in self.board.expire(now) {
                        self.push_transition(transition, None);
                    }
                    if self.cluster && now.duration_since(last_heartbeat) >= self.heartbeat {
                        last_heartbeat = now;
                        self.services.activity.heartbeat(&self.node, self.board.local_users());
                    }
                }
            }
        }
    }

    fn on_input(&mut self, input: PresenceInput) {
        match input {
            PresenceInput::Connected(user, rooms) => {
                let (first, transition) = self.board.connect(user);
                if first && self.cluster {
                    self.services.activity.announce(&self.node, user, true);
                }
                if let Some(transition) = transition {
                    self.push_transition(transition, Some(rooms));
                }
            }
            PresenceInput::Disconnected(user, rooms) => {
                let (last, transition) = self.board.disconnect(user);
                if last {
                    if self.cluster {
                        self.services.activity.announce(&self.node, user, false);
                    }
                    let services = self.services.clone();
                    tokio::spawn(async move {
                        if let Err(err) = services
                            .activity
                            .record_last_seen(user, Timestamp::now())
                            .await
                        {
                            tracing::warn!(%err, "last seen not recorded");
                        }
                    });
                }
                if let Some(transition) = transition {
                    self.push_transition(transition, Some(rooms));
                }
            }
            PresenceInput::Remote(event) => {
                let now = Instant::now();
                let transitions = match event.as_ref() {
                    DomainEvent::Presence {
                        node,
                        user_id,
                        online,
                        ..
                    } if *node != self.node => self
                        .board
                        .remote_change(node, *user_id, *online, now)
                        .into_iter()
                        .collect(),
                    DomainEvent::NodeHeartbeat { node, online, .. } if *node != self.node => {
                        self.board.heartbeat(node, online, now)
                    }
                    _ => Vec::new(),
                };
                for transition in transitions {
                    self.push_transition(transition, None);
                }
            }
        }
    }

    /// Records the new status and tells everyone who shares a room with the
    /// user. `rooms`: the user's rooms when a local connection knows them;
    /// otherwise (a user of another node, or a silent node's) they are read.
    fn push_transition(&self, transition: Transition, rooms: Option<Vec<RoomId>>) {
        let (user, online) = match transition {
            Transition::Online(user) => (user, true),
            Transition::Offline(user) => (user, false),
        };
        {
            let mut set = self.online.write();
            if online {
                set.insert(user);
            } else {
                set.remove(&user);
            }
        }
        let frame = Arc::new(frames::encode(&frames::presence(
            user,
            online,
            Timestamp::now(),
        )));
        if let Some(rooms) = rooms {
            self.hub.broadcast_presence(&rooms, frame);
            return;
        }
        let (hub, services) = (self.hub.clone(), self.services.clone());
        tokio::spawn(async move {
            match services.rooms.positions(user).await {
                Ok(rooms) => {
                    let rooms: Vec<_> = rooms.into_iter().map(|(room, _)| room).collect();
                    hub.broadcast_presence(&rooms, frame);
                }
                Err(err) => tracing::warn!(%err, "presence not pushed: rooms unknown"),
            }
        });
    }
}
