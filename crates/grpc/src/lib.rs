//! Palaver's gRPC API: the messages and services of `proto/palaver/v1`
//! (docs/grpc.md), shared by the server and the client library.
//!
//! - `v1`: the generated messages, clients and servers;
//! - `encoded`: the `Realtime` server whose streams carry `EncodedServerFrame`s,
//!   through `codec.rs`'s small buffers;
//! - `frames.rs`: the WebSocket frames (`palaver_protocol::ws`) in their
//!   protobuf spelling and back: one protocol, two encodings;
//! - `records.rs`: the REST records in their protobuf spelling.

mod codec;
mod frames;
pub mod records;

pub use codec::RealtimeCodec;

pub use frames::{
    client_frame, client_frame_to_proto, frame_from_ws, frame_to_ws, resume_from_map,
};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/palaver.v1.rs"));
}

/// The `Realtime` server, sending frames encoded once for all their streams.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod encoded {
    include!(concat!(env!("OUT_DIR"), "/encoded/palaver.v1.rs"));
}

/// The compiled `.proto` files, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

/// A `palaver.v1.ServerFrame` already encoded: the bytes are written to the
/// stream as they are (the generated server takes this type where the proto
/// says `ServerFrame`). It is never decoded; clients read `v1::ServerFrame`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedServerFrame(pub bytes::Bytes);

impl EncodedServerFrame {
    pub fn encode(frame: &v1::ServerFrame) -> Self {
        EncodedServerFrame(prost::Message::encode_to_vec(frame).into())
    }
}

impl prost::Message for EncodedServerFrame {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    /// Only ever sent: a decoder (which nothing here is) would skip every field.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}
