//! Compiles `rvirt/v1/*.proto` with protox (pure Rust: no system `protoc`) and hands the
//! descriptor set to tonic-prost-build. The descriptor set is also kept for gRPC reflection.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["rvirt/v1/domain.proto"];
    println!("cargo:rerun-if-changed=rvirt");
    let descriptors = protox::compile(protos, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("rvirt_descriptor.bin"), descriptors.encode_to_vec())?;
    // `bytes` fields (UUIDs) decode as `bytes::Bytes`: slices of the received buffer, no copy.
    tonic_prost_build::configure().bytes(".").compile_fds(descriptors)?;
    Ok(())
}
