//! The authentication phase: before it succeeds nothing else is accepted and
//! nothing is delivered.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use palaver_domain::tokens::Bearer;
use palaver_protocol::ws::ClientFrame;

use crate::node::AppState;

pub struct Authenticated {
    /// Whose token it is; the session checks that its login is live.
    pub bearer: Bearer,
    /// Positions sent with the `auth` frame, applied before live delivery.
    pub resume: Option<BTreeMap<String, u64>>,
}

pub enum Refused {
    /// Close with 4001 and this reason.
    Unauthorized(&'static str),
    /// The server is shutting down, or the socket went away.
    Gone,
}

/// `preset_token`: from the upgrade's header or query, which makes the first
/// frame an ordinary one; `cookie_token`: from the sign-in cookie of an
/// allowed origin, used when the `auth` frame carries no token of its own.
pub async fn authenticate(
    socket: &mut WebSocket,
    state: &AppState,
    preset_token: Option<String>,
    cookie_token: Option<String>,
) -> Result<Authenticated, Refused> {
    let (token, resume) = match preset_token {
        Some(token) => (token, None),
        None => match first_frame(socket, state).await? {
            (Some(token), resume) => (token, resume),
            (None, resume) => (
                cookie_token.ok_or(Refused::Unauthorized(
                    "no token: neither in the auth frame nor a sign-in cookie from an allowed origin",
                ))?,
                resume,
            ),
        },
    };
    let bearer = state
        .services
        .accounts
        .verify_token(&token)
        .await
        .map_err(|_| Refused::Unauthorized("invalid or expired access token"))?;
    Ok(Authenticated { bearer, resume })
}

/// Accepts `{"type":"auth","token"?:…,"resume"?:…}` or a bare token string.
async fn first_frame(
    socket: &mut WebSocket,
    state: &AppState,
) -> Result<(Option<String>, Option<BTreeMap<String, u64>>), Refused> {
    let timeout = Duration::from_millis(state.settings.ws_auth_timeout_ms);
    let received = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(Refused::Gone),
        received = tokio::time::timeout(timeout, socket.recv()) => received,
    };
    let text = match received {
        Err(_) => return Err(Refused::Unauthorized("authentication timed out")),
        Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Err(Refused::Gone),
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Ok(_))) => return Err(Refused::Unauthorized("first frame must authenticate")),
    };
    let text = text.as_str().trim();
    if text.starts_with('{') {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Auth { token, resume }) => Ok((token, resume)),
            _ => Err(Refused::Unauthorized("first frame must authenticate")),
        }
    } else {
        Ok((Some(text.to_owned()), None))
    }
}
