//! The rows of `reactions` (`sql/copy_reactions.rs` reads and writes them).

/// A row of `reactions`, keyed by `(room_id, seq, emoji, user_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionRow {
    pub room_id: i64,
    pub seq: i64,
    pub emoji: String,
    pub user_id: i64,
    pub created_at: i64,
}
