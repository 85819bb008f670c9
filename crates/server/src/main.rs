//! `palaver`: start the server. See `palaver --help`.

use std::process::ExitCode;

use palaver_server::config::{AdminCommand, Command, DbCommand, KeysCommand, ServeArgs};
use palaver_server::{app, telemetry, Application, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    return_large_allocations_at_once();
    let cli = palaver_server::config::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Migrate(args)) => migrate(args).await,
        Some(Command::Db(DbCommand::Copy { from, to })) => copy(&from, &to).await,
        Some(Command::Db(DbCommand::Backup { to, serve })) => backup(&to, serve).await,
        Some(Command::Db(DbCommand::Restore { from, serve })) => restore(&from, serve).await,
        Some(Command::Keys(command)) => keys(command).await,
        Some(Command::Admin(command)) => admin(command).await,
    }
}

/// `palaver admin grant|revoke|list` (`palaver_server::operator`).
async fn admin(command: AdminCommand) -> ExitCode {
    use palaver_server::operator;
    let args = match &command {
        AdminCommand::Grant { serve, .. } | AdminCommand::Revoke { serve, .. } => serve.clone(),
        AdminCommand::List(serve) => serve.clone(),
    };
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let done = match &command {
        AdminCommand::Grant {
            username, reason, ..
        } => operator::grant(&settings, username, reason.as_deref())
            .await
            .map(|entry| format!("{username} is a server admin (audit entry {})", entry.id)),
        AdminCommand::Revoke {
            username, reason, ..
        } => operator::revoke(&settings, username, reason.as_deref())
            .await
            .map(|entry| {
                format!(
                    "{username} is no server admin now (audit entry {})",
                    entry.id
                )
            }),
        AdminCommand::List(_) => operator::admins(&settings).await.map(|admins| {
            let mut out = format!(
                "{:<10} {:<33} {:<26} granted by",
                "id", "username", "granted at"
            );
            for grant in admins {
                let by = grant
                    .granted_by
                    .map_or("the command line".to_owned(), |by| format!("user {by}"));
                out.push_str(&format!(
                    "\n{:<10} {:<33} {:<26} {by}",
                    grant.user.id,
                    grant.user.username,
                    grant.granted_at.to_rfc3339()
                ));
            }
            out
        }),
    };
    match done {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("palaver: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc serves an allocation above a threshold with its own `mmap`, given
/// back to the system when freed, but after such a free it raises the
/// threshold to that size: from then on each password hash's 19 MiB comes
/// from a thread's heap and stays there. Measured: three logins left 58 MiB
/// resident, a flood of logins 80 MiB more than the two hashes it ran at
/// once. A fixed threshold keeps every hash's memory only while it runs.
fn return_large_allocations_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any
    // large allocation, and glibc synchronizes it with other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

fn load(args: ServeArgs) -> Result<Settings, ExitCode> {
    let settings = Settings::load(args).map_err(|err| {
        eprintln!("palaver: {err:#}");
        ExitCode::from(2)
    })?;
    telemetry::init(settings.log.format);
    for variable in palaver_server::config::unknown_variables(std::env::vars().map(|(k, _)| k)) {
        tracing::warn!(%variable, "unknown PALAVER_* variable ignored");
    }
    Ok(settings)
}

async fn migrate(args: ServeArgs) -> ExitCode {
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if let Err(err) = std::fs::create_dir_all(&settings.data_dir) {
        eprintln!("palaver: creating {}: {err}", settings.data_dir.display());
        return ExitCode::FAILURE;
    }
    match app::open_store(&settings, &settings.store_options()).await {
        Ok(store) => {
            store.close().await;
            println!("database schema is up to date");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("palaver: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn keys(command: KeysCommand) -> ExitCode {
    use palaver_domain::keys::{self, KeyAlgorithm, KeySchedule};
    use palaver_domain::time::Timestamp;

    let (args, rotation) = match command {
        KeysCommand::List(args) => (args, None),
        KeysCommand::Rotate {
            algorithm,
            publish_ahead_secs,
            serve,
        } => match KeyAlgorithm::parse(&algorithm) {
            Ok(algorithm) => (serve, Some((algorithm, publish_ahead_secs))),
            Err(_) => {
                eprintln!("palaver: --algorithm must be EdDSA or RS256");
                return ExitCode::from(2);
            }
        },
    };
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let store = match app::open_store(&settings, &settings.store_options()).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("palaver: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let lifetime =
        palaver_domain::tokens::token_lifetime_secs(settings.tokens.access_ttl.as_secs());
    let now = Timestamp::now();
    let key_store: &dyn palaver_domain::store::KeyStore = &*store;
    let result = async {
        if let Some((algorithm, ahead)) = rotation {
            let (key, deleted) =
                keys::rotate(key_store, algorithm, ahead as i64, lifetime, now).await?;
            println!(
                "added {} ({}), published now, signing from {}",
                key.kid,
                key.algorithm.jose_name(),
                key.signs_from.to_rfc3339()
            );
            for kid in deleted {
                println!("deleted {kid}: retired, no token of it can still be valid");
            }
        }
        let schedule = KeySchedule::new(key_store.signing_keys().await?);
        let signer = schedule.signer(now).map(|k| k.kid.clone());
        println!("{:<18} {:<6} {:<26} state", "kid", "alg", "signs from");
        for key in schedule.keys() {
            let state = if Some(&key.kid) == signer.as_ref() {
                "signing".to_owned()
            } else if key.signs_from > now {
                "published, not signing yet".to_owned()
            } else {
                let retired = schedule
                    .superseded_at(key)
                    .map(|at| at.plus_seconds(lifetime).to_rfc3339())
                    .unwrap_or_default();
                format!("verifying until {retired}")
            };
            println!(
                "{:<18} {:<6} {:<26} {state}",
                key.kid,
                key.algorithm.jose_name(),
                key.signs_from.to_rfc3339()
            );
        }
        Ok::<_, palaver_domain::Error>(())
    }
    .await;
    store.close().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("palaver: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn copy(from: &str, to: &str) -> ExitCode {
    let options = palaver_store::StoreOptions::default();
    let opened = async {
        let source = palaver_store::open(from, &options).await?;
        let target = palaver_store::open(to, &options).await?;
        Ok::<_, palaver_domain::store::StoreError>((source, target))
    };
    let (source, target) = match opened.await {
        Ok(stores) => stores,
        Err(err) => {
            eprintln!("palaver: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = palaver_store::transfer::copy(source.as_ref(), target.as_ref()).await;
    source.close().await;
    target.close().await;
    match result {
        Ok(report) => {
            for (table, rows) in report {
                println!("{:<15} {rows:>10} rows copied and verified", table.name());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("palaver: copy failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `db backup`: the store the settings name, as the running server has it.
async fn backup(to: &std::path::Path, args: ServeArgs) -> ExitCode {
    use palaver_store::backup::{self, Source};
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let (url, path) = (settings.database_url(), settings.database_path());
    let source = match &url {
        Some(url) => Source::Url(url),
        None => Source::SqliteFile(&path),
    };
    match backup::backup(source, to).await {
        Ok(file) => {
            println!(
                "{}: {} bytes, schema version {}",
                to.display(),
                file.bytes,
                file.schema_version
            );
            for (table, rows) in file.tables {
                println!("{:<15} {rows:>10} rows", table.name());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("palaver: backup failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `db restore`: into the store the settings name, created if need be.
async fn restore(from: &std::path::Path, args: ServeArgs) -> ExitCode {
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if settings.database_url().is_none() {
        if let Err(err) = std::fs::create_dir_all(&settings.data_dir) {
            eprintln!("palaver: creating {}: {err}", settings.data_dir.display());
            return ExitCode::FAILURE;
        }
    }
    let target = match app::open_store(&settings, &settings.store_options()).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("palaver: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = palaver_store::backup::restore(from, target.as_ref()).await;
    target.close().await;
    match result {
        Ok(report) => {
            for (table, rows) in report {
                println!("{:<15} {rows:>10} rows restored and verified", table.name());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("palaver: restore failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let settings = match load(args) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("failed to start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        shutdown.cancel();
    });
    match app.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
