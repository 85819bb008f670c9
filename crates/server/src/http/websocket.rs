//! The WebSocket upgrade as every real-time transport over one (the native
//! WebSocket, STOMP, SignalR; Socket.IO's read buffer too) configures it, and
//! what its read errors mean.

use axum::extract::WebSocketUpgrade;

use crate::config::Settings;

/// tungstenite zero-fills its read buffer up to this size before *every* read
/// (snapview/tungstenite-rs#547): with the 128 KiB default that is a 128 KiB
/// memset per socket poll and 128 KiB of RSS per idle connection. The buffer
/// is allocated with the socket and kept for its life, idle or not: at 256
/// bytes it is a sixteenth of an idle connection's 4 KiB budget, and a send of
/// a chat line (about 100 bytes of frame around its body) fits in one read. It
/// is also what one read asks the socket for: a frame at the 17 KiB limit takes
/// about 70 reads (one with a 4 KiB buffer), a cost bounded by the bytes
/// received and paid only by the rare large frame, which idle connections'
/// memory does not pay for.
pub(crate) const READ_BUFFER_BYTES: usize = 256;

/// `ws` with the frame limit of `settings` and the small read buffer.
pub(crate) fn realtime_upgrade(ws: WebSocketUpgrade, settings: &Settings) -> WebSocketUpgrade {
    let max_frame = settings.max_frame_bytes();
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .read_buffer_size(READ_BUFFER_BYTES)
}

/// Whether a read error is a message over the frame limit (which closes as
/// too large); any other means the peer is gone.
pub(crate) fn too_large(err: axum::Error) -> bool {
    matches!(
        err.into_inner().downcast::<tungstenite::Error>(),
        Ok(err) if matches!(*err, tungstenite::Error::Capacity(_))
    )
}
