//! A minimal terminal chat: prints every frame of a room and sends each line
//! typed on stdin as a message.
//!
//! ```text
//! cargo run -p palaver-client --example chat -- http://127.0.0.1:8080 ACCESS_TOKEN ROOM_ID
//! ```

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::{ClientError, WsAuth, WsConnection};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, token, room] = args.as_slice() else {
        eprintln!("usage: chat SERVER_URL ACCESS_TOKEN ROOM_ID");
        std::process::exit(2);
    };
    let room: i64 = room.parse()?;
    let mut ws = WsConnection::connect(server, WsAuth::Header(token.clone())).await?;
    if let Some(ServerFrame::Ready { user, .. }) = &ws.ready {
        eprintln!(
            "connected as {}; type a line and press Enter to send",
            user.username.as_deref().unwrap_or(&user.display_name)
        );
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(body) if !body.trim().is_empty() => {
                    sent += 1;
                    let client_id = Some(format!("chat-{}-{sent}", std::process::id()));
                    ws.send(&ClientFrame::Send { room, body, client_id, reply_to: None, attachments: Vec::new() }).await?;
                }
                Some(_) => {}
                None => break,
            },
            frame = ws.next_frame() => match frame {
                Ok(ServerFrame::Message { room: r, seq, sender_id, body, .. }) if r == room => {
                    println!("[{seq}] user {sender_id}: {body}");
                }
                Ok(ServerFrame::Ack { seq, .. }) => eprintln!("(stored as #{seq})"),
                Ok(ServerFrame::Error { code, message, .. }) => eprintln!("error {code}: {message}"),
                Ok(_) => {}
                Err(ClientError::Closed { code, reason }) => {
                    eprintln!("server closed the connection: {code} {reason}");
                    break;
                }
                Err(err) => return Err(err.into()),
            },
        }
    }
    ws.close().await;
    Ok(())
}
