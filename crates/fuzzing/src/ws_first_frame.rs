use palaver_protocol::ws::ClientFrame;
use palaver_server::fuzzing_api::read_first_frame;

/// A WebSocket's first text frame as authentication reads it: an `auth`
/// frame (its token, or none for the sign-in cookie, and `resume`) or a bare
/// token.
pub fn ws_first_frame(data: &[u8]) {
    // The transport hands authentication text frames only: valid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trimmed = text.trim();
    match read_first_frame(text) {
        Ok(first) if trimmed.starts_with('{') => {
            // An `auth` frame means what the session's own reader makes of
            // it, and the client's spelling of it reads back the same.
            let frame = ClientFrame::Auth {
                token: first.token.clone(),
                resume: first.resume.clone(),
            };
            assert_eq!(ClientFrame::parse(trimmed).as_ref(), Ok(&frame));
            let written = serde_json::to_string(&frame).expect("a frame serializes");
            assert_eq!(read_first_frame(&written), Ok(first), "{written}");
        }
        Ok(first) => {
            // A bare token, as sent but for the blanks around it.
            assert_eq!(first.token.as_deref(), Some(trimmed));
            assert_eq!(first.resume, None);
        }
        Err(reason) => {
            // Only an object that is no `auth` frame is refused.
            assert_eq!(reason, "first frame must authenticate");
            assert!(trimmed.starts_with('{'));
            assert!(
                !matches!(ClientFrame::parse(trimmed), Ok(ClientFrame::Auth { .. })),
                "an auth frame was refused: {trimmed}"
            );
        }
    }
}
