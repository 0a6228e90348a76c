//! The rvirt.v1 gRPC contract, generated at build time from `rvirt/v1/domain.proto`.
//!
//! This is the only place generated code is included: the daemon, the client and the tests all
//! use these types, so every message has exactly one Rust definition.

/// Messages, the `DomainService` client and server of package `rvirt.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("rvirt.v1");
}

pub mod event;
pub mod state;
pub use state::DomainState;

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rvirt_descriptor.bin"));

/// The `domain` field of every error's google.rpc.ErrorInfo detail.
pub const ERROR_DOMAIN: &str = "rvirt.v1";

/// rvirtd's runtime folder when told nothing: libvirt's split between the system daemon (root:
/// `/run/rvirt`) and a per-user one (`$XDG_RUNTIME_DIR/rvirt`, else `/tmp/rvirt-$UID`, which the
/// daemon creates 0700 and refuses when someone else made it first, as tmux does).
pub fn default_runtime_dir() -> std::path::PathBuf {
    let uid = effective_uid();
    if uid == 0 {
        return "/run/rvirt".into();
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => std::path::PathBuf::from(dir).join("rvirt"),
        None => std::path::PathBuf::from(format!("/tmp/rvirt-{uid}")),
    }
}

/// Where rvirtd listens, and rvirt clients look, when told nothing: `rvirt-sock` in
/// `default_runtime_dir()`.
pub fn default_socket_path() -> std::path::PathBuf {
    default_runtime_dir().join("rvirt-sock")
}

/// The effective user id, read from `/proc/self/status` (no libc needed).
pub fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse().ok()
        })
        .unwrap_or(u32::MAX)
}
