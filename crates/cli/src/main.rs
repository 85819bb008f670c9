//! `palaver-cli`: Palaver from a shell.
//!
//! Exit codes: 0 done; 1 the server refused (its error code is printed);
//! 2 bad usage (an unreadable `--ca-file` too); 3 not signed in (run
//! `palaver-cli login`); 4 the server could not be reached (no connection, or
//! a TLS handshake that failed: a certificate not trusted, or not for its name).

mod admin;
mod chat;
mod credentials;
mod files;
mod sanitize;
mod tail;

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use palaver_client::types::mentions::MentionQuery;
use palaver_client::types::search::SearchQuery;
use palaver_client::types::{HistoryQuery, Message, ReactionCount};
use palaver_client::{Client, ClientError, Transport, Trust};

use crate::credentials::{Credentials, SignIn};
use crate::sanitize::line as shown;

#[derive(Parser)]
#[command(name = "palaver-cli", version, about = "Palaver from a shell")]
struct Cli {
    /// The server's base URL.
    #[arg(
        long,
        env = "PALAVER_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// PEM CA certificates trusted, beside the system's, for an `https://`
    /// server (a private CA, or a self-signed server's certificate).
    #[arg(long, env = "PALAVER_CA_FILE", global = true, value_name = "PATH")]
    ca_file: Option<PathBuf>,
    /// Where the sign-in is kept (default: the user's config directory).
    #[arg(long, env = "PALAVER_CONFIG_DIR", global = true)]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account (the password is read from stdin).
    Register { username: String },
    /// Sign in (the password is read from stdin); the tokens are kept.
    Login { username: String },
    /// Sign out: the login ends on the server and its tokens are forgotten.
    Logout,
    /// Your rooms, with unread counts.
    Rooms,
    /// Create a room; prints its join code.
    Create {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Join a room by its code.
    Join {
        code: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// A room's members.
    Members { room: i64 },
    /// A room's members online now.
    Online { room: i64 },
    /// A page of a room's messages, oldest first.
    History {
        room: i64,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Only messages before this seq.
        #[arg(long)]
        before: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Send a message (the text from the arguments, or else from stdin).
    Send {
        room: i64,
        text: Vec<String>,
        /// Attach this file (uploaded first; up to 10 times).
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<PathBuf>,
    },
    /// Search the messages of your rooms: every word, best match first
    /// (a word ending in * matches the words it starts).
    Search {
        #[arg(required = true)]
        words: Vec<String>,
        /// Only this room.
        #[arg(long)]
        room: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Report a message of a room to the server's admins.
    Report {
        room: i64,
        seq: u64,
        /// Why (one line).
        #[arg(required = true)]
        reason: Vec<String>,
    },
    /// The server admin API (server admins only).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Chat interactively: rooms with unread counts, the conversation, who is
    /// typing, an input box.
    Chat {
        /// Over gRPC `Realtime.Connect` instead of the WebSocket.
        #[arg(long)]
        grpc: bool,
    },
    /// Print the rooms' messages as they arrive, one line each (reconnects
    /// and resumes by itself).
    Tail {
        #[arg(required = true)]
        rooms: Vec<i64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Over gRPC `Realtime.Connect` instead of the WebSocket.
        #[arg(long)]
        grpc: bool,
    },
    /// React to a message with one emoji or a `:name:` (again: no change).
    React {
        room: i64,
        seq: u64,
        emoji: String,
        /// Take the reaction back instead.
        #[arg(long)]
        remove: bool,
    },
    /// The messages that mention you, newest first.
    Mentions {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The `next` a previous page printed last.
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Download a message's file by its id (as `history` lists it): to
    /// `--out`, or else to stdout.
    Download {
        /// An id may start with `-` (ids are URL-safe base64).
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
}

/// Why the command failed, as the exit code says.
#[derive(Debug)]
enum Failure {
    Refused(ClientError),
    Usage(String),
    NotSignedIn,
    Unreachable(String),
    Other(anyhow::Error),
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Api { .. } => Failure::Refused(err),
            ClientError::Transport(message) => Failure::Unreachable(message),
            ClientError::Trust(message) => Failure::Usage(format!("--ca-file: {message}")),
            other => Failure::Other(other.into()),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Other(err)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(err)) => {
            match &err {
                ClientError::Api { code, message, .. } => {
                    eprintln!("error: {}: {}", shown(code), shown(message))
                }
                other => eprintln!("error: {}", shown(&other.to_string())),
            }
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("error: {}", shown(&message));
            ExitCode::from(2)
        }
        Err(Failure::NotSignedIn) => {
            eprintln!("error: not signed in: run `palaver-cli login USERNAME`");
            ExitCode::from(3)
        }
        Err(Failure::Unreachable(message)) => {
            eprintln!("error: cannot reach the server: {}", shown(&message));
            ExitCode::from(4)
        }
        Err(Failure::Other(err)) => {
            eprintln!("error: {}", shown(&format!("{err:#}")));
            ExitCode::from(1)
        }
    }
}

/// The password: one line of stdin (prompted for on a terminal).
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let path = credentials::path(cli.config_dir.as_deref())?;
    let trust = match &cli.ca_file {
        Some(file) => Trust::with_ca_file(file)?,
        None => Trust::system(),
    };
    let anonymous = Client::with_trust(&cli.server, trust.clone());
    match cli.command {
        Command::Register { username } => {
            let password = read_password()?;
            let user = anonymous.register(&username, &password, None).await?;
            println!("registered {} (id {})", username, user.id);
            return Ok(());
        }
        Command::Login { username } => {
            let password = read_password()?;
            let tokens = anonymous.login(&username, &password).await?;
            let signed_in = Credentials::from_login(&cli.server, tokens);
            credentials::save(&path, &signed_in)?;
            println!("signed in as {username}");
            return Ok(());
        }
        Command::Logout => {
            if let Some(signed_in) = credentials::load(&path)? {
                let client = Client::with_trust(&signed_in.server, trust.clone());
                match client.logout(&signed_in.refresh_token).await {
                    Ok(()) | Err(ClientError::Api { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            credentials::remove(&path)?;
            println!("signed out");
            return Ok(());
        }
        _ => {}
    }
    let sign_in = signed_in(&path, &cli.server, trust).await?;
    let client = sign_in.client().await?;
    match cli.command {
        Command::Rooms => {
            for summary in client.rooms().await? {
                println!(
                    "{}\t{}\t{}\tunread {}\tmentions {}",
                    summary.room.id,
                    shown(&summary.room.code),
                    shown(&summary.room.name),
                    summary.unread_count,
                    summary.unread_mentions
                );
            }
        }
        Command::Create { name, password } => {
            let room = client.create_room(&name, password.as_deref()).await?;
            println!(
                "created room {} ({}): join code {}",
                room.id,
                shown(&room.name),
                shown(&room.code)
            );
        }
        Command::Join { code, password } => {
            let room = client.join_room(&code, password.as_deref()).await?;
            println!("joined room {} ({})", room.id, shown(&room.name));
        }
        Command::Members { room } => {
            for member in client.members(room).await? {
                let name = member.user.username.unwrap_or_else(|| "(deleted)".into());
                let online = if member.online { "online" } else { "offline" };
                println!(
                    "{}\t{}\t{}\t{online}",
                    member.user.id,
                    shown(&name),
                    shown(&member.role)
                );
            }
        }
        Command::Online { room } => {
            for member in client.online(room).await? {
                let name = member.user.username.unwrap_or_else(|| "(deleted)".into());
                println!("{}\t{}", member.user.id, shown(&name));
            }
        }
        Command::History {
            room,
            limit,
            before,
            json,
        } => {
            let query = HistoryQuery {
                before,
                after: None,
                limit: Some(limit),
            };
            for message in client.history(room, &query).await?.messages {
                print_message(&message, json);
            }
        }
        Command::Send { room, text, files } => {
            files::check(&files)?;
            let body = if text.is_empty() {
                let mut body = String::new();
                std::io::stdin()
                    .read_to_string(&mut body)
                    .map_err(anyhow::Error::from)?;
                body.trim_end_matches('\n').to_owned()
            } else {
                text.join(" ")
            };
            let sent = if files.is_empty() {
                client.post_message(room, &body, None).await?
            } else {
                let ids = files::upload(&client, room, &files).await?;
                client.post_with_attachments(room, &body, &ids).await?
            };
            println!("stored as #{}", sent.seq);
            for line in files::lines(&sent.attachments) {
                println!("{line}");
            }
        }
        Command::Search {
            words,
            room,
            limit,
            json,
        } => {
            let query = SearchQuery {
                q: words.join(" "),
                room,
                limit: Some(limit),
                ..SearchQuery::default()
            };
            for result in client.search(&query).await?.results {
                print_message(&result.message, json);
            }
        }
        Command::Report { room, seq, reason } => {
            let filed = client.report_message(room, seq, &reason.join(" ")).await?;
            println!("reported message #{} of room {}", filed.seq, filed.room);
        }
        Command::Admin(command) => admin::run(&client, command).await?,
        Command::Chat { grpc } => chat::run(sign_in, transport(grpc)).await?,
        Command::Tail { rooms, json, grpc } => {
            tail::run(sign_in, transport(grpc), &rooms, json).await?;
        }
        Command::React {
            room,
            seq,
            emoji,
            remove,
        } => {
            if remove {
                client.unreact(room, seq, &emoji).await?;
                println!("no reaction {} on message #{seq}", sanitize::line(&emoji));
            } else {
                client.react(room, seq, &emoji).await?;
                println!("reacted {} to message #{seq}", sanitize::line(&emoji));
            }
        }
        Command::Mentions {
            limit,
            cursor,
            json,
        } => {
            let query = MentionQuery {
                cursor,
                limit: Some(limit),
            };
            let page = client.mentions(&query).await?;
            for mention in &page.mentions {
                if !json {
                    print!("{}\t", shown(&mention.room_name));
                }
                print_message(&mention.message, json);
            }
            if let Some(next) = page.next {
                eprintln!("more: --cursor {}", shown(&next));
            }
        }
        Command::Download { id, out } => files::download(&client, &id, out.as_deref()).await?,
        Command::Register { .. } | Command::Login { .. } | Command::Logout => {
            unreachable!("handled before signing in")
        }
    }
    Ok(())
}

/// The kept sign-in, refreshed (and saved) first when it is about to expire.
async fn signed_in(path: &std::path::Path, server: &str, trust: Trust) -> Result<SignIn, Failure> {
    let kept = credentials::load(path)?.ok_or(Failure::NotSignedIn)?;
    if kept.server != server.trim_end_matches('/') {
        return Err(Failure::NotSignedIn);
    }
    let sign_in = SignIn::new(path, kept, trust);
    match sign_in.fresh_token().await {
        Ok(_) => Ok(sign_in),
        Err(ClientError::Api { status: 401, .. }) => Err(Failure::NotSignedIn),
        Err(err) => Err(err.into()),
    }
}

/// One message on a line of its own, as `tail` prints it (or as JSON).
fn print_message(message: &Message, json: bool) {
    if json {
        println!("{}", sanitize::json(message));
    } else {
        let line = tail::line(
            message.room_id,
            message.seq,
            message.sender_id,
            &message.body,
        );
        println!("{line}{}", reactions(&message.reactions));
        for line in files::lines(&message.attachments) {
            println!("{line}");
        }
    }
}

/// A message's reactions after its line: `  [👍 2 (you), :tada: 1]`, or
/// nothing when it has none.
fn reactions(counts: &[ReactionCount]) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = (counts.iter())
        .map(|count| {
            let mine = if count.me { " (you)" } else { "" };
            format!("{} {}{mine}", sanitize::line(&count.emoji), count.count)
        })
        .collect();
    format!("  [{}]", shown.join(", "))
}

fn transport(grpc: bool) -> Transport {
    if grpc {
        Transport::Grpc
    } else {
        Transport::WebSocket
    }
}
