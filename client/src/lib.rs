//! rvirt: the client library for rvirtd.
//!
//! `Connection::open("unix:///run/rvirt/rvirt-sock" | "tcp://127.0.0.1:16510" | "tls://host")` gives one method
//! per connection-level RPC; `Domain` handles give one per domain-level RPC. Enumerate domains
//! with the atomic `Connection::list_all_domains`, or, to compare, with `legacy_list_all`.

mod connection;
mod error;
pub mod flags;
mod informer;
mod legacy;
mod types;
pub mod uri;

pub use connection::{Connection, Domain, MAX_MESSAGE_BYTES};
pub use error::{Error, ErrorKind, Result};
pub use flags::{
    ListFlags, MomentDeleteFlags, RebootFlags, SnapshotListFlags, SnapshotRevertFlags, UndefineFlags,
};
pub use informer::{Event, EventKind, Informer, Update};
pub use legacy::{LegacyEntry, LegacyListing, LegacyStep, legacy_list_all, legacy_list_all_with};
pub use rvirt_proto::event::{EventType, changed, detail};
pub use rvirt_proto::v1 as proto;
pub use types::{Change, Checkpoint, DomainId, DomainInfo, DomainState, DomainSummary, Listing, Snapshot};
pub use uri::{TlsFiles, Uri};
