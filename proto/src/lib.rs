//! The rvirt.v1 gRPC contract, generated at build time from `rvirt/v1/domain.proto`.
//!
//! This is the only place generated code is included: the daemon, the client and the tests all
//! use these types, so every message has exactly one Rust definition.

/// Messages, the `DomainService` client and server of package `rvirt.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("rvirt.v1");
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvirt_descriptor.bin"));

/// The `domain` field of every error's google.rpc.ErrorInfo detail.
pub const ERROR_DOMAIN: &str = "rvirt.v1";
