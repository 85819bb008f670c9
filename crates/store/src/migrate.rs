//! Running migrations, and refusing a database newer than this binary.

use palaver_domain::store::{StoreError, StoreResult};
use sqlx::migrate::{MigrateError, Migrator};

pub async fn run<'a, A>(migrator: &Migrator, pool: A) -> StoreResult<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let newest_known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    migrator.run(pool).await.map_err(|err| match err {
        MigrateError::VersionMissing(version) => StoreError::Other(format!(
            "the database schema is at version {version}, newer than this palaver \
             (which knows versions up to {newest_known}); upgrade palaver before using this database"
        )),
        other => StoreError::Other(format!("migrating the database: {other}")),
    })
}
