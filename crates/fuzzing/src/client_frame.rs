use palaver_protocol::ws::ClientFrame;

/// A WebSocket text frame as the session reads it.
pub fn client_frame(data: &[u8]) {
    // The transport hands the session text frames only: valid UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::parse(text) {
        Ok(frame) => {
            // What parsed means the same when written back and read again.
            let again = serde_json::to_string(&frame).expect("a frame serializes");
            assert_eq!(ClientFrame::parse(&again).as_ref(), Ok(&frame), "{again}");
        }
        Err(err) => assert!(
            ["malformed_frame", "unknown_type", "invalid_frame"].contains(&err.code),
            "undocumented code {}",
            err.code
        ),
    }
}
