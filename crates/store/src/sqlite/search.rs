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

/// The rowids of room `room`'s messages: `[first, end)`. Rooms whose ids do
/// not fit are never indexed (the triggers skip them).
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
