//! The one integration-test binary: every module starts real rvirtd instances and talks to them
//! over real sockets.

/// Identities and access: the read-only socket, the policy that filters, mutual TLS.
mod access;
/// SIGKILL at random moments under churn: nothing acknowledged is lost, nothing half there.
mod crash;
/// Changes a hypervisor makes on its own, through the one event pump.
mod events;
/// Foreign gRPC clients (Python grpcio) on the unix socket; reflection v1 and v1alpha.
mod grpc_clients;
/// The legacy enumeration's races, forced one by one, against ListAllDomains.
mod legacy;
/// The lifecycle: state table, forbidden transitions, ids, XML, snapshots, checkpoints.
mod lifecycle;
/// Resource bounds: connections, silent and idle ones, the answer budget, XML shapes, stopping.
mod limits;
/// ListAllDomains: every flag value against an independent oracle.
mod listing;
/// libvirt's own protocol: python3-libvirt and virsh under churn, events, raw frames at the bounds.
mod native;
/// Paged ListAllDomains: one snapshot across pages, tokens bound and checked.
mod paging;
/// The qemu driver on real guests.
mod qemu;
/// The race harness, bounded: legacy anomalies vs atomic listings replayed exactly.
mod race;
/// The real rvirtd process: restart, reboot, the state folder lock, signals, health, reflection.
mod restart;
/// rvirsh against virsh: the same command sequences, byte-for-byte the same output.
mod rvirsh;
/// `rvirsh event`: the built binary watching while the library makes changes, virsh's lines.
mod rvirsh_event;
/// Snapshots: revert, the queries, the listing flags, redefinition, the tree after revert and delete.
mod snapshots;
/// Bad input of every kind, refused with the registry unchanged.
mod validation;
/// WatchDomainEvents and the informer: gap-free from a generation, across reconnects and restarts.
mod watch;
