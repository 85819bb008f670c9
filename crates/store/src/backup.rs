//! Online backups and restores (`palaver db backup`, `palaver db restore`): a
//! consistent snapshot of a store in use, as one portable SQLite file, and
//! its way back into an empty store of either engine.
//!
//! SQLite: `VACUUM INTO` on a read-only connection of the backup's own copies
//! the database as one read transaction sees it (WAL lets the node's writer
//! go on beside it) into a compact file in rollback-journal mode, every table
//! included. PostgreSQL: [`transfer::copy`] from one `REPEATABLE READ, READ
//! ONLY` transaction (a [`Snapshot`](crate::sql::SqlStore::snapshot)) into a
//! new SQLite file, compacted the same way; it holds the tables `db copy`
//! moves. Either way the file appears under its name only once it is complete,
//! checked and on disk, and a file already there is never overwritten.
//!
//! A restore is [`transfer::copy`] from a scratch copy of the file, brought
//! to this binary's schema (an older backup is migrated there; a newer one is
//! refused), into an empty store; the rows are then counted against the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use palaver_domain::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::errors::{map_err, map_rusqlite};
use crate::transfer::{self, Table, Transfer};
use crate::{Engine, ManagedStore, PostgresEngine, PostgresStore, SqliteStore, StoreOptions};

/// The store a backup is taken of.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The SQLite file of a node (`--data-dir`).
    SqliteFile(&'a Path),
    /// `sqlite://PATH` or `postgres://…`.
    Url(&'a str),
}

/// What a backup file holds, read from the file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// The newest migration applied to the file (SQLite's numbering).
    pub schema_version: i64,
    pub bytes: u64,
    /// The rows of each table a restore copies.
    pub tables: Vec<(Table, i64)>,
}

/// How PostgreSQL is read for a backup: every statement sees the database as
/// it was at the first one, as `pg_dump` reads it.
const POSTGRES_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// How long a SQLite connection of a backup or restore waits for a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes a consistent snapshot of `source` to the new file `to`, checks the
/// file (SQLite's `quick_check`, a Palaver schema, the row counts), and
/// describes it. Refuses a `to` that exists.
pub async fn backup(source: Source<'_>, to: &Path) -> StoreResult<BackupFile> {
    refuse_existing(to)?;
    let staging = Staging::create(to)?;
    let staged = staging.path("backup.db");
    // PostgreSQL's snapshot counts, to check the file against.
    let expected = match source {
        Source::SqliteFile(path) => {
            vacuum_into(path.to_owned(), staged.clone()).await?;
            None
        }
        Source::Url(url) => match Engine::of(url)? {
            Engine::Sqlite => {
                vacuum_into(sqlite_path(url)?, staged.clone()).await?;
                None
            }
            Engine::Postgres => Some(copy_postgres(url, &staging, &staged).await?),
        },
    };
    let written = inspect(&staged).await?;
    if let Some(expected) = expected {
        verify(
            &expected,
            &written.tables,
            "the snapshot",
            "the backup file",
        )?;
    }
    publish(&staged, to)?;
    Ok(written)
}

/// Restores the backup file `from` into the empty store `to`, and checks
/// that every table holds as many rows as in the file.
pub async fn restore(from: &Path, to: &dyn Transfer) -> StoreResult<Vec<(Table, i64)>> {
    let backup = inspect(from).await?;
    transfer::ensure_empty(to).await?;
    let scratch = Staging::scratch()?;
    let copy = scratch.path("restore.db");
    vacuum_into(from.to_owned(), copy.clone()).await?;
    let source = SqliteStore::open(&copy, &StoreOptions::default())
        .await
        .map_err(|err| context(&format!("reading {}", from.display()), err))?;
    let copied = transfer::copy(&source, to).await;
    source.close().await;
    let copied = copied?;
    verify(
        &backup.tables,
        &copied,
        "the backup file",
        "the restored store",
    )?;
    Ok(copied)
}

/// Checks that `file` is a sound SQLite database with Palaver's schema, and
/// counts its rows. Reads only.
pub async fn inspect(file: &Path) -> StoreResult<BackupFile> {
    let file = file.to_owned();
    blocking(move || inspect_now(&file)).await
}

fn inspect_now(file: &Path) -> StoreResult<BackupFile> {
    let shown = file.display();
    let bytes = fs::metadata(file)
        .map_err(|err| StoreError::Other(format!("{shown}: {err}")))?
        .len();
    let connection = open_read_only(file)?;
    let mut check = connection
        .prepare("PRAGMA quick_check")
        .map_err(|err| StoreError::Other(format!("{shown} is not a SQLite database: {err}")))?;
    let findings: Vec<String> = check
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.take(5).collect())
        .map_err(|err| StoreError::Other(format!("{shown} is not a SQLite database: {err}")))?;
    if findings != ["ok"] {
        return Err(StoreError::Other(format!(
            "{shown} is damaged: {}",
            findings.join("; ")
        )));
    }
    let not_palaver =
        |what: String| StoreError::Other(format!("{shown} is not a Palaver database: {what}"));
    let schema_version: Option<i64> = connection
        .query_row(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
            [],
            |row| row.get(0),
        )
        .map_err(|err| not_palaver(err.to_string()))?;
    let schema_version =
        schema_version.ok_or_else(|| not_palaver("no migration applied".into()))?;
    // A table of a later schema than the file's holds no rows in it.
    let present = |table: Table| {
        connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table.name()],
                |row| row.get::<_, i64>(0),
            )
            .map(|found| found > 0)
            .map_err(map_rusqlite)
    };
    for table in [Table::Users, Table::Rooms, Table::Messages] {
        if !present(table)? {
            return Err(not_palaver(format!("it has no table {}", table.name())));
        }
    }
    let mut tables = Vec::new();
    for table in Table::ALL {
        let rows = if present(table)? {
            connection
                .query_row(
                    &format!("SELECT COUNT(*) FROM {}", table.name()),
                    [],
                    |row| row.get(0),
                )
                .map_err(map_rusqlite)?
        } else {
            0
        };
        tables.push((table, rows));
    }
    Ok(BackupFile {
        schema_version,
        bytes,
        tables,
    })
}

/// `VACUUM INTO` from `source` (read-only, one read transaction) into the
/// new file `target`, then flushed to disk (SQLite does not flush it).
async fn vacuum_into(source: PathBuf, target: PathBuf) -> StoreResult<()> {
    blocking(move || {
        let connection = open_read_only(&source)?;
        let target_name = target
            .to_str()
            .ok_or_else(|| StoreError::Other(format!("{}: not a UTF-8 path", target.display())))?;
        connection
            .execute("VACUUM INTO ?1", [target_name])
            .map_err(|err| context(&format!("copying {}", source.display()), map_rusqlite(err)))?;
        drop(connection);
        sync(&target)
    })
    .await
}

/// A connection that can neither write nor create `file`.
fn open_read_only(file: &Path) -> StoreResult<Connection> {
    if !file.is_file() {
        return Err(StoreError::Other(format!(
            "{}: no such database file",
            file.display()
        )));
    }
    let connection = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| context(&format!("opening {}", file.display()), map_rusqlite(err)))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(map_rusqlite)?;
    Ok(connection)
}

/// The path of a `sqlite:` URL.
fn sqlite_path(url: &str) -> StoreResult<PathBuf> {
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::Other(
            "an in-memory SQLite database has nothing to back up".into(),
        ));
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(map_err)?;
    Ok(options.get_filename().to_owned())
}

/// Copies PostgreSQL at `url`, as one snapshot, into a SQLite file in
/// `staging`, then compacts that into `staged`; returns the snapshot's counts.
async fn copy_postgres(
    url: &str,
    staging: &Staging,
    staged: &Path,
) -> StoreResult<Vec<(Table, i64)>> {
    // No statement timeout: counting a large table may take longer than a
    // request may; `application_name` shows the backup to the DBA.
    let connect = PgConnectOptions::from_str(url)
        .map_err(map_err)?
        .application_name("palaver-backup");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(connect)
        .await
        .map_err(map_err)?;
    let result = async {
        postgres_schema_is_current(&pool).await?;
        // Read without migrating: a backup never writes to what it copies.
        let source = PostgresStore {
            writer: pool.clone(),
            readers: pool.clone(),
            outbox_origin: None,
            engine: PostgresEngine,
        };
        let snapshot = source.snapshot(POSTGRES_SNAPSHOT).await?;
        let intermediate = staging.path("snapshot.db");
        let target = SqliteStore::open(&intermediate, &StoreOptions::default()).await?;
        let copied = transfer::copy(&snapshot, &target).await;
        target.close().await;
        drop(snapshot);
        let copied = copied?;
        vacuum_into(intermediate, staged.to_owned()).await?;
        Ok(copied)
    }
    .await;
    pool.close().await;
    result
}

/// This binary reads PostgreSQL with the SQL of its own newest schema: an
/// older database lacks columns it reads, a newer one has columns it would
/// silently leave out.
async fn postgres_schema_is_current(pool: &sqlx::PgPool) -> StoreResult<()> {
    let known = crate::postgres::MIGRATOR
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .map_err(|err| {
                StoreError::Other(format!("the database is not a Palaver database: {err}"))
            })?;
    match applied {
        Some(version) if version == known => Ok(()),
        Some(version) if version > known => Err(StoreError::Other(format!(
            "the database schema is at version {version}, newer than this palaver \
             (which knows versions up to {known}); back up with the palaver the nodes run"
        ))),
        Some(version) => Err(StoreError::Other(format!(
            "the database schema is at version {version}, older than this palaver's \
             ({known}); back up with the palaver the nodes run, or `palaver migrate` first"
        ))),
        None => Err(StoreError::Other(
            "the database is not a Palaver database: no migration applied".into(),
        )),
    }
}

/// Fails unless `expected` and `found` hold the same rows of every table.
fn verify(
    expected: &[(Table, i64)],
    found: &[(Table, i64)],
    source: &str,
    target: &str,
) -> StoreResult<()> {
    for (table, rows) in expected {
        let there = found
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, n)| *n);
        if there != *rows {
            return Err(StoreError::Other(format!(
                "verification failed: {} has {rows} rows in {source} but {there} in {target}",
                table.name()
            )));
        }
    }
    Ok(())
}

fn refuse_existing(to: &Path) -> StoreResult<()> {
    if to.symlink_metadata().is_ok() {
        return Err(StoreError::Other(format!(
            "{} exists; a backup never overwrites a file",
            to.display()
        )));
    }
    Ok(())
}

/// Gives the complete file `staged` the name `to`, unless something has
/// taken that name meanwhile, and makes the name durable.
fn publish(staged: &Path, to: &Path) -> StoreResult<()> {
    let io = |err: std::io::Error| StoreError::Other(format!("{}: {err}", to.display()));
    // The file holds the signing keys and password hashes: its owner's
    // alone, before it has a name anyone could look up.
    restrict_to_owner(staged, 0o600).map_err(io)?;
    match fs::hard_link(staged, to) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            return refuse_existing(to);
        }
        // A file system without hard links: the name was free just now.
        Err(_) => {
            refuse_existing(to)?;
            fs::rename(staged, to).map_err(io)?;
        }
    }
    sync(parent(to)).map_err(|err| context("flushing the directory", err))
}

/// Creates `dir` anew, readable by its owner alone: what is staged there is
/// a copy of the whole store.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Sets `path`'s permission bits to `mode` (Unix; elsewhere the directory's
/// own protection applies).
fn restrict_to_owner(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// A directory for a backup's or restore's files in progress, removed with
/// what it holds when dropped.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// `<to>.partial`, beside the backup: created anew, so two backups to one
    /// name cannot mix their files.
    fn create(to: &Path) -> StoreResult<Self> {
        let mut name = to
            .file_name()
            .ok_or_else(|| StoreError::Other(format!("{} names no file", to.display())))?
            .to_owned();
        name.push(".partial");
        let dir = to.with_file_name(name);
        private_dir(&dir).map_err(|err| {
            StoreError::Other(format!(
                "creating {}: {err} (if no backup is running, an interrupted one left it: remove it)",
                dir.display()
            ))
        })?;
        Ok(Self { dir })
    }

    /// A new directory under the system's temporary directory (`TMPDIR`).
    fn scratch() -> StoreResult<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("palaver-restore-{}-{nanos}", std::process::id()));
        private_dir(&dir)
            .map_err(|err| StoreError::Other(format!("creating {}: {err}", dir.display())))?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(err) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %err, "removing a backup's scratch files");
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Flushes a file, or a directory's entries, to disk.
fn sync(path: &Path) -> StoreResult<()> {
    fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|err| StoreError::Other(format!("{}: {err}", path.display())))
}

fn context(what: &str, err: StoreError) -> StoreError {
    match err {
        StoreError::Unavailable(cause) => StoreError::Unavailable(format!("{what}: {cause}")),
        StoreError::Conflict(rule) => StoreError::Conflict(rule),
        StoreError::Other(cause) => StoreError::Other(format!("{what}: {cause}")),
    }
}

/// Runs file and SQLite work off the runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StoreError::Other(format!("backup task: {err}")))?
}
