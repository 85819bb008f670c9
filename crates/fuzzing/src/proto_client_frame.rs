use palaver_grpc::v1;
use palaver_protocol::ws::ClientFrame;
use prost::Message;

/// A protobuf `ClientFrame` as a gRPC `Realtime.Connect` stream reads it:
/// decoded, then translated into the WebSocket frame it stands for.
pub fn proto_client_frame(data: &[u8]) {
    let Ok(proto) = v1::ClientFrame::decode(data) else {
        return;
    };
    let reference = proto.r#ref.clone();
    let has_frame = proto.frame.is_some();
    match palaver_grpc::client_frame(proto) {
        Ok(frame) => {
            // What was accepted means the same when a client sends it back.
            let bytes = palaver_grpc::client_frame_to_proto(frame.clone()).encode_to_vec();
            let again =
                v1::ClientFrame::decode(bytes.as_slice()).expect("an encoded frame decodes");
            assert_eq!(palaver_grpc::client_frame(again), Ok(frame.clone()));
            // One protocol, two encodings: the WebSocket spelling reads the same.
            let json = serde_json::to_string(&frame).expect("a frame serializes");
            assert_eq!(ClientFrame::parse(&json), Ok(frame), "{json}");
        }
        Err(err) => {
            // Only a frame with none of the kinds set is refused, and the
            // refusal names it by its `ref`.
            assert!(!has_frame, "a frame with a kind was refused: {err:?}");
            assert_eq!(err.code, "invalid_frame");
            assert_eq!(err.reference, reference);
        }
    }
}
