//! The one integration-test binary: every module starts real rvirtd instances and talks to them
//! over real sockets.

/// ListAllDomains: every flag value against an independent oracle.
mod listing;

/// rvirsh against virsh: the same command sequences, byte-for-byte the same output.
mod rvirsh;
