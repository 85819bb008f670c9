//! The node's presence task: counts connections per user (through the hub),
//! hears other nodes' presence over the bus, and pushes `presence` frames to
//! the connections that share a room with a user whose status changed.
//!
//! One task owns the [`PresenceBoard`], fed by a bounded channel, so nothing
//! locks around it; HTTP handlers read a snapshot of who is online.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palaver_domain::bus::DomainEvent;
use palaver_domain::presence::{PresenceBoard, Transition};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, Services, UserId};
use palaver_protocol::ws::ServerFrame;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::hub::Hub;

/// A silent node's users stay online elsewhere for this many heartbeat periods.
const MISSED_HEARTBEATS: u32 = 3;
/// Presence inputs waiting for the task; beyond this they are dropped (and, in
/// a cluster, repaired by the next heartbeat).
const QUEUE: usize = 16_384;

pub enum PresenceInput {
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

impl Presence {
    /// Starts the task. `cluster`: announce to other nodes and send a heartbeat
    /// every `heartbeat`.
    pub fn spawn(
        node: String,
        cluster: bool,
        heartbeat: Duration,
        hub: Arc<Hub>,
        services: Arc<Services>,
    ) -> Self {
        let (inputs, rx) = mpsc::channel(QUEUE);
        let online = Arc::new(RwLock::new(HashSet::new()));
        let task = PresenceTask {
            node,
            cluster,
            hub,
            services,
            heartbeat,
            board: PresenceBoard::new(heartbeat * MISSED_HEARTBEATS),
            online: online.clone(),
        };
        tokio::spawn(task.run(rx));
        Self { inputs, online }
    }

    pub fn send(&self, input: PresenceInput) {
        if self.inputs.try_send(input).is_err() {
            tracing::warn!("presence queue full: an update was dropped");
        }
    }

    pub fn is_online(&self, user: UserId) -> bool {
        self.online.read().contains(&user)
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
                        self.publish(transition, None);
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
                    self.publish(transition, Some(rooms));
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
                    self.publish(transition, Some(rooms));
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
                    self.publish(transition, None);
                }
            }
        }
    }

    /// Records the new status and tells everyone who shares a room with the
    /// user. `rooms`: the user's rooms when a local connection knows them;
    /// otherwise (a user of another node, or a silent node's) they are read.
    fn publish(&self, transition: Transition, rooms: Option<Vec<RoomId>>) {
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
        let frame = ServerFrame::Presence {
            user_id: user.0,
            status: if online { "online" } else { "offline" }.into(),
            last_seen: Timestamp::now().to_rfc3339(),
        };
        if let Some(rooms) = rooms {
            self.hub.broadcast_presence(&rooms, &frame);
            return;
        }
        let (hub, services) = (self.hub.clone(), self.services.clone());
        tokio::spawn(async move {
            match services.rooms.positions(user).await {
                Ok(rooms) => {
                    let rooms: Vec<_> = rooms.into_iter().map(|(room, _)| room).collect();
                    hub.broadcast_presence(&rooms, &frame);
                }
                Err(err) => tracing::warn!(%err, "presence not pushed: rooms unknown"),
            }
        });
    }
}
