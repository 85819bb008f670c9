//! `chat`: an interactive terminal UI — the rooms with their unread counts,
//! the conversation, who is typing, an input box. `App` is the state and
//! `render` draws it (tested on ratatui's test backend); `run` connects them
//! to the terminal and a live session (WebSocket or gRPC).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::{HistoryQuery, RoomSummary};
use palaver_client::{LiveEvent, LiveSession, Transport};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use crate::credentials::SignIn;
use crate::sanitize;
use crate::Failure;

/// How long "… is typing" stays without a repeat.
const TYPING_SHOWN: Duration = Duration::from_secs(3);
/// Messages shown per room (older ones scroll away).
const KEPT_PER_ROOM: usize = 500;

pub struct RoomRow {
    pub id: i64,
    pub name: String,
    pub unread: u64,
    pub last_seq: u64,
}

pub struct App {
    me: i64,
    rooms: Vec<RoomRow>,
    selected: usize,
    /// Per room: (seq, sender, body), in seq order.
    messages: HashMap<i64, Vec<(u64, i64, String)>>,
    typing: HashMap<i64, (i64, Instant)>,
    pub input: String,
    pub status: String,
    sent: u64,
}

/// What a key asks the loop to do.
#[derive(Debug, PartialEq)]
pub enum Action {
    Nothing,
    Quit,
    /// Send this frame on the live connection.
    Frame(ClientFrame),
    /// The selection moved to this room: load its history, mark it read.
    Opened(i64),
}

impl App {
    pub fn new(me: i64, rooms: &[RoomSummary]) -> Self {
        Self {
            me,
            rooms: rooms
                .iter()
                .map(|s| RoomRow {
                    id: s.room.id,
                    name: s.room.name.clone(),
                    unread: s.unread_count,
                    last_seq: s.last_seq,
                })
                .collect(),
            selected: 0,
            messages: HashMap::new(),
            typing: HashMap::new(),
            input: String::new(),
            status: "Tab/↑↓: rooms · Enter: send · Esc: quit".into(),
            sent: 0,
        }
    }

    pub fn current(&self) -> Option<i64> {
        self.rooms.get(self.selected).map(|r| r.id)
    }

    /// Each room's newest seq shown, where the live session starts.
    pub fn positions(&self) -> BTreeMap<i64, u64> {
        self.rooms.iter().map(|r| (r.id, r.last_seq)).collect()
    }

    /// Messages read from history: merged in seq order, none twice.
    pub fn add_history(&mut self, room: i64, page: Vec<(u64, i64, String)>) {
        for (seq, sender, body) in page {
            self.add_message(room, seq, sender, body, false);
        }
    }

    fn add_message(&mut self, room: i64, seq: u64, sender: i64, body: String, live: bool) {
        let kept = self.messages.entry(room).or_default();
        match kept.binary_search_by_key(&seq, |m| m.0) {
            Ok(_) => return,
            Err(at) => kept.insert(at, (seq, sender, body)),
        }
        if kept.len() > KEPT_PER_ROOM {
            kept.remove(0);
        }
        let current = self.current();
        if let Some(row) = self.rooms.iter_mut().find(|r| r.id == room) {
            row.last_seq = row.last_seq.max(seq);
            if live && sender != self.me && current != Some(room) {
                row.unread += 1;
            }
        }
    }

    pub fn on_frame(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Message {
                room,
                seq,
                sender_id,
                body,
                ..
            } => {
                self.typing.remove(&room);
                self.add_message(room, seq, sender_id, body, true);
            }
            ServerFrame::Typing { room, user_id, .. } => {
                self.typing.insert(room, (user_id, Instant::now()));
            }
            ServerFrame::Ack { seq, .. } => self.status = format!("stored as #{seq}"),
            ServerFrame::Error { code, message, .. } => {
                self.status = format!("error: {code}: {message}")
            }
            _ => {}
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind != KeyEventKind::Press {
            return Action::Nothing;
        }
        match key.code {
            KeyCode::Esc => Action::Quit,
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Action::Quit,
            KeyCode::Tab | KeyCode::Down => self.select(1),
            KeyCode::BackTab | KeyCode::Up => self.select(-1),
            KeyCode::Enter => {
                let (Some(room), false) = (self.current(), self.input.trim().is_empty()) else {
                    return Action::Nothing;
                };
                self.sent += 1;
                let body = std::mem::take(&mut self.input);
                Action::Frame(ClientFrame::Send {
                    room,
                    body,
                    client_id: Some(format!("cli-{}-{}", std::process::id(), self.sent)),
                    reply_to: None,
                    attachments: Vec::new(),
                })
            }
            KeyCode::Backspace => {
                self.input.pop();
                Action::Nothing
            }
            KeyCode::Char(c) => {
                self.input.push(c);
                match self.current() {
                    Some(room) if self.input.len() == 1 => Action::Frame(ClientFrame::Typing {
                        room,
                        reference: None,
                    }),
                    _ => Action::Nothing,
                }
            }
            _ => Action::Nothing,
        }
    }

    fn select(&mut self, step: isize) -> Action {
        if self.rooms.is_empty() {
            return Action::Nothing;
        }
        let n = self.rooms.len() as isize;
        self.selected = (self.selected as isize + step).rem_euclid(n) as usize;
        let row = &mut self.rooms[self.selected];
        row.unread = 0;
        Action::Opened(row.id)
    }

    /// Marks the open room read.
    pub fn opened(&mut self) {
        if let Some(row) = self.rooms.get_mut(self.selected) {
            row.unread = 0;
        }
    }
}

/// Draws the screen. Every string from the server (room names, bodies, error
/// messages in the status line) goes through `sanitize` here, the one place
/// that hands text to the terminal.
pub fn render(frame: &mut Frame, app: &App) {
    let [main, input, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [rooms_area, talk_area] =
        Layout::horizontal([Constraint::Length(24), Constraint::Min(10)]).areas(main);

    let rooms: Vec<ListItem> = app
        .rooms
        .iter()
        .map(|r| {
            let unread = if r.unread > 0 {
                format!(" ({})", r.unread)
            } else {
                String::new()
            };
            ListItem::new(format!("{}{unread}", sanitize::line(&r.name)))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(
        List::new(rooms)
            .block(Block::default().borders(Borders::ALL).title("rooms"))
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        rooms_area,
        &mut state,
    );

    let room = app.current();
    let mut lines: Vec<Line> = room
        .and_then(|room| app.messages.get(&room))
        .map(|kept| {
            kept.iter()
                .flat_map(|(seq, sender, body)| {
                    let who = if *sender == app.me {
                        "me".to_owned()
                    } else {
                        format!("user {sender}")
                    };
                    // A body's own lines stay lines, indented under its first.
                    sanitize::lines(body).enumerate().map(move |(n, text)| {
                        Line::from(if n == 0 {
                            format!("#{seq} {who}: {text}")
                        } else {
                            format!("    {text}")
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let height = talk_area.height.saturating_sub(3) as usize;
    if lines.len() > height {
        lines.drain(..lines.len() - height);
    }
    let typing = room
        .and_then(|room| app.typing.get(&room))
        .filter(|(_, at)| at.elapsed() < TYPING_SHOWN)
        .map(|(user, _)| format!("user {user} is typing…"))
        .unwrap_or_default();
    lines.push(Line::from(typing).style(Style::default().add_modifier(Modifier::ITALIC)));
    let title = room
        .and_then(|id| app.rooms.iter().find(|r| r.id == id))
        .map(|r| sanitize::line(&r.name).into_owned())
        .unwrap_or_else(|| "no rooms: join one with `palaver-cli join CODE`".into());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        talk_area,
    );
    frame.render_widget(
        Paragraph::new(sanitize::line(&app.input))
            .block(Block::default().borders(Borders::ALL).title("message")),
        input,
    );
    frame.render_widget(Paragraph::new(sanitize::line(&app.status)), status);
}

async fn load_history(sign_in: &SignIn, app: &mut App, room: i64) {
    let query = HistoryQuery {
        before: None,
        after: None,
        limit: Some(50),
    };
    let Ok(client) = sign_in.client().await else {
        return;
    };
    if let Ok(page) = client.history(room, &query).await {
        let newest = page.messages.last().map(|m| m.seq);
        app.add_history(
            room,
            page.messages
                .into_iter()
                .map(|m| (m.seq, m.sender_id, m.body))
                .collect(),
        );
        if let Some(seq) = newest {
            let _ = client.mark_read(room, seq).await;
        }
        app.opened();
    }
}

pub async fn run(sign_in: SignIn, transport: Transport) -> Result<(), Failure> {
    let rooms = sign_in.client().await?.rooms().await?;
    let mut app = App::new(sign_in.user_id, &rooms);
    if let Some(room) = app.current() {
        load_history(&sign_in, &mut app, room).await;
    }
    let server = sign_in.server().to_owned();
    let mut session = LiveSession::connect_with(
        &server,
        transport,
        Box::new(sign_in.clone()),
        app.positions(),
        sign_in.trust().clone(),
    )
    .await?;
    let (keys_tx, mut keys) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        match event::read() {
            Ok(Event::Key(key)) => {
                if keys_tx.send(key).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    });
    let mut terminal = ratatui::init();
    let result = async {
        loop {
            terminal
                .draw(|frame| render(frame, &app))
                .map_err(anyhow::Error::from)?;
            tokio::select! {
                key = keys.recv() => {
                    let Some(key) = key else { return Ok(()) };
                    match app.on_key(key) {
                        Action::Quit => return Ok(()),
                        // A send not acknowledged is sent again after a reconnect.
                        Action::Frame(frame) => { session.send(frame).await; }
                        Action::Opened(room) => load_history(&sign_in, &mut app, room).await,
                        Action::Nothing => {}
                    }
                }
                // Cancel-safe: a key pressed meanwhile loses nothing.
                event = session.next_event() => match event {
                    Ok(LiveEvent::Frame(frame)) => app.on_frame(frame),
                    Ok(LiveEvent::Disconnected { error, retry_in }) => {
                        app.status = format!(
                            "reconnecting in {:.1} s ({error})",
                            retry_in.as_secs_f64()
                        );
                    }
                    Ok(LiveEvent::Reconnected { .. }) => {
                        let waiting = session.unacknowledged().count();
                        app.status = match waiting {
                            0 => "connected".into(),
                            n => format!("connected; sending {n} again"),
                        };
                    }
                    Err(err) => return Err(Failure::Other(anyhow::anyhow!("signed out: {err}"))),
                },
                // Redraws now and then, so "is typing" fades.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
    .await;
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use palaver_client::types::{Room, RoomSummary};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    fn summary(id: i64, name: &str, unread: u64) -> RoomSummary {
        RoomSummary {
            room: Room {
                id,
                name: name.into(),
                code: "ABCDEFGH".into(),
                owner_id: 1,
                created_at: String::new(),
                has_password: false,
                kind: "group".into(),
            },
            role: "member".into(),
            last_seq: 0,
            last_message: None,
            last_read_seq: 0,
            unread_count: unread,
            unread_mentions: 0,
        }
    }

    fn screen(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(70, 14)).unwrap();
        terminal.draw(|frame| render(frame, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_screen_shows_rooms_with_unread_counts_the_conversation_typing_and_the_input() {
        let mut app = App::new(1, &[summary(10, "general", 0), summary(11, "random", 2)]);
        app.add_history(10, vec![(1, 2, "hello".into()), (2, 1, "hi bob".into())]);
        app.on_frame(ServerFrame::Typing {
            room: 10,
            user_id: 2,
            expires_in_ms: 3000,
        });
        // A message in a room not open counts as unread there.
        app.on_frame(ServerFrame::Message {
            room: 11,
            seq: 3,
            sender_id: 2,
            body: "elsewhere".into(),
            created_at: String::new(),
            client_id: None,
            reply_to: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        });
        for c in "typed".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        let shown = screen(&app);
        for expected in [
            "general",
            "random (3)",
            "#1 user 2: hello",
            "#2 me: hi bob",
            "user 2 is typing",
            "typed",
        ] {
            assert!(shown.contains(expected), "{expected:?} in\n{shown}");
        }
        assert!(
            !shown.contains("elsewhere"),
            "another room's message stays there"
        );
    }

    #[test]
    fn no_control_sequence_from_the_server_reaches_the_screen() {
        let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}";
        let mut app = App::new(1, &[summary(10, &format!("den{hostile}"), 0)]);
        app.add_history(10, vec![(1, 2, format!("one\ntwo{hostile}"))]);
        app.on_frame(ServerFrame::Error {
            code: "invalid_input".into(),
            message: format!("body {hostile}"),
            reference: None,
            retry_after_ms: None,
        });
        let shown = screen(&app);
        assert!(
            !shown.contains(|c: char| c.is_control() && c != '\n' || c == '\u{202e}'),
            "{shown:?}"
        );
        for expected in [
            "#1 user 2: one",
            "    two\\u{1b}[2J",
            "den\\u{1b}",
            "body \\u{1b}",
        ] {
            assert!(shown.contains(expected), "{expected:?} in\n{shown}");
        }
    }

    #[test]
    fn keys_send_with_a_client_id_announce_typing_and_switch_rooms() {
        let mut app = App::new(1, &[summary(10, "general", 0), summary(11, "random", 2)]);
        assert_eq!(
            app.on_key(key(KeyCode::Char('h'))),
            Action::Frame(ClientFrame::Typing {
                room: 10,
                reference: None
            })
        );
        assert_eq!(app.on_key(key(KeyCode::Char('i'))), Action::Nothing);
        let Action::Frame(ClientFrame::Send {
            room,
            body,
            client_id,
            ..
        }) = app.on_key(key(KeyCode::Enter))
        else {
            panic!("enter sends")
        };
        assert_eq!((room, body.as_str()), (10, "hi"));
        assert!(client_id.is_some());
        assert!(app.input.is_empty());
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::Nothing,
            "nothing to send"
        );
        assert_eq!(app.on_key(key(KeyCode::Tab)), Action::Opened(11));
        assert!(screen(&app).contains("random") && !screen(&app).contains("random (2)"));
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
    }
}
