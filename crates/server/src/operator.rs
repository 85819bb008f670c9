//! `palaver admin …`: who the server's admins are, decided by the operator
//! on the command line (there is no admin until one is granted). Each
//! command opens the store as `palaver keys` does, beside a running server
//! or not, and each change is an entry of the audit log with no admin.

use palaver_domain::accounts::UserLookup;
use palaver_domain::admin::{self, AdminGrant, AuditEntry};

use crate::config::Settings;

/// Makes `username` a server admin.
pub async fn grant(
    settings: &Settings,
    username: &str,
    reason: Option<&str>,
) -> anyhow::Result<AuditEntry> {
    let who = UserLookup::Username(username.to_owned());
    with_store(settings, |store| async move {
        admin::grant_as_operator(store.as_ref(), &who, reason).await
    })
    .await
}

/// Takes the admin role from `username`.
pub async fn revoke(
    settings: &Settings,
    username: &str,
    reason: Option<&str>,
) -> anyhow::Result<AuditEntry> {
    let who = UserLookup::Username(username.to_owned());
    with_store(settings, |store| async move {
        admin::revoke_as_operator(store.as_ref(), &who, reason).await
    })
    .await
}

/// Every server admin.
pub async fn admins(settings: &Settings) -> anyhow::Result<Vec<AdminGrant>> {
    with_store(settings, |store| async move {
        admin::admins_for_operator(store.as_ref()).await
    })
    .await
}

/// Opens the store, runs `work` on it, and closes it. In cluster mode the
/// change's events go to the outbox under an origin of this command's own,
/// whence the nodes' relays put them on the bus.
async fn with_store<T, F>(
    settings: &Settings,
    work: impl FnOnce(std::sync::Arc<dyn palaver_domain::store::Store>) -> F,
) -> anyhow::Result<T>
where
    F: std::future::Future<Output = palaver_domain::Result<T>>,
{
    let mut options = settings.store_options();
    if settings.kafka.brokers.is_some() {
        options.outbox_origin = Some(format!("cli-{:016x}", rand::random::<u64>()));
    }
    let store = crate::app::open_store(settings, &options).await?;
    let result = work(store.clone().as_store()).await;
    store.close().await;
    Ok(result?)
}
