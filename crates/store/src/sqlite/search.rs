//! Search on SQLite: the FTS5 index `messages_search`, whose rowid names a
//! message as `(room_id << 32) | seq` (migrations/sqlite/0013_search.sql).
//!
//! Each room is read as its own rowid range, which FTS5 seeks to within a
//! word's list: a search costs what the matches in the caller's rooms cost,
//! however often its words appear elsewhere on the server (so its timing
//! says nothing about rooms the caller is not in). BM25 scores use the
//! whole index's statistics, so scores from different rooms compare.

use palaver_domain::model::Message;
use palaver_domain::store::{SearchRequest, SearchTerms, StoreResult};
use palaver_domain::RoomId;

use super::SqliteStore;
use crate::errors::map_err;
use crate::sql::{decode, MESSAGE_COLUMNS};

/// The query of `MATCH`: every term, quoted (terms hold letters and digits
/// only, so nothing in them is FTS5 syntax), each a prefix where asked.
pub(super) fn expression(terms: &SearchTerms) -> String {
    let terms: Vec<String> = (terms.terms().iter())
        .map(|term| match term.prefix {
            true => format!("\"{}\"*", term.word),
            false => format!("\"{}\"", term.word),
        })
        .collect();
    terms.join(" AND ")
}

/// The search index's entries for new messages, in one statement, from a
/// JSON list of their rowids ([`rowid_list`]): FTS5 writes out what it holds
/// at every statement that opens a savepoint on it, so an entry per insert (a
/// trigger on `messages`) would make a segment per message, and merging them
/// would cost more than the rest of the append. Fed in ascending rowid order (FTS5 also
/// writes out on a smaller rowid), a batch becomes one segment at the commit.
/// `CROSS JOIN` keeps that order: the list is the outer loop. Edits and
/// deletes go through the trigger of 0018_search_pending.sql. `db copy`'s
/// pages enter the index so; the appender's batches through
/// `search_pending`.
pub(super) const INDEX_NEW: &str = "INSERT INTO messages_search (rowid, body) \
    SELECT j.value, m.body FROM json_each($1) AS j CROSS JOIN messages AS m \
    ON m.room_id = j.value >> 32 AND m.seq = j.value & 4294967295 \
    WHERE m.body <> ''";

/// Records new messages, a JSON list of their rowids ([`rowid_list`]), as
/// waiting for the index (0018_search_pending.sql): one row each at the end
/// of `search_pending`, where [`INDEX_NEW`] would write a segment, the
/// index's structure and its averages in every commit.
pub(super) const PEND_NEW: &str =
    "INSERT INTO search_pending (message) SELECT value FROM json_each($1)";

/// How many waiting messages the appender lets gather before it indexes them
/// in a batch's transaction: one segment per this many messages rather than
/// per commit. A search indexes whatever waits before it reads.
pub(super) const INDEX_AFTER: usize = 1024;

/// Indexes every waiting message with the body it has now, in ascending
/// rowid order (one segment); [`CLEAR_PENDING`] follows in the same
/// transaction. A deleted message (empty body) or a deleted room's is not
/// indexed.
pub(super) const INDEX_PENDING: &str = "INSERT INTO messages_search (rowid, body) \
    SELECT p.message, m.body FROM search_pending AS p CROSS JOIN messages AS m \
    ON m.room_id = p.message >> 32 AND m.seq = p.message & 4294967295 \
    WHERE m.body <> '' ORDER BY p.message";

pub(super) const CLEAR_PENDING: &str = "DELETE FROM search_pending";

pub(super) const COUNT_PENDING: &str = "SELECT count(*) FROM search_pending";

/// The rowid naming a message in `messages_search`: `(room << 32) | seq`;
/// `None` for ids outside those bits, which the server never makes and which
/// are left unindexed rather than named as another message.
pub(super) fn rowid(room: i64, seq: i64) -> Option<i64> {
    ((1..=i64::from(i32::MAX)).contains(&room) && (0..=i64::from(u32::MAX)).contains(&seq))
        .then_some((room << 32) | seq)
}

/// `rowids` sorted, as the JSON array [`INDEX_NEW`] reads: digits and
/// commas, nothing to escape.
pub(super) fn rowid_list(mut rowids: Vec<i64>) -> String {
    rowids.sort_unstable();
    let mut list = String::with_capacity(rowids.len() * 16 + 2);
    list.push('[');
    for (i, rowid) in rowids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&rowid.to_string());
    }
    list.push(']');
    list
}

/// The rowids of room `room`'s messages: `[first, end)`. Rooms whose ids do
/// not fit are never indexed (the appender skips them).
fn rowid_range(room: RoomId) -> Option<(i64, i64)> {
    (1..=i64::from(i32::MAX))
        .contains(&room.0)
        .then(|| (room.0 << 32, (room.0 + 1) << 32))
}

pub(super) async fn search(
    store: &SqliteStore,
    request: SearchRequest<'_>,
) -> StoreResult<Vec<Message>> {
    let expression = expression(request.terms);
    let wanted = i64::from(request.offset + request.limit);
    let mut connection = store.readers.acquire().await.map_err(map_err)?;
    // (bm25, created_at, rowid) of each room's best matches: no room holds
    // more than a page's worth past the offset.
    let mut scored: Vec<(f64, i64, i64)> = Vec::new();
    for &room in request.rooms {
        let Some((first, end)) = rowid_range(room) else {
            continue;
        };
        let rows: Vec<(f64, i64, i64)> = sqlx::query_as(
            "SELECT bm25(messages_search), m.created_at, s.rowid
             FROM messages_search s
             JOIN messages m ON m.room_id = $2 AND m.seq = (s.rowid & 4294967295)
             WHERE messages_search MATCH $1 AND s.rowid >= $3 AND s.rowid < $4
               AND m.deleted_at IS NULL AND m.created_at < $5
             ORDER BY bm25(messages_search), m.created_at DESC, s.rowid DESC
             LIMIT $6",
        )
        .bind(&expression)
        .bind(room.0)
        .bind(first)
        .bind(end)
        .bind(request.before.0)
        .bind(wanted)
        .fetch_all(&mut *connection)
        .await
        .map_err(map_err)?;
        scored.extend(rows);
    }
    // Lower BM25 is better; then newest; then by room and seq, so pages are
    // stable.
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
    let page = scored
        .iter()
        .skip(request.offset as usize)
        .take(request.limit as usize);
    let one = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         JOIN members mb ON mb.room_id = m.room_id AND mb.user_id = $3
         WHERE m.room_id = $1 AND m.seq = $2 AND m.deleted_at IS NULL"
    );
    let mut messages = Vec::new();
    for &(_, _, rowid) in page {
        // Membership is read again here: a room left meanwhile is not shown.
        let row = sqlx::query(&one)
            .bind(rowid >> 32)
            .bind(rowid & 0xFFFF_FFFF)
            .bind(request.reader.0)
            .fetch_optional(&mut *connection)
            .await
            .map_err(map_err)?;
        if let Some(row) = row {
            messages.push(decode::message(&row)?);
        }
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_a_rowid_range_and_rooms_out_of_range_have_none() {
        assert_eq!(rowid_range(RoomId(1)), Some((1 << 32, 2 << 32)));
        let last = i64::from(i32::MAX);
        assert_eq!(
            rowid_range(RoomId(last)),
            Some((last << 32, (last + 1) << 32))
        );
        assert_eq!(rowid_range(RoomId(last + 1)), None);
        assert_eq!(rowid_range(RoomId(0)), None);
        assert_eq!(rowid_range(RoomId(-5)), None);
    }

    #[test]
    fn terms_are_quoted_and_prefixes_starred() {
        let terms = SearchTerms::parse("deploy* Friday").unwrap();
        assert_eq!(expression(&terms), "\"deploy\"* AND \"friday\"");
    }
}
