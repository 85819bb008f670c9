//! The codec of the `Realtime` server's streams: prost's, with small buffers.
//!
//! tonic gives every stream an encode and a decode buffer of the codec's
//! `buffer_size` up front and keeps them for the stream's life (8 KiB each by
//! default, 16 KiB of every idle connection). A realtime stream's frames are a
//! few hundred bytes; a larger one grows its buffer as it needs, up to the
//! frame limit.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Bytes each buffer starts with, and grows by.
const BUFFER_BYTES: usize = 512;
/// tonic's own default: how much a stream encodes before yielding.
const YIELD_THRESHOLD: usize = 32 * 1024;

#[derive(Debug, Clone)]
pub struct RealtimeCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for RealtimeCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

impl<T, U> Codec for RealtimeCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
