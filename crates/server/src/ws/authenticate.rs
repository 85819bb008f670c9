//! The authentication phase: before it succeeds nothing else is accepted and
//! nothing is delivered.

use std::collections::BTreeMap;

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
        None => {
            let FirstFrame { token, resume } = first_frame(socket, state).await?;
            let token = token.or(cookie_token).ok_or(Refused::Unauthorized(
                "no token: neither in the auth frame nor a sign-in cookie from an allowed origin",
            ))?;
            (token, resume)
        }
    };
    let bearer = state
        .services
        .accounts
        .verify_token(&token)
        .await
        .map_err(|_| Refused::Unauthorized("invalid or expired access token"))?;
    Ok(Authenticated { bearer, resume })
}

/// Reads the first frame off the socket, within the authentication timeout.
async fn first_frame(socket: &mut WebSocket, state: &AppState) -> Result<FirstFrame, Refused> {
    let timeout = state.settings.realtime.auth_timeout;
    let received = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(Refused::Gone),
        received = tokio::time::timeout(timeout, socket.recv()) => received,
    };
    let text = match received {
        Err(_) => return Err(Refused::Unauthorized("authentication timed out")),
        Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Err(Refused::Gone),
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Ok(_))) => return Err(Refused::Unauthorized(NOT_AUTHENTICATING)),
    };
    read_first_frame(text.as_str()).map_err(Refused::Unauthorized)
}

const NOT_AUTHENTICATING: &str = "first frame must authenticate";

/// What a first frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstFrame {
    /// None: sign in with the cookie, if an allowed origin sent one.
    pub token: Option<String>,
    /// Positions to replay from before live delivery.
    pub resume: Option<BTreeMap<String, u64>>,
}

/// Reads a first frame's text: `{"type":"auth","token"?:…,"resume"?:…}`, or
/// a bare token; the close reason when it is neither.
pub fn read_first_frame(text: &str) -> Result<FirstFrame, &'static str> {
    let text = text.trim();
    if text.starts_with('{') {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Auth { token, resume }) => Ok(FirstFrame { token, resume }),
            _ => Err(NOT_AUTHENTICATING),
        }
    } else {
        Ok(FirstFrame {
            token: Some(text.to_owned()),
            resume: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_frame_is_an_auth_frame_or_a_bare_token() {
        let auth = read_first_frame(r#"{"type":"auth","token":"t","resume":{"7":3}}"#).unwrap();
        assert_eq!(auth.token.as_deref(), Some("t"));
        assert_eq!(auth.resume, Some(BTreeMap::from([("7".to_owned(), 3)])));
        let by_cookie = read_first_frame(r#" {"type":"auth"} "#).unwrap();
        assert_eq!(by_cookie.token, None);
        let bare = read_first_frame("  eyJ.x.y\n").unwrap();
        assert_eq!(
            (bare.token.as_deref(), bare.resume),
            (Some("eyJ.x.y"), None)
        );
        for refused in [r#"{"type":"ping"}"#, r#"{"type":"auth","#, "{}"] {
            assert_eq!(
                read_first_frame(refused),
                Err(NOT_AUTHENTICATING),
                "{refused}"
            );
        }
    }
}
