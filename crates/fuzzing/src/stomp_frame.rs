//! The STOMP decoder on what a client may send: bounded, the same however the bytes are cut, and read back as written.

use palaver_protocol::stomp::{
    Decoder, Frame, HeartBeat, Limits, SendTarget, StompError, Topic, Version,
};

/// Small enough that the fuzzer reaches every limit.
const LIMITS: Limits = Limits {
    max_frame_bytes: 1024,
    max_headers: 12,
    max_line_bytes: 128,
};

/// One connection's input: a selector byte (its remainder by 3 picks the
/// version the frames are read in; its quotient the size of the WebSocket
/// messages the rest is cut into, 0 being one message), then the bytes.
pub fn stomp_frame(data: &[u8]) {
    let [selector, input @ ..] = data else {
        return;
    };
    let version = Version::ALL[usize::from(selector % 3)];
    let cut = usize::from(selector / 3);
    let whole = decode(input, version, input.len().max(1));
    if cut > 0 {
        // A frame split across messages reads as one; so does an error.
        assert_eq!(decode(input, version, cut), whole, "cut every {cut} octets");
    }
    let (frames, error) = whole;
    for frame in &frames {
        written_back(frame, version);
        headers_read_consistently(frame);
    }
    if let Some(err) = error {
        // The ERROR frame that reports it cannot be broken by what it quotes.
        let report = err.to_frame(Some("r-1"));
        written_back(&report, version);
        assert_eq!(report.header("message"), Some(err.code()));
    }
}

/// What a connection reading `input` in messages of `cut` octets gets: its
/// frames, then the error that ended it, if one did.
fn decode(input: &[u8], version: Version, cut: usize) -> (Vec<Frame>, Option<StompError>) {
    let mut decoder = Decoder::new(LIMITS);
    decoder.set_version(version);
    let mut frames = Vec::new();
    for message in input.chunks(cut) {
        decoder.feed(message);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    within_limits(&frame);
                    frames.push(frame);
                }
                Ok(None) => break,
                Err(err) => return (frames, Some(err)),
            }
        }
        assert!(
            decoder.buffered() <= LIMITS.max_frame_bytes,
            "{} octets held for a partial frame",
            decoder.buffered()
        );
    }
    (frames, None)
}

/// A decoded frame is no larger than the limits allow (unescaping only
/// shortens text; the `content-length` header is not kept).
fn within_limits(frame: &Frame) {
    assert!(frame.headers.len() <= LIMITS.max_headers);
    let mut size = frame.command.as_str().len() + 1;
    for (name, value) in &frame.headers {
        let line = name.len() + 1 + value.len();
        assert!(line <= LIMITS.max_line_bytes, "a {line}-octet header line");
        size += line + 1;
    }
    size += 1 + frame.body.len() + 1;
    assert!(size <= LIMITS.max_frame_bytes, "a {size}-octet frame");
}

/// Written in the same version and read again, a frame is the same frame.
fn written_back(frame: &Frame, version: Version) {
    let bytes = frame.encode(version);
    let roomy = Limits {
        max_frame_bytes: bytes.len(),
        max_headers: frame.headers.len() + 1,
        max_line_bytes: bytes.len(),
    };
    let mut decoder = Decoder::new(roomy);
    decoder.set_version(version);
    decoder.feed(&bytes);
    let again = decoder.next_frame();
    let mut expected = frame.clone();
    expected
        .headers
        .retain(|(name, _)| name != palaver_protocol::stomp::CONTENT_LENGTH);
    assert_eq!(
        again.as_ref().map(Option::as_ref),
        Ok(Some(&expected)),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(decoder.next_frame(), Ok(None));
    assert_eq!(decoder.buffered(), 0);
}

/// The headers the transport reads mean one thing: a destination that
/// parses prints back as it was written, a heart-beat reads back the same.
fn headers_read_consistently(frame: &Frame) {
    if let Some(destination) = frame.header("destination") {
        if let Ok(topic) = Topic::parse(destination) {
            assert_eq!(topic.to_string(), destination);
        }
        if let Ok(target) = SendTarget::parse(destination) {
            assert_eq!(target.to_string(), destination);
        }
    }
    if let Ok(heart_beat) = HeartBeat::parse(frame.header("heart-beat")) {
        let again = heart_beat.header_value();
        assert_eq!(HeartBeat::parse(Some(&again)), Ok(heart_beat));
        let server = HeartBeat {
            can_send_ms: 10_000,
            wants_ms: 10_000,
        };
        let (answer, agreed) = server.answer(heart_beat);
        // The client reading the answer agrees with the server.
        assert_eq!(answer.answer(heart_beat).1, agreed);
    }
    if let Ok(version) = Version::negotiate(frame.header("accept-version")) {
        assert!(Version::ALL.contains(&version));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// STOMP-looking bytes: commands, headers Palaver reads, escapes good
    /// and bad, `content-length`s, EOLs of both kinds and NULs.
    fn stompish() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            prop_oneof![
                Just("CONNECT\n"),
                Just("STOMP\r\n"),
                Just("SEND\n"),
                Just("SUBSCRIBE\n"),
                Just("UNSUBSCRIBE\n"),
                Just("DISCONNECT\n"),
                Just("ACK\n"),
                Just("MESSAGE\n"),
                Just("ERROR\n"),
                Just("\n"),
                Just("\r\n"),
                Just("\r"),
                Just("\0"),
                Just(":"),
                Just("\\n"),
                Just("\\c"),
                Just("\\r"),
                Just("\\\\"),
                Just("\\t"),
                Just("\\"),
                Just("content-length:"),
                Just("destination:/topic/message/roomId/7\n"),
                Just("destination:/app/message/roomId/"),
                Just("destination:/user/topic/rooms\n"),
                Just("heart-beat:10000,10000\n"),
                Just("heart-beat:"),
                Just("accept-version:1.0,1.1,1.2\n"),
                Just("receipt:r-1\n"),
                Just("id:0\n"),
                Just("{\"body\":\"hi\"}"),
            ]
            .prop_map(str::to_owned),
            (0u32..1100).prop_map(|n| n.to_string()),
            "[a-z]{1,6}",
            "\\PC{1,3}",
        ];
        (any::<u8>(), prop::collection::vec(token, 0..40)).prop_map(|(selector, tokens)| {
            std::iter::once(selector)
                .chain(tokens.concat().into_bytes())
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn generated_inputs(data in prop_oneof![stompish(), prop::collection::vec(any::<u8>(), 0..256)]) {
            stomp_frame(&data);
        }
    }

    #[test]
    fn every_kept_input_passes() {
        let inputs = crate::kept_inputs("stomp_frame", &["corpus", "regressions"]);
        assert!(inputs.len() >= 5, "seed inputs for stomp_frame");
        for input in inputs {
            stomp_frame(&input);
        }
    }

    #[test]
    fn the_seeds_decode_to_frames() {
        // The seeds are real clients' frames: they must read as frames, or
        // the fuzzer starts from errors.
        for input in crate::kept_inputs("stomp_frame", &["corpus"]) {
            let version = Version::ALL[usize::from(input[0] % 3)];
            let (frames, error) = decode(&input[1..], version, input.len());
            assert!(error.is_none() && !frames.is_empty(), "{error:?}");
        }
    }
}
