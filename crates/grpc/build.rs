//! Compiles `proto/palaver/v1` with protox (a protobuf compiler in Rust, so
//! that building Palaver needs no `protoc`), twice:
//! - every message, client and server, into `palaver.v1.rs`;
//! - the `Realtime` server alone into `encoded/palaver.v1.rs`, with
//!   `ServerFrame` replaced by `EncodedServerFrame`, so that a frame shared by
//!   many streams is encoded once and its bytes written to each, through
//!   `RealtimeCodec`'s small buffers.

use std::error::Error;
use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 5] = ["types", "accounts", "rooms", "messages", "realtime"];

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = PROTOS
        .iter()
        .map(|name| root.join(format!("palaver/v1/{name}.proto")))
        .collect();
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("descriptors.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(descriptors.clone())?;

    let mut realtime_only = descriptors;
    for file in &mut realtime_only.file {
        file.service.retain(|service| service.name() == "Realtime");
    }
    let encoded = out.join("encoded");
    std::fs::create_dir_all(&encoded)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        .out_dir(&encoded)
        .extern_path(".palaver.v1", "crate::v1")
        .extern_path(".palaver.v1.ServerFrame", "crate::EncodedServerFrame")
        .codec_path("crate::RealtimeCodec")
        .compile_fds(realtime_only)?;
    Ok(())
}
