//! STOMP 1.2 (and 1.1, 1.0) as a pure codec: frames in and out of WebSocket messages, negotiation, destinations.
//!
//! The grammar is the specification's (<https://stomp.github.io/stomp-specification-1.2.html>):
//! a command line, header lines, a blank line, the body and a NUL; lines end
//! in LF or CR LF; a `content-length` header lets the body hold NULs; EOLs
//! between frames are heart-beats. Header text is escaped (`\r \n \c \\`;
//! any other escape is an error) in every frame but `CONNECT` and
//! `CONNECTED`; of repeated headers the first is the one that counts.
//!
//! Every byte is the client's, so [`Decoder`] is bounded by [`Limits`] (a
//! frame's size, its number of headers and the length of a line) and never
//! allocates more than what it was given: a `content-length` past the limit
//! is refused as soon as the headers end, before any body is awaited.

use std::fmt;

/// A STOMP command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    // Client frames.
    Connect,
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    // Server frames.
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as it is written (commands are case-sensitive).
    pub const fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    fn from_bytes(raw: &[u8]) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|command| command.as_str().as_bytes() == raw)
    }

    /// Only `SEND`, `MESSAGE` and `ERROR` may carry a body.
    pub const fn may_have_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// `CONNECT` and `CONNECTED` keep their header text unescaped, for STOMP
    /// 1.0 peers (a `STOMP` frame is escaped: the specification names only
    /// those two, and `stomp.py` escapes the `STOMP` frame it sends).
    const fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP protocol version: it decides which header escapes exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// No escaping at all.
    V1_0,
    /// `\n`, `\c` and `\\`.
    V1_1,
    /// `\r`, `\n`, `\c` and `\\`.
    V1_2,
}

impl Version {
    /// Every version served, newest first (the WebSocket subprotocols are
    /// offered in this order).
    pub const ALL: [Version; 3] = [Version::V1_2, Version::V1_1, Version::V1_0];

    /// The value of the `version` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// The WebSocket subprotocol that names this version (`v12.stomp`).
    pub const fn subprotocol(self) -> &'static str {
        match self {
            Version::V1_0 => "v10.stomp",
            Version::V1_1 => "v11.stomp",
            Version::V1_2 => "v12.stomp",
        }
    }

    /// The version a WebSocket subprotocol names, if it is one of STOMP's.
    pub fn from_subprotocol(name: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.subprotocol() == name)
    }

    /// The `version` header of an `ERROR` refusing a `CONNECT` that shares
    /// no version with the server, as the specification shows it.
    pub const SUPPORTED: &'static str = "1.0,1.1,1.2";

    /// The highest version both sides speak, from the `CONNECT` frame's
    /// `accept-version` header (absent: the client speaks 1.0 only).
    pub fn negotiate(accept_version: Option<&str>) -> Result<Version, StompError> {
        let Some(accepted) = accept_version else {
            return Ok(Version::V1_0);
        };
        Version::ALL
            .into_iter()
            .find(|v| accepted.split(',').any(|offered| offered == v.as_str()))
            .ok_or_else(|| {
                StompError::new(
                    StompErrorKind::UnsupportedVersion,
                    format!("supported protocol versions are {}", Version::SUPPORTED),
                )
            })
    }

    /// Whether header text of `command` frames is escaped in this version.
    const fn escapes(self, command: Command) -> Escaping {
        if !command.escapes_headers() {
            return Escaping::None;
        }
        match self {
            Version::V1_0 => Escaping::None,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escaping {
    None,
    V1_1,
    V1_2,
}

/// One STOMP frame. `headers` keeps every header in order, repeats included
/// ([`Frame::header`] reads the first); `content-length` is not among them:
/// the decoder uses it to find the body, and [`Frame::encode`] writes it from
/// the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The header that gives the body's length in octets.
pub const CONTENT_LENGTH: &str = "content-length";

impl Frame {
    pub fn new(command: Command) -> Frame {
        Frame {
            command,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The frame with one more header (after those it has).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Frame {
        self.body = body.into();
        self
    }

    /// The value of the first header called `name`: a repeated header's
    /// later values do not count.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An `ERROR` frame: `message` is Palaver's machine code (`rate_limited`,
    /// `not_found`…), the body the sentence for people; `receipt-id` names
    /// the frame that failed when it asked for a receipt.
    pub fn error(code: &str, message: &str, receipt_id: Option<&str>) -> Frame {
        let mut frame = Frame::new(Command::Error).with_header("message", code);
        if let Some(id) = receipt_id {
            frame = frame.with_header("receipt-id", id);
        }
        frame
            .with_header("content-type", "text/plain")
            .with_body(message.as_bytes())
    }

    /// A `RECEIPT` for the frame whose `receipt` header was `id`.
    pub fn receipt(id: &str) -> Frame {
        Frame::new(Command::Receipt).with_header("receipt-id", id)
    }

    /// The frame as `version` writes it: header text escaped (but in
    /// `CONNECT` and `CONNECTED`), `content-length` when there is a body,
    /// then the body and the NUL.
    ///
    /// Where a version or command has no escape for a character that would
    /// break the frame (a CR or LF; a colon in a name), it is written with
    /// 1.2's escape, which such a peer reads as two characters; a NUL, which
    /// no version can carry in a header, is written as U+FFFD. Neither comes
    /// out of [`Decoder`], so a decoded frame is written back unchanged.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let escaping = version.escapes(self.command);
        let mut out = Vec::with_capacity(64 + self.body.len());
        out.extend_from_slice(self.command.as_str().as_bytes());
        out.push(b'\n');
        for (name, value) in &self.headers {
            if name == CONTENT_LENGTH {
                continue;
            }
            escape(&mut out, name, escaping, true);
            out.push(b':');
            escape(&mut out, value, escaping, false);
            out.push(b'\n');
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("{CONTENT_LENGTH}:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
        out
    }
}

fn escape(out: &mut Vec<u8>, text: &str, escaping: Escaping, is_name: bool) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' if escaping != Escaping::None => out.extend_from_slice(b"\\\\"),
            b':' if escaping != Escaping::None || is_name => out.extend_from_slice(b"\\c"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice("\u{fffd}".as_bytes()),
            _ => out.push(byte),
        }
    }
}

/// The bounds on what one client may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A frame's size, from its command's first octet to its NUL.
    pub max_frame_bytes: usize,
    /// Header lines in one frame (repeats and `content-length` included).
    pub max_headers: usize,
    /// The command line or a header line, before its LF (a CR included).
    pub max_line_bytes: usize,
}

/// Why input is not STOMP, or not what Palaver accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StompError {
    pub kind: StompErrorKind,
    /// A sentence for the `ERROR` frame's body.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StompErrorKind {
    /// Not the grammar: a CR without its LF, a header line without a name
    /// and colon, a NUL among the headers, no NUL after a `content-length`
    /// body.
    Malformed,
    /// An escape the version does not define, or a `\` ending the text.
    InvalidEscape,
    /// Command or header text that is not UTF-8.
    InvalidUtf8,
    /// A `content-length` that is not a decimal number of octets.
    InvalidContentLength,
    /// A body on a frame other than `SEND`, `MESSAGE` or `ERROR`.
    UnexpectedBody,
    UnknownCommand,
    /// Over [`Limits::max_frame_bytes`].
    FrameTooLarge,
    /// Over [`Limits::max_headers`].
    TooManyHeaders,
    /// Over [`Limits::max_line_bytes`].
    LineTooLong,
    /// A `heart-beat` header that is not two integers.
    InvalidHeartBeat,
    /// An `accept-version` naming no version served.
    UnsupportedVersion,
    /// A destination Palaver does not serve.
    UnknownDestination,
}

impl StompError {
    fn new(kind: StompErrorKind, message: impl Into<String>) -> StompError {
        StompError {
            kind,
            message: message.into(),
        }
    }

    /// Palaver's machine code for the error (docs/protocol.md): the
    /// `message` header of the `ERROR` frame that answers it.
    pub const fn code(&self) -> &'static str {
        match self.kind {
            StompErrorKind::Malformed
            | StompErrorKind::InvalidEscape
            | StompErrorKind::InvalidUtf8
            | StompErrorKind::InvalidContentLength
            | StompErrorKind::UnexpectedBody => "malformed_frame",
            StompErrorKind::UnknownCommand => "unknown_type",
            StompErrorKind::FrameTooLarge
            | StompErrorKind::TooManyHeaders
            | StompErrorKind::LineTooLong => "frame_too_large",
            StompErrorKind::InvalidHeartBeat | StompErrorKind::UnsupportedVersion => {
                "invalid_frame"
            }
            StompErrorKind::UnknownDestination => "not_found",
        }
    }

    /// The `ERROR` frame that reports this error.
    pub fn to_frame(&self, receipt_id: Option<&str>) -> Frame {
        Frame::error(self.code(), &self.message, receipt_id)
    }
}

impl fmt::Display for StompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for StompError {}

/// Reads frames from a connection's WebSocket messages, in order: a message
/// may hold several frames and heart-beats, and a frame may be split across
/// messages. Text and binary messages are read alike.
///
/// What it holds between calls is at most one partial frame, within
/// [`Limits`]. After an error it answers that error again: STOMP closes the
/// connection after an `ERROR`.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    buf: Vec<u8>,
    /// Where the unread input starts in `buf`.
    start: usize,
    /// The frame being read, once its first octet has arrived.
    partial: Option<Partial>,
    failed: Option<StompError>,
}

/// A frame under way. Offsets count from its first octet.
#[derive(Debug, Default)]
struct Partial {
    command: Option<Command>,
    headers: Vec<(String, String)>,
    header_lines: usize,
    content_length: Option<usize>,
    /// Where the next header line starts.
    line_start: usize,
    /// Up to where the current line was searched for its LF.
    line_searched: usize,
    /// Where the body starts, once the blank line has been read.
    body_start: Option<usize>,
    /// Up to where the body was searched for its NUL.
    body_searched: usize,
}

impl Decoder {
    /// A decoder for a new connection: version 1.2 until
    /// [`set_version`](Self::set_version) (which only matters after
    /// `CONNECT`, whose headers are not escaped in any version).
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            version: Version::V1_2,
            buf: Vec::new(),
            start: 0,
            partial: None,
            failed: None,
        }
    }

    /// The version `CONNECTED` agreed on: it decides the escapes of every
    /// frame read from now on.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Appends one WebSocket message's payload; read the frames it completes
    /// with [`next_frame`](Self::next_frame).
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Octets held for a frame not yet complete: never more than
    /// [`Limits::max_frame_bytes`] once `next_frame` has answered `Ok(None)`.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `Ok(None)` when the input read so far holds
    /// none (heart-beats are skipped).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, StompError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let read = self.read();
        if let Err(err) = &read {
            self.failed = Some(err.clone());
        }
        read
    }

    fn read(&mut self) -> Result<Option<Frame>, StompError> {
        if self.partial.is_none() {
            // Heart-beats: EOLs between frames.
            loop {
                match self.buf.get(self.start) {
                    None => return Ok(None),
                    Some(b'\n') => self.start += 1,
                    Some(b'\r') => match self.buf.get(self.start + 1) {
                        None => return Ok(None),
                        Some(b'\n') => self.start += 2,
                        Some(_) => return Err(malformed("a CR must be followed by an LF")),
                    },
                    Some(_) => break,
                }
            }
            self.partial = Some(Partial::default());
        }
        let limits = self.limits;
        let version = self.version;
        let input = &self.buf[self.start..];
        let partial = self.partial.as_mut().expect("set above");
        let body_start = loop {
            if let Some(at) = partial.body_start {
                break at;
            }
            let line_start = partial.line_start;
            // The first octet that, not being the line's LF, makes the line
            // too long, and the first beyond the frame's maximum size: the
            // error is the limit the input crosses first, however it is cut
            // into messages.
            let line_limit = line_start.saturating_add(limits.max_line_bytes);
            let frame_limit = limits.max_frame_bytes;
            let end = input
                .len()
                .min(line_limit.saturating_add(1))
                .min(frame_limit);
            let from = partial.line_searched.max(line_start);
            match input
                .get(from..end)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            {
                Some(at) => {
                    let lf = from + at;
                    partial.line(&input[line_start..lf], version, &limits)?;
                    partial.line_start = lf + 1;
                    partial.line_searched = lf + 1;
                }
                None => {
                    partial.line_searched = end.max(from);
                    if input.len() > frame_limit && frame_limit <= line_limit {
                        return Err(too_large(&limits));
                    }
                    if input.len() > line_limit {
                        return Err(StompError::new(
                            StompErrorKind::LineTooLong,
                            format!("a line is longer than {} octets", limits.max_line_bytes),
                        ));
                    }
                    return Ok(None);
                }
            }
        };
        let (body_end, consumed) = match partial.content_length {
            Some(length) => {
                let end = body_start
                    .checked_add(length)
                    .filter(|end| *end < limits.max_frame_bytes)
                    .ok_or_else(|| too_large(&limits))?;
                let Some(&last) = input.get(end) else {
                    return Ok(None);
                };
                if last != 0 {
                    return Err(malformed(
                        "the body must be followed by a NUL (content-length)",
                    ));
                }
                (end, end + 1)
            }
            None => {
                let end = input.len().min(limits.max_frame_bytes);
                let from = partial.body_searched.max(body_start);
                match input
                    .get(from..end)
                    .and_then(|rest| rest.iter().position(|&b| b == 0))
                {
                    Some(at) => (from + at, from + at + 1),
                    None => {
                        partial.body_searched = end.max(from);
                        if input.len() >= limits.max_frame_bytes {
                            return Err(too_large(&limits));
                        }
                        return Ok(None);
                    }
                }
            }
        };
        let partial = self.partial.take().expect("read above");
        let command = partial.command.expect("the head is complete");
        let body = input[body_start..body_end].to_vec();
        self.start += consumed;
        if !body.is_empty() && !command.may_have_body() {
            return Err(StompError::new(
                StompErrorKind::UnexpectedBody,
                format!("a {command} frame must not have a body"),
            ));
        }
        Ok(Some(Frame {
            command,
            headers: partial.headers,
            body,
        }))
    }
}

impl Partial {
    /// One complete line of the head, its LF left out.
    fn line(&mut self, raw: &[u8], version: Version, limits: &Limits) -> Result<(), StompError> {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.contains(&0) {
            return Err(malformed(
                "a NUL before the end of the headers (is the blank line missing?)",
            ));
        }
        if line.contains(&b'\r') {
            return Err(malformed("a CR must be followed by an LF"));
        }
        let Some(command) = self.command else {
            let command = Command::from_bytes(line).ok_or_else(|| {
                let shown = String::from_utf8_lossy(&line[..line.len().min(32)]);
                StompError::new(
                    StompErrorKind::UnknownCommand,
                    format!("unknown command {shown:?}"),
                )
            })?;
            self.command = Some(command);
            return Ok(());
        };
        if line.is_empty() {
            self.body_start = Some(self.line_start + raw.len() + 1);
            return Ok(());
        }
        if self.header_lines == limits.max_headers {
            return Err(StompError::new(
                StompErrorKind::TooManyHeaders,
                format!("more than {} headers", limits.max_headers),
            ));
        }
        self.header_lines += 1;
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .filter(|&at| at > 0)
            .ok_or_else(|| malformed("a header must be name:value"))?;
        let escaping = version.escapes(command);
        let name = unescape(&line[..colon], escaping)?;
        let value = unescape(&line[colon + 1..], escaping)?;
        if name == CONTENT_LENGTH {
            // The first wins; a repeat is not read.
            if self.content_length.is_none() {
                self.content_length = Some(parse_content_length(&value)?);
            }
        } else {
            self.headers.push((name, value));
        }
        Ok(())
    }
}

fn parse_content_length(value: &str) -> Result<usize, StompError> {
    let invalid = || {
        StompError::new(
            StompErrorKind::InvalidContentLength,
            "content-length must be a number of octets",
        )
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Digits beyond usize are beyond any limit: too large, not malformed.
    Ok(value.parse::<usize>().unwrap_or(usize::MAX))
}

fn unescape(raw: &[u8], escaping: Escaping) -> Result<String, StompError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'\\' || escaping == Escaping::None {
            out.push(byte);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if escaping == Escaping::V1_2 => b'\r',
            Some(&other) => {
                return Err(StompError::new(
                    StompErrorKind::InvalidEscape,
                    format!("undefined escape \\{}", char::from(other).escape_default()),
                ))
            }
            None => {
                return Err(StompError::new(
                    StompErrorKind::InvalidEscape,
                    "a header ends with a lone \\",
                ))
            }
        });
    }
    String::from_utf8(out).map_err(|_| {
        StompError::new(
            StompErrorKind::InvalidUtf8,
            "commands and headers must be UTF-8",
        )
    })
}

fn malformed(message: &str) -> StompError {
    StompError::new(StompErrorKind::Malformed, message)
}

fn too_large(limits: &Limits) -> StompError {
    StompError::new(
        StompErrorKind::FrameTooLarge,
        format!("a frame is larger than {} octets", limits.max_frame_bytes),
    )
}

/// One side's `heart-beat` header: the shortest interval it can send at and
/// the interval it would like to receive at, in milliseconds (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeat {
    pub can_send_ms: u32,
    pub wants_ms: u32,
}

/// Heart-beats as both sides agreed: `None` in a direction that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartBeats {
    /// The server sends something (a frame, or an EOL) at least this often.
    pub server_sends_every_ms: Option<u32>,
    /// The client promised to send something at least this often; allow a
    /// margin before taking silence for a dead connection.
    pub client_sends_every_ms: Option<u32>,
}

impl HeartBeat {
    /// The `heart-beat` header's value, `cx,cy`; absent means `0,0`.
    pub fn parse(header: Option<&str>) -> Result<HeartBeat, StompError> {
        let Some(value) = header else {
            return Ok(HeartBeat::default());
        };
        let invalid = || {
            StompError::new(
                StompErrorKind::InvalidHeartBeat,
                "heart-beat must be two integers, as in 10000,10000",
            )
        };
        let number = |text: &str| {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            // Beyond u32 milliseconds (49 days) is as good as never.
            Ok(text.parse::<u32>().unwrap_or(u32::MAX))
        };
        let (send, want) = value.split_once(',').ok_or_else(invalid)?;
        Ok(HeartBeat {
            can_send_ms: number(send)?,
            wants_ms: number(want)?,
        })
    }

    /// The header's value.
    pub fn header_value(self) -> String {
        format!("{},{}", self.can_send_ms, self.wants_ms)
    }

    /// The server's answer to the client's `heart-beat` (`self` is the
    /// server's own policy: the shortest interval it will send at, and how
    /// often it wants to hear from the client) and what both sides then
    /// do. The answer names the agreed intervals themselves, so that the
    /// client's reading of it (the larger of both numbers) comes to the same;
    /// a direction either side declined is 0.
    pub fn answer(self, client: HeartBeat) -> (HeartBeat, HeartBeats) {
        let agreed = |sender: u32, receiver: u32| {
            (sender > 0 && receiver > 0).then_some(sender.max(receiver))
        };
        let server_sends = agreed(self.can_send_ms, client.wants_ms);
        let client_sends = agreed(client.can_send_ms, self.wants_ms);
        (
            HeartBeat {
                can_send_ms: server_sends.unwrap_or(0),
                wants_ms: client_sends.unwrap_or(0),
            },
            HeartBeats {
                server_sends_every_ms: server_sends,
                client_sends_every_ms: client_sends,
            },
        )
    }
}

/// What a client may `SUBSCRIBE` to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `/topic/message/roomId/{id}`: `message`, `message_edited`, `message_deleted`,
    /// `reaction_added`, `reaction_removed`.
    RoomMessages(i64),
    /// `/topic/typing/roomId/{id}`: `typing`.
    RoomTyping(i64),
    /// `/topic/onlineStatus/roomId/{id}`: `presence`.
    RoomOnlineStatus(i64),
    /// `/topic/readMarkers/roomId/{id}`: `read`.
    RoomReadMarkers(i64),
    /// `/user/topic/rooms`: the user's room list changing.
    UserRooms,
}

/// Where a client may `SEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendTarget {
    /// `/app/message/roomId/{id}`: post a message (`{"body","client_id"?,"reply_to"?}`).
    RoomMessage(i64),
    /// `/app/typing`: `{"roomId"}`.
    Typing,
    /// `/app/read`: `{"roomId","seq"}`.
    Read,
    /// `/app/extendOnline`: keeps presence alive.
    ExtendOnline,
    /// `/app/reaction`: `{"roomId","seq","emoji","remove"?}`.
    Reaction,
}

/// A room topic from its room id.
type RoomTopic = fn(i64) -> Topic;

const ROOM_TOPICS: [(&str, RoomTopic); 4] = [
    ("/topic/message/roomId/", Topic::RoomMessages),
    ("/topic/typing/roomId/", Topic::RoomTyping),
    ("/topic/onlineStatus/roomId/", Topic::RoomOnlineStatus),
    ("/topic/readMarkers/roomId/", Topic::RoomReadMarkers),
];
const USER_ROOMS: &str = "/user/topic/rooms";
const SEND_MESSAGE: &str = "/app/message/roomId/";
const SEND_TYPING: &str = "/app/typing";
const SEND_READ: &str = "/app/read";
const SEND_EXTEND_ONLINE: &str = "/app/extendOnline";
const SEND_REACTION: &str = "/app/reaction";

impl Topic {
    /// A `SUBSCRIBE` frame's `destination`.
    pub fn parse(destination: &str) -> Result<Topic, StompError> {
        if destination == USER_ROOMS {
            return Ok(Topic::UserRooms);
        }
        ROOM_TOPICS
            .iter()
            .find_map(|(prefix, topic)| {
                let room = room_id(destination.strip_prefix(prefix)?)?;
                Some(topic(room))
            })
            .ok_or_else(|| unknown_destination(destination, "subscribe to"))
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, room) = match *self {
            Topic::RoomMessages(room) => (ROOM_TOPICS[0].0, room),
            Topic::RoomTyping(room) => (ROOM_TOPICS[1].0, room),
            Topic::RoomOnlineStatus(room) => (ROOM_TOPICS[2].0, room),
            Topic::RoomReadMarkers(room) => (ROOM_TOPICS[3].0, room),
            Topic::UserRooms => return f.write_str(USER_ROOMS),
        };
        write!(f, "{prefix}{room}")
    }
}

impl SendTarget {
    /// A `SEND` frame's `destination`.
    pub fn parse(destination: &str) -> Result<SendTarget, StompError> {
        match destination {
            SEND_TYPING => Ok(SendTarget::Typing),
            SEND_READ => Ok(SendTarget::Read),
            SEND_EXTEND_ONLINE => Ok(SendTarget::ExtendOnline),
            SEND_REACTION => Ok(SendTarget::Reaction),
            _ => destination
                .strip_prefix(SEND_MESSAGE)
                .and_then(room_id)
                .map(SendTarget::RoomMessage)
                .ok_or_else(|| unknown_destination(destination, "send to")),
        }
    }
}

impl fmt::Display for SendTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTarget::RoomMessage(room) => write!(f, "{SEND_MESSAGE}{room}"),
            SendTarget::Typing => f.write_str(SEND_TYPING),
            SendTarget::Read => f.write_str(SEND_READ),
            SendTarget::ExtendOnline => f.write_str(SEND_EXTEND_ONLINE),
            SendTarget::Reaction => f.write_str(SEND_REACTION),
        }
    }
}

/// A room id as a path segment: canonical decimal (no sign, no leading
/// zero), so that one room has one destination.
fn room_id(segment: &str) -> Option<i64> {
    let canonical = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    canonical.then(|| segment.parse().ok()).flatten()
}

fn unknown_destination(destination: &str, verb: &str) -> StompError {
    let shown: String = destination.chars().take(64).collect();
    StompError::new(
        StompErrorKind::UnknownDestination,
        format!("no destination {shown:?} to {verb}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_frame_bytes: 256,
        max_headers: 8,
        max_line_bytes: 64,
    };

    fn decode_all(input: &[u8]) -> Result<Vec<Frame>, StompError> {
        let mut decoder = Decoder::new(LIMITS);
        decoder.feed(input);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.next_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn one(input: &[u8]) -> Frame {
        let mut frames = decode_all(input).unwrap();
        assert_eq!(frames.len(), 1, "{frames:?}");
        frames.remove(0)
    }

    fn kind(input: &[u8]) -> StompErrorKind {
        decode_all(input).unwrap_err().kind
    }

    #[test]
    fn a_message_holds_frames_and_heart_beats_in_lf_or_crlf() {
        let frames = decode_all(
            b"\n\r\nCONNECT\r\naccept-version:1.2\r\nhost:x\r\n\r\n\0\n\nSUBSCRIBE\nid:0\ndestination:/user/topic/rooms\n\n\0\r\n",
        )
        .unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].command, Command::Connect);
        assert_eq!(frames[0].header("accept-version"), Some("1.2"));
        assert_eq!(frames[0].header("host"), Some("x"));
        assert_eq!(frames[1].command, Command::Subscribe);
        assert_eq!(frames[1].header("destination"), Some("/user/topic/rooms"));
    }

    #[test]
    fn a_frame_split_across_messages_reads_as_one_whatever_the_cut() {
        let whole = b"SEND\ndestination:/app/typing\nreceipt:r\\c1\n\n{\"roomId\":7}\0\n".to_vec();
        let expected = one(&whole);
        assert_eq!(expected.header("receipt"), Some("r:1"));
        for cut in 0..=whole.len() {
            let mut decoder = Decoder::new(LIMITS);
            decoder.feed(&whole[..cut]);
            let mut frames = Vec::new();
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
            decoder.feed(&whole[cut..]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
            assert_eq!(frames, vec![expected.clone()], "cut at {cut}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn content_length_lets_the_body_hold_nuls() {
        let frame = one(b"SEND\ndestination:/app/read\ncontent-length:3\n\na\0b\0");
        assert_eq!(frame.body, b"a\0b");
        assert_eq!(
            frame.header(CONTENT_LENGTH),
            None,
            "consumed by the decoder"
        );
        assert_eq!(
            kind(b"SEND\ncontent-length:2\n\nabc\0"),
            StompErrorKind::Malformed
        );
        assert_eq!(
            kind(b"SEND\ncontent-length:-1\n\n\0"),
            StompErrorKind::InvalidContentLength
        );
        assert_eq!(
            kind(b"SEND\ncontent-length: 1\n\na\0"),
            StompErrorKind::InvalidContentLength
        );
    }

    #[test]
    fn a_content_length_past_the_limit_is_refused_before_any_body_arrives() {
        let mut decoder = Decoder::new(LIMITS);
        decoder.feed(b"SEND\ncontent-length:99999999999999999999999\n\n");
        assert_eq!(
            decoder.next_frame().unwrap_err().kind,
            StompErrorKind::FrameTooLarge
        );
        let mut decoder = Decoder::new(LIMITS);
        decoder.feed(b"SEND\ncontent-length:240\n\n");
        assert_eq!(
            decoder.next_frame().unwrap_err().kind,
            StompErrorKind::FrameTooLarge
        );
        // The same frame fits when its body does.
        let mut decoder = Decoder::new(LIMITS);
        decoder.feed(b"SEND\ncontent-length:200\n\n");
        assert_eq!(decoder.next_frame(), Ok(None));
    }

    #[test]
    fn repeated_headers_are_kept_and_the_first_counts() {
        let frame =
            one(b"MESSAGE\nfoo:World\nfoo:Hello\ncontent-length:1\ncontent-length:5\n\nx\0");
        assert_eq!(frame.header("foo"), Some("World"));
        assert_eq!(
            frame.headers,
            vec![
                ("foo".to_owned(), "World".to_owned()),
                ("foo".to_owned(), "Hello".to_owned())
            ]
        );
        assert_eq!(frame.body, b"x");
    }

    #[test]
    fn escapes_are_the_versions_and_connect_has_none() {
        let frame = one(b"SEND\na\\cb:c\\\\d\\ne\\rf\n\n\0");
        assert_eq!(
            frame.headers,
            vec![("a:b".to_owned(), "c\\d\ne\rf".to_owned())]
        );
        assert_eq!(kind(b"SEND\na:\\t\n\n\0"), StompErrorKind::InvalidEscape);
        assert_eq!(kind(b"SEND\na:b\\\n\n\0"), StompErrorKind::InvalidEscape);

        // CONNECT: backslashes and colons are text.
        let connect = one(b"CONNECT\npasscode:a\\nb:c\n\n\0");
        assert_eq!(connect.header("passcode"), Some("a\\nb:c"));
        // A STOMP frame is escaped (stomp.py escapes it).
        let stomp = one(b"STOMP\npasscode:a\\cb\n\n\0");
        assert_eq!(stomp.header("passcode"), Some("a:b"));

        let mut v11 = Decoder::new(LIMITS);
        v11.set_version(Version::V1_1);
        v11.feed(b"SEND\na:\\r\n\n\0");
        assert_eq!(
            v11.next_frame().unwrap_err().kind,
            StompErrorKind::InvalidEscape
        );
        let mut v10 = Decoder::new(LIMITS);
        v10.set_version(Version::V1_0);
        v10.feed(b"SEND\na:\\r\\c\n\n\0");
        assert_eq!(
            v10.next_frame().unwrap().unwrap().header("a"),
            Some("\\r\\c")
        );
    }

    #[test]
    fn values_are_never_trimmed_and_a_raw_colon_belongs_to_the_value() {
        let frame = one(b"SEND\n a : b:c \n\n\0");
        assert_eq!(frame.headers, vec![(" a ".to_owned(), " b:c ".to_owned())]);
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert_eq!(kind(b"\rX"), StompErrorKind::Malformed);
        assert_eq!(kind(b"SEND\na:b\rc\n\n\0"), StompErrorKind::Malformed);
        assert_eq!(kind(b"SEND\nnocolon\n\n\0"), StompErrorKind::Malformed);
        assert_eq!(kind(b"SEND\n:empty-name\n\n\0"), StompErrorKind::Malformed);
        assert_eq!(kind(b"SEND\na:b\0\n\n\0"), StompErrorKind::Malformed);
        assert_eq!(kind(b"send\n\n\0"), StompErrorKind::UnknownCommand);
        assert_eq!(kind(b"GET / HTTP/1.1\r\n"), StompErrorKind::UnknownCommand);
        assert_eq!(kind(b"SEND\na:\xff\n\n\0"), StompErrorKind::InvalidUtf8);
        assert_eq!(
            kind(b"SUBSCRIBE\nid:0\n\nbody\0"),
            StompErrorKind::UnexpectedBody
        );
        let err = decode_all(b"SUBSCRIBE\n\nx\0").unwrap_err();
        assert_eq!(err.code(), "malformed_frame");
    }

    #[test]
    fn limits_bound_lines_headers_and_frames_even_before_they_end() {
        let long_line = [b"SEND\na:".as_slice(), &[b'x'; 80]].concat();
        assert_eq!(kind(&long_line), StompErrorKind::LineTooLong);
        let many: Vec<u8> = [b"SEND\n".as_slice()]
            .into_iter()
            .chain(std::iter::repeat_n(b"a:b\n".as_slice(), 9))
            .chain([b"\n\0".as_slice()])
            .flatten()
            .copied()
            .collect();
        assert_eq!(kind(&many), StompErrorKind::TooManyHeaders);
        let big_body = [b"SEND\n\n".as_slice(), &[b'x'; 300]].concat();
        assert_eq!(kind(&big_body), StompErrorKind::FrameTooLarge);
        assert_eq!(decode_all(&big_body).unwrap_err().code(), "frame_too_large");

        // Exactly at the limit is fine.
        let fits = [b"SEND\n\n".as_slice(), &[b'x'; 249], b"\0"].concat();
        assert_eq!(fits.len(), LIMITS.max_frame_bytes);
        assert_eq!(one(&fits).body.len(), 249);
        let over = [b"SEND\n\n".as_slice(), &[b'x'; 250], b"\0"].concat();
        assert_eq!(kind(&over), StompErrorKind::FrameTooLarge);
    }

    #[test]
    fn after_an_error_the_decoder_keeps_answering_it() {
        let mut decoder = Decoder::new(LIMITS);
        decoder.feed(b"NOPE\n\n\0SEND\n\n\0");
        let first = decoder.next_frame().unwrap_err();
        assert_eq!(decoder.next_frame().unwrap_err(), first);
    }

    #[test]
    fn encoding_escapes_adds_content_length_and_reads_back() {
        let frame = Frame::new(Command::Message)
            .with_header("destination", "/topic/message/roomId/7")
            .with_header("odd:name", "line\nbreak\\and\rcr")
            .with_header(CONTENT_LENGTH, "999")
            .with_body(b"{\"a\":\"\0\"}".to_vec());
        let bytes = frame.encode(Version::V1_2);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("MESSAGE\ndestination:/topic/message/roomId/7\n"));
        assert!(text.contains("odd\\cname:line\\nbreak\\\\and\\rcr\n"));
        assert!(text.contains("content-length:9\n\n"));
        assert!(!text.contains("999"));
        let mut again = frame.clone();
        again.headers.retain(|(name, _)| name != CONTENT_LENGTH);
        assert_eq!(one(&bytes), again);

        let connected = Frame::new(Command::Connected)
            .with_header("version", "1.2")
            .with_header("server", "palaver/1 a:b\\c");
        assert_eq!(
            connected.encode(Version::V1_2),
            b"CONNECTED\nversion:1.2\nserver:palaver/1 a:b\\c\n\n\0"
        );
        // No body, no content-length.
        assert_eq!(
            Frame::receipt("77").encode(Version::V1_2),
            b"RECEIPT\nreceipt-id:77\n\n\0"
        );
    }

    #[test]
    fn header_text_a_version_cannot_carry_cannot_break_the_frame() {
        let frame = Frame::new(Command::Connected).with_header("a:b\n", "c\r\nd\0");
        let bytes = frame.encode(Version::V1_0);
        let decoded = one(&bytes);
        assert_eq!(decoded.headers.len(), 1);
        assert_eq!(decoded.header("a\\cb\\n"), Some("c\\r\\nd\u{fffd}"));
    }

    #[test]
    fn the_error_frame_carries_the_machine_code_and_the_receipt() {
        let frame = Frame::error(
            "rate_limited",
            "too many requests; retry later",
            Some("r-9"),
        );
        assert_eq!(frame.command, Command::Error);
        assert_eq!(frame.header("message"), Some("rate_limited"));
        assert_eq!(frame.header("receipt-id"), Some("r-9"));
        assert_eq!(frame.body, b"too many requests; retry later");
        let text = String::from_utf8(frame.encode(Version::V1_2)).unwrap();
        assert!(text.contains("content-length:30\n"), "{text}");
        let err = decode_all(b"BOGUS\n\n\0").unwrap_err();
        assert_eq!(err.to_frame(None).header("message"), Some("unknown_type"));
    }

    #[test]
    fn versions_negotiate_to_the_highest_in_common() {
        assert_eq!(Version::negotiate(None), Ok(Version::V1_0));
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Ok(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.0,1.1,2.0")), Ok(Version::V1_1));
        let err = Version::negotiate(Some("2.0")).unwrap_err();
        assert_eq!(err.kind, StompErrorKind::UnsupportedVersion);
        assert_eq!(Version::from_subprotocol("v11.stomp"), Some(Version::V1_1));
        assert_eq!(Version::from_subprotocol("stomp"), None);
    }

    #[test]
    fn heart_beats_negotiate_as_the_specification_says() {
        assert_eq!(HeartBeat::parse(None), Ok(HeartBeat::default()));
        let client = HeartBeat::parse(Some("4000,20000")).unwrap();
        assert_eq!(client.header_value(), "4000,20000");
        let server = HeartBeat {
            can_send_ms: 10_000,
            wants_ms: 10_000,
        };
        let (answer, agreed) = server.answer(client);
        assert_eq!(agreed.server_sends_every_ms, Some(20_000));
        assert_eq!(agreed.client_sends_every_ms, Some(10_000));
        assert_eq!(answer.header_value(), "20000,10000");
        // The client reading the answer comes to the same intervals.
        assert_eq!(answer.answer(client).1, agreed);

        let (answer, agreed) = server.answer(HeartBeat::parse(Some("0,0")).unwrap());
        assert_eq!(answer, HeartBeat::default());
        assert_eq!(agreed.server_sends_every_ms, None);
        assert_eq!(agreed.client_sends_every_ms, None);

        for bad in ["", "1", "1,", ",1", "1, 2", "-1,2", "1,2,3", "a,b"] {
            assert_eq!(
                HeartBeat::parse(Some(bad)).unwrap_err().kind,
                StompErrorKind::InvalidHeartBeat,
                "{bad:?}"
            );
        }
        assert_eq!(
            HeartBeat::parse(Some("99999999999,0")).unwrap().can_send_ms,
            u32::MAX
        );
    }

    #[test]
    fn destinations_parse_into_what_palaver_serves_and_print_back() {
        let cases = [
            ("/topic/message/roomId/7", Topic::RoomMessages(7)),
            ("/topic/typing/roomId/12", Topic::RoomTyping(12)),
            ("/topic/onlineStatus/roomId/0", Topic::RoomOnlineStatus(0)),
            ("/topic/readMarkers/roomId/3", Topic::RoomReadMarkers(3)),
            ("/user/topic/rooms", Topic::UserRooms),
        ];
        for (text, topic) in cases {
            assert_eq!(Topic::parse(text), Ok(topic));
            assert_eq!(topic.to_string(), text);
        }
        let sends = [
            ("/app/message/roomId/7", SendTarget::RoomMessage(7)),
            ("/app/typing", SendTarget::Typing),
            ("/app/read", SendTarget::Read),
            ("/app/extendOnline", SendTarget::ExtendOnline),
            ("/app/reaction", SendTarget::Reaction),
        ];
        for (text, target) in sends {
            assert_eq!(SendTarget::parse(text), Ok(target));
            assert_eq!(target.to_string(), text);
        }
        for bad in [
            "/topic/message/roomId/",
            "/topic/message/roomId/07",
            "/topic/message/roomId/+7",
            "/topic/message/roomId/-7",
            "/topic/message/roomId/9223372036854775808",
            "/topic/message/roomId/7/",
            "/topic/message/7",
            "/app/typing",
            "/user/topic/rooms/",
        ] {
            let err = Topic::parse(bad).unwrap_err();
            assert_eq!(err.kind, StompErrorKind::UnknownDestination, "{bad}");
            assert_eq!(err.code(), "not_found");
        }
        for bad in [
            "/topic/typing/roomId/7",
            "/app/message/roomId/x",
            "/app/Typing",
        ] {
            assert!(SendTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
