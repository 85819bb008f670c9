//! The rusqlite connection the appender writes through (and the
//! checkpointer watches), set up as sqlx sets up its own.

use std::path::Path;
use std::time::Duration;

use palaver_domain::store::StoreResult;
use rusqlite::Connection;

use crate::errors::map_rusqlite;

/// A read-write connection with the sqlx connections' settings (WAL mode and
/// the page size are the file's own), except checkpoints: see `checkpointer`.
pub(crate) fn open(path: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(path).map_err(map_rusqlite)?;
    connection
        .pragma_update(None, "synchronous", "FULL")
        .map_err(map_rusqlite)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(map_rusqlite)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(map_rusqlite)?;
    Ok(connection)
}
