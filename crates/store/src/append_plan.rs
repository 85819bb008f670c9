//! What happens to each message of an append batch, decided in memory.
//!
//! PostgreSQL's append reads, inside its transaction and in one statement,
//! what the batch needs ([`BatchState`]: rooms' last seqs, which (room,
//! sender) pairs are memberships, which idempotency keys were already used),
//! [`decide`]s each message's fate, then [`settle`]s the outcomes and seqs
//! and writes what is new: each step that talks to the server is a round
//! trip. SQLite's appender, which pays no round trips, reads memberships the
//! same way ([`sender_pairs`]) but lets each row's insert find a used key
//! itself (`sqlite/appender.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use palaver_domain::attachments::Attachment;
use palaver_domain::model::Message;
use palaver_domain::store::{AppendOutcome, NewMessage, StoreError, StoreResult};

/// `(room_id, sender_id, client_id)`: an idempotency key.
pub type Key = (i64, i64, String);

enum Fate {
    NotMember,
    AttachmentsRefused,
    Existing(Message),
    New,
    /// Repeats the key of an earlier message of the same batch.
    SameAs(usize),
}

/// The fates of one batch and how many new messages each room receives.
pub struct Plan {
    fates: Vec<Fate>,
    /// Per message of the batch, the attachments a new one claims.
    claimed: Vec<Vec<Attachment>>,
    /// Room id → new messages, in room-id order.
    pub new_per_room: BTreeMap<i64, i64>,
}

/// The distinct (room, sender) pairs whose membership must be read.
pub fn sender_pairs(batch: &[NewMessage]) -> Vec<(i64, i64)> {
    let pairs: HashSet<(i64, i64)> = batch.iter().map(|m| (m.room_id.0, m.sender_id.0)).collect();
    pairs.into_iter().collect()
}

/// What the store holds that a batch's fate depends on.
#[derive(Default)]
pub struct BatchState {
    /// Room id → its last allocated seq; a room missing here is gone.
    pub last_seq: HashMap<i64, i64>,
    pub members: HashSet<(i64, i64)>,
    pub existing: HashMap<Key, Message>,
    /// The batch's attachments by id, read (and locked) in its transaction.
    pub attachments: HashMap<String, Attachment>,
}

/// The ids of every attachment the batch's messages list.
pub fn attachment_ids(batch: &[NewMessage]) -> Vec<&str> {
    (batch.iter())
        .filter_map(|m| m.attachments.as_ref())
        .flat_map(|claim| claim.ids.iter().map(String::as_str))
        .collect()
}

/// The attachments `m` claims, in its order, if it may claim every one it
/// lists: each read, of its room, uploaded by its sender, carried by no
/// message and by no earlier message of the batch (`claimed`), uploaded
/// within the claim window. `None` otherwise. The caller adds them to
/// `claimed` once the message is stored.
pub fn claim(
    m: &NewMessage,
    read: &HashMap<String, Attachment>,
    claimed: &HashSet<String>,
) -> Option<Vec<Attachment>> {
    let Some(asked) = &m.attachments else {
        return Some(Vec::new());
    };
    let mut taken = Vec::with_capacity(asked.ids.len());
    for id in &asked.ids {
        let attachment = read.get(id)?;
        let claimable = attachment.room_id == m.room_id
            && attachment.uploader_id == m.sender_id
            && attachment.message_seq.is_none()
            && attachment.created_at >= asked.uploaded_since
            && !claimed.contains(id)
            && !taken.iter().any(|t: &Attachment| &t.id == id);
        if !claimable {
            return None;
        }
        taken.push(attachment.clone());
    }
    Some(taken)
}

/// `claimed` as carried by the message stored under `seq`.
pub fn carried(claimed: Vec<Attachment>, seq: u64) -> Vec<Attachment> {
    (claimed.into_iter())
        .map(|attachment| Attachment {
            message_seq: Some(seq),
            ..attachment
        })
        .collect()
}

/// The distinct (room, sender, client id) triples of a batch: what
/// [`BatchState`] is read for.
pub fn distinct_keys(batch: &[NewMessage]) -> Vec<(i64, i64, Option<&str>)> {
    let keys: HashSet<(i64, i64, Option<&str>)> = batch
        .iter()
        .map(|m| (m.room_id.0, m.sender_id.0, m.client_id.as_deref()))
        .collect();
    keys.into_iter().collect()
}

/// Decides each message's fate in batch order; a key repeated inside the
/// batch refers to its first occurrence.
pub fn decide(batch: &[NewMessage], state: &BatchState) -> Plan {
    let (members, existing) = (&state.members, &state.existing);
    let mut first_with_key: HashMap<(i64, i64, &str), usize> = HashMap::new();
    let mut fates = Vec::with_capacity(batch.len());
    let mut claimed_ids = HashSet::new();
    let mut claimed = Vec::with_capacity(batch.len());
    let mut new_per_room: BTreeMap<i64, i64> = BTreeMap::new();
    for (index, m) in batch.iter().enumerate() {
        let fate = if !members.contains(&(m.room_id.0, m.sender_id.0)) {
            Fate::NotMember
        } else if let Some(client_id) = m.client_id.as_deref() {
            let key = (m.room_id.0, m.sender_id.0, client_id);
            if let Some(found) = existing.get(&(key.0, key.1, key.2.to_owned())) {
                Fate::Existing(found.clone())
            } else if let Some(&first) = first_with_key.get(&key) {
                Fate::SameAs(first)
            } else {
                first_with_key.insert(key, index);
                Fate::New
            }
        } else {
            Fate::New
        };
        let mut carried = Vec::new();
        let fate = match fate {
            Fate::New => match claim(m, &state.attachments, &claimed_ids) {
                Some(taken) => {
                    claimed_ids.extend(taken.iter().map(|t| t.id.clone()));
                    carried = taken;
                    Fate::New
                }
                None => Fate::AttachmentsRefused,
            },
            other => other,
        };
        claimed.push(carried);
        if matches!(fate, Fate::New) {
            *new_per_room.entry(m.room_id.0).or_default() += 1;
        }
        fates.push(fate);
    }
    Plan {
        fates,
        claimed,
        new_per_room,
    }
}

/// Each message's outcome, and the new messages to insert, given every
/// room's first allocated seq (`room id → seq`).
pub fn settle(
    batch: &[NewMessage],
    plan: Plan,
    mut next_seq: HashMap<i64, i64>,
) -> StoreResult<(Vec<AppendOutcome>, Vec<Message>)> {
    let mut outcomes: Vec<AppendOutcome> = Vec::with_capacity(batch.len());
    let mut stored = Vec::new();
    for ((m, fate), claimed) in batch.iter().zip(plan.fates).zip(plan.claimed) {
        let outcome = match fate {
            Fate::NotMember => AppendOutcome::NotMember,
            Fate::AttachmentsRefused => AppendOutcome::AttachmentsRefused,
            Fate::Existing(message) => AppendOutcome::Duplicate(message),
            Fate::SameAs(first) => match &outcomes[first] {
                AppendOutcome::Stored(message) | AppendOutcome::Duplicate(message) => {
                    AppendOutcome::Duplicate(message.clone())
                }
                AppendOutcome::NotMember => AppendOutcome::NotMember,
                AppendOutcome::AttachmentsRefused => AppendOutcome::AttachmentsRefused,
            },
            Fate::New => {
                let seq = next_seq
                    .get_mut(&m.room_id.0)
                    .ok_or_else(|| StoreError::Other("room vanished while appending".into()))?;
                let mut message = m.stored_as(*seq as u64);
                message.attachments = carried(claimed, *seq as u64);
                *seq += 1;
                stored.push(message.clone());
                AppendOutcome::Stored(message)
            }
        };
        outcomes.push(outcome);
    }
    Ok((outcomes, stored))
}

#[cfg(test)]
mod tests {
    use palaver_domain::time::Timestamp;
    use palaver_domain::{RoomId, UserId};

    use super::*;

    fn message(room: i64, sender: i64, key: Option<&str>) -> NewMessage {
        NewMessage {
            room_id: RoomId(room),
            sender_id: UserId(sender),
            body: "hi".into(),
            client_id: key.map(Into::into),
            reply_to: None,
            created_at: Timestamp(0),
            attachments: None,
        }
    }

    fn state(members: HashSet<(i64, i64)>, existing: HashMap<Key, Message>) -> BatchState {
        BatchState {
            members,
            existing,
            ..BatchState::default()
        }
    }

    fn seqs(outcomes: &[AppendOutcome]) -> Vec<Option<u64>> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                AppendOutcome::Stored(m) | AppendOutcome::Duplicate(m) => Some(m.seq),
                AppendOutcome::NotMember | AppendOutcome::AttachmentsRefused => None,
            })
            .collect()
    }

    #[test]
    fn repeated_keys_share_the_first_message_and_only_new_ones_take_seqs() {
        let batch = [
            message(1, 10, Some("a")),
            message(1, 10, Some("a")),
            message(1, 11, Some("a")),
            message(2, 10, None),
            message(1, 99, Some("b")),
        ];
        let members = HashSet::from([(1, 10), (1, 11), (2, 10)]);
        let plan = decide(&batch, &state(members, HashMap::new()));
        assert_eq!(plan.new_per_room, BTreeMap::from([(1, 2), (2, 1)]));

        let (outcomes, stored) = settle(&batch, plan, HashMap::from([(1, 5), (2, 1)])).unwrap();
        assert_eq!(seqs(&outcomes), [Some(5), Some(5), Some(6), Some(1), None]);
        assert!(matches!(outcomes[1], AppendOutcome::Duplicate(_)));
        assert!(matches!(outcomes[4], AppendOutcome::NotMember));
        assert_eq!(stored.len(), 3);
    }

    #[test]
    fn a_key_used_by_an_earlier_batch_is_a_duplicate_of_the_stored_message() {
        let batch = [message(1, 10, Some("a"))];
        let mut earlier = settle(
            &batch,
            decide(&batch, &state(HashSet::from([(1, 10)]), HashMap::new())),
            HashMap::from([(1, 7)]),
        )
        .unwrap()
        .1;
        let existing = HashMap::from([((1, 10, "a".to_owned()), earlier.remove(0))]);

        let plan = decide(&batch, &state(HashSet::from([(1, 10)]), existing));
        assert!(plan.new_per_room.is_empty(), "nothing new to allocate");
        let (outcomes, stored) = settle(&batch, plan, HashMap::new()).unwrap();
        assert!(matches!(&outcomes[0], AppendOutcome::Duplicate(m) if m.seq == 7));
        assert!(stored.is_empty());
    }

    #[test]
    fn each_room_sender_and_key_is_read_once() {
        let batch = [
            message(1, 10, Some("a")),
            message(1, 10, Some("a")),
            message(1, 10, None),
            message(1, 10, None),
            message(2, 10, Some("a")),
        ];
        let mut keys = distinct_keys(&batch);
        keys.sort();
        assert_eq!(
            keys,
            [(1, 10, None), (1, 10, Some("a")), (2, 10, Some("a"))]
        );
    }
}
