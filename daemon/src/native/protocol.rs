//! libvirt's remote protocol: programs, limits, the message header, procedure and feature
//! numbers, and the `_args` / `_ret` / `_msg` structs of the procedures rvirtd serves. Written from
//! the documented wire format (shared/libvirt-wire/NOTES.md) and checked field by field against
//! go-libvirt's generated structs (same `remote_protocol.x`, libvirt 11.7).
//!
//! Naming: libvirt's `remote_domain_get_info_ret` is [`DomainGetInfoRet`]; procedures whose
//! messages have the same layout share one struct ([`DomainArgs`], [`DomainFlagsArgs`],
//! [`DomainRet`], [`SnapshotFlagsArgs`], ...), each documented with the procedures it serves. A
//! `void` message is `()`. rpcgen's `char` / `unsigned char` / `short` / `unsigned short` are full
//! words, so they are `i32` / `u32` here; `remote_nonnull_string` is `String`, `remote_string` is
//! `Option<String>`, `remote_uuid` is `[u8; 16]`, `remote_domain` is `Option<NonnullDomain>`.

use super::xdr::{CharWords, FixedChars, List, xdr_struct};

pub use super::xdr::REMOTE_STRING_MAX;

/// `REMOTE_PROGRAM`: the program number of libvirt's remote protocol.
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// `REMOTE_PROTOCOL_VERSION`.
pub const REMOTE_PROTOCOL_VERSION: u32 = 1;
/// `KEEPALIVE_PROGRAM` ("keep").
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// `KEEPALIVE_PROTOCOL_VERSION`.
pub const KEEPALIVE_VERSION: u32 = 1;
/// Keepalive procedure PING: a MESSAGE with no payload, serial 0, answered by a PONG.
pub const KEEPALIVE_PING: i32 = 1;
/// Keepalive procedure PONG.
pub const KEEPALIVE_PONG: i32 = 2;

/// `VIR_NET_MESSAGE_MAX`: the largest message, header and payload, without the length word
/// (libvirt before 5.x: 16 MiB; rvirtd must not send more than an old client accepts).
pub const MESSAGE_MAX: usize = 33_554_432;
/// The header's size on the wire.
pub const HEADER_BYTES: usize = 24;
/// The length word's size; the word counts itself.
pub const LEN_BYTES: usize = 4;
/// The smallest valid length word: a header and no payload.
pub const FRAME_LEN_MIN: usize = LEN_BYTES + HEADER_BYTES;
/// The largest length word libvirtd accepts (`MESSAGE_MAX` + the length word); beyond it the
/// connection is closed.
pub const FRAME_LEN_MAX: usize = MESSAGE_MAX + LEN_BYTES;
/// `VIR_NET_MESSAGE_PAYLOAD_MAX`: the largest payload.
pub const PAYLOAD_MAX: usize = MESSAGE_MAX - HEADER_BYTES;

/// `REMOTE_DOMAIN_LIST_MAX`: domains in one list reply (libvirtd answers "Too many domains" past
/// it, and clients refuse longer arrays).
pub const DOMAIN_LIST_MAX: u32 = 16_384;
/// Domain ids in `CONNECT_LIST_DOMAINS` (libvirt's `ids<REMOTE_DOMAIN_LIST_MAX>`; once
/// `REMOTE_DOMAIN_ID_LIST_MAX`, the same value).
pub const DOMAIN_ID_LIST_MAX: u32 = 16_384;
/// Domain names in `CONNECT_LIST_DEFINED_DOMAINS` (libvirt's `names<REMOTE_DOMAIN_LIST_MAX>`;
/// once `REMOTE_DOMAIN_NAME_LIST_MAX`, which very old libvirt set to 1024).
pub const DOMAIN_NAME_LIST_MAX: u32 = 16_384;
/// `REMOTE_DOMAIN_SNAPSHOT_LIST_MAX` as libvirt had it for years (1024); libvirt 11.x raised it to
/// 16384. rvirtd keeps the lower bound so that every client can decode its replies.
pub const SNAPSHOT_LIST_MAX: u32 = 1_024;
/// `REMOTE_DOMAIN_CHECKPOINT_LIST_MAX`.
pub const CHECKPOINT_LIST_MAX: u32 = 16_384;
/// `REMOTE_AUTH_TYPE_LIST_MAX`.
pub const AUTH_TYPE_LIST_MAX: u32 = 20;
/// `REMOTE_SECURITY_MODEL_MAX` = `VIR_SECURITY_MODEL_BUFLEN` (256 + NUL).
pub const SECURITY_MODEL_MAX: u32 = 257;
/// `REMOTE_SECURITY_DOI_MAX` = `VIR_SECURITY_DOI_BUFLEN` (256 + NUL).
pub const SECURITY_DOI_MAX: u32 = 257;
/// `REMOTE_SECURITY_LABEL_MAX` = `VIR_SECURITY_LABEL_BUFLEN` (4096 + NUL).
pub const SECURITY_LABEL_MAX: u32 = 4097;
/// `REMOTE_DOMAIN_MESSAGES_MAX`: messages in a `DOMAIN_GET_MESSAGES` reply.
pub const DOMAIN_MESSAGES_MAX: u32 = 2048;

/// `REMOTE_AUTH_NONE`: no authentication (rvirtd authorises by socket permissions).
pub const AUTH_NONE: i32 = 0;
/// `REMOTE_AUTH_SASL`.
pub const AUTH_SASL: i32 = 1;
/// `REMOTE_AUTH_POLKIT`.
pub const AUTH_POLKIT: i32 = 2;

/// `VIR_CONNECT_RO`: the `CONNECT_OPEN` flag of a read-only connection (`virsh -r`).
pub const CONNECT_RO: u32 = 1;

/// `virNetMessageType`: the header's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MessageType {
    /// A call from the client.
    Call = 0,
    /// The reply to a call (same proc and serial).
    Reply = 1,
    /// An asynchronous message: an event, a keepalive.
    Message = 2,
    /// Stream data.
    Stream = 3,
    /// A call with file descriptors.
    CallWithFds = 4,
    /// A reply with file descriptors.
    ReplyWithFds = 5,
    /// A hole in a sparse stream.
    StreamHole = 6,
}

impl MessageType {
    /// The type of a header's `kind` word, if it is one.
    pub fn from_u32(kind: u32) -> Option<Self> {
        Some(match kind {
            0 => MessageType::Call,
            1 => MessageType::Reply,
            2 => MessageType::Message,
            3 => MessageType::Stream,
            4 => MessageType::CallWithFds,
            5 => MessageType::ReplyWithFds,
            6 => MessageType::StreamHole,
            _ => return None,
        })
    }
}

/// `virNetMessageStatus`: the header's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// Success: the payload is the `_ret` (or `_args`, `_msg`).
    Ok = 0,
    /// Failure: the payload is a [`RemoteError`].
    Error = 1,
    /// More stream data follows.
    Continue = 2,
}

impl Status {
    /// The status of a header's `status` word, if it is one.
    pub fn from_u32(status: u32) -> Option<Self> {
        Some(match status {
            0 => Status::Ok,
            1 => Status::Error,
            2 => Status::Continue,
            _ => return None,
        })
    }
}

xdr_struct! {
    /// `virNetMessageHeader`, the 24 bytes after the length word of every message.
    pub struct Header {
        /// [`REMOTE_PROGRAM`] or [`KEEPALIVE_PROGRAM`].
        pub prog: u32,
        /// The program's version (1).
        pub vers: u32,
        /// The procedure number ([`procedure`]).
        pub procedure: i32,
        /// A [`MessageType`].
        pub kind: u32,
        /// Chosen by the client for a call, echoed by its reply.
        pub serial: u32,
        /// A [`Status`].
        pub status: u32,
    }
}

impl Header {
    /// A REPLY to this call with `status`: same program, version, procedure and serial.
    pub fn reply(&self, status: Status) -> Header {
        Header { kind: MessageType::Reply as u32, status: status as u32, ..self.clone() }
    }

    /// A MESSAGE (event) of the remote program: libvirtd sends them with serial 1, status OK.
    pub fn event(procedure: i32) -> Header {
        Header {
            prog: REMOTE_PROGRAM,
            vers: REMOTE_PROTOCOL_VERSION,
            procedure,
            kind: MessageType::Message as u32,
            serial: 1,
            status: Status::Ok as u32,
        }
    }

    /// A keepalive PING or PONG: a MESSAGE, serial 0, no payload.
    pub fn keepalive(procedure: i32) -> Header {
        Header {
            prog: KEEPALIVE_PROGRAM,
            vers: KEEPALIVE_VERSION,
            procedure,
            kind: MessageType::Message as u32,
            serial: 0,
            status: Status::Ok as u32,
        }
    }
}

/// Declares the procedure constants (each documented with its libvirt name) and the name table.
macro_rules! procedures {
    ($( $(#[$doc:meta])* $name:ident = $number:literal, )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("`REMOTE_PROC_", stringify!($name), "` = ", stringify!($number), ".")]
            pub const $name: i32 = $number;
        )*

        /// The name of a procedure listed here (libvirt's, without `REMOTE_PROC_`), for logs.
        pub fn name(procedure: i32) -> Option<&'static str> {
            match procedure {
                $( $number => Some(stringify!($name)), )*
                _ => None,
            }
        }

        /// Every procedure listed here, by number.
        pub const ALL: &[i32] = &[$($number),*];
    };
}

/// Procedure numbers (`enum remote_procedure`): those the virsh commands rvirsh mimics use, the
/// handshake, events and a few more a client may probe. Numbers never change once assigned.
pub mod procedure {
    procedures! {
        /// `{name; flags}` ⇒ void.
        CONNECT_OPEN = 1,
        /// void ⇒ void.
        CONNECT_CLOSE = 2,
        CONNECT_GET_TYPE = 3,
        CONNECT_GET_VERSION = 4,
        NODE_GET_INFO = 6,
        CONNECT_GET_CAPABILITIES = 7,
        /// `{dom}` ⇒ void (the client refetches the id with `DOMAIN_LOOKUP_BY_UUID`).
        DOMAIN_CREATE = 9,
        DOMAIN_CREATE_XML = 10,
        DOMAIN_DEFINE_XML = 11,
        DOMAIN_DESTROY = 12,
        DOMAIN_GET_XML_DESC = 14,
        DOMAIN_GET_AUTOSTART = 15,
        DOMAIN_GET_INFO = 16,
        DOMAIN_GET_MAX_MEMORY = 17,
        DOMAIN_GET_OS_TYPE = 19,
        /// Legacy enumeration.
        CONNECT_LIST_DEFINED_DOMAINS = 21,
        DOMAIN_LOOKUP_BY_ID = 22,
        DOMAIN_LOOKUP_BY_NAME = 23,
        DOMAIN_LOOKUP_BY_UUID = 24,
        /// Legacy enumeration.
        CONNECT_NUM_OF_DEFINED_DOMAINS = 25,
        DOMAIN_REBOOT = 27,
        DOMAIN_RESUME = 28,
        DOMAIN_SET_AUTOSTART = 29,
        DOMAIN_SHUTDOWN = 33,
        DOMAIN_SUSPEND = 34,
        DOMAIN_UNDEFINE = 35,
        /// Legacy enumeration.
        CONNECT_LIST_DOMAINS = 37,
        /// Legacy enumeration.
        CONNECT_NUM_OF_DOMAINS = 51,
        CONNECT_GET_HOSTNAME = 59,
        CONNECT_SUPPORTS_FEATURE = 60,
        /// The client's first call: void ⇒ the auth types.
        AUTH_LIST = 66,
        AUTH_SASL_INIT = 67,
        AUTH_SASL_START = 68,
        AUTH_SASL_STEP = 69,
        AUTH_POLKIT = 70,
        /// The oldest event API (no event id), superseded by the `_ANY` ones.
        CONNECT_DOMAIN_EVENT_REGISTER = 105,
        /// The oldest event API.
        CONNECT_DOMAIN_EVENT_DEREGISTER = 106,
        /// Legacy lifecycle event message (no callback id).
        DOMAIN_EVENT_LIFECYCLE = 107,
        CONNECT_GET_URI = 110,
        DOMAIN_GET_SECURITY_LABEL = 121,
        NODE_GET_SECURITY_MODEL = 122,
        CONNECT_IS_SECURE = 149,
        DOMAIN_IS_ACTIVE = 150,
        DOMAIN_IS_PERSISTENT = 151,
        CONNECT_GET_LIB_VERSION = 157,
        /// Legacy event registration (server said 0 to feature 14).
        CONNECT_DOMAIN_EVENT_REGISTER_ANY = 167,
        /// Legacy event deregistration.
        CONNECT_DOMAIN_EVENT_DEREGISTER_ANY = 168,
        /// Legacy reboot event message.
        DOMAIN_EVENT_REBOOT = 169,
        DOMAIN_MANAGED_SAVE = 182,
        DOMAIN_HAS_MANAGED_SAVE_IMAGE = 183,
        DOMAIN_MANAGED_SAVE_REMOVE = 184,
        DOMAIN_SNAPSHOT_CREATE_XML = 185,
        DOMAIN_SNAPSHOT_GET_XML_DESC = 186,
        DOMAIN_SNAPSHOT_NUM = 187,
        DOMAIN_SNAPSHOT_LIST_NAMES = 188,
        DOMAIN_SNAPSHOT_LOOKUP_BY_NAME = 189,
        DOMAIN_HAS_CURRENT_SNAPSHOT = 190,
        DOMAIN_SNAPSHOT_CURRENT = 191,
        DOMAIN_REVERT_TO_SNAPSHOT = 192,
        DOMAIN_SNAPSHOT_DELETE = 193,
        DOMAIN_CREATE_WITH_FLAGS = 196,
        /// A stream procedure (not served).
        DOMAIN_OPEN_CONSOLE = 201,
        DOMAIN_IS_UPDATED = 202,
        DOMAIN_GET_STATE = 212,
        DOMAIN_UNDEFINE_FLAGS = 231,
        DOMAIN_DESTROY_FLAGS = 234,
        DOMAIN_SNAPSHOT_GET_PARENT = 244,
        DOMAIN_RESET = 245,
        DOMAIN_SNAPSHOT_NUM_CHILDREN = 246,
        DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES = 247,
        DOMAIN_SHUTDOWN_FLAGS = 258,
        DOMAIN_PM_SUSPEND_FOR_DURATION = 261,
        DOMAIN_SET_METADATA = 264,
        DOMAIN_GET_METADATA = 265,
        DOMAIN_PM_WAKEUP = 267,
        /// Legacy pmwakeup event message.
        DOMAIN_EVENT_PMWAKEUP = 269,
        /// Legacy pmsuspend event message.
        DOMAIN_EVENT_PMSUSPEND = 270,
        DOMAIN_SNAPSHOT_IS_CURRENT = 271,
        DOMAIN_SNAPSHOT_HAS_METADATA = 272,
        /// The atomic listing `virsh list` uses.
        CONNECT_LIST_ALL_DOMAINS = 273,
        DOMAIN_LIST_ALL_SNAPSHOTS = 274,
        DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN = 275,
        /// Not served (storage).
        CONNECT_LIST_ALL_STORAGE_POOLS = 281,
        /// Not served (networks).
        CONNECT_LIST_ALL_NETWORKS = 283,
        /// Legacy pmsuspend-disk event message.
        DOMAIN_EVENT_PMSUSPEND_DISK = 292,
        /// `{eventID; dom}` ⇒ `{callbackID}`.
        CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 316,
        /// `{callbackID}` ⇒ void.
        CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = 317,
        /// Lifecycle event message (with callback id).
        DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318,
        DOMAIN_EVENT_CALLBACK_REBOOT = 319,
        DOMAIN_EVENT_CALLBACK_RTC_CHANGE = 320,
        DOMAIN_EVENT_CALLBACK_WATCHDOG = 321,
        DOMAIN_EVENT_CALLBACK_IO_ERROR = 322,
        DOMAIN_EVENT_CALLBACK_GRAPHICS = 323,
        DOMAIN_EVENT_CALLBACK_IO_ERROR_REASON = 324,
        DOMAIN_EVENT_CALLBACK_CONTROL_ERROR = 325,
        DOMAIN_EVENT_CALLBACK_BLOCK_JOB = 326,
        DOMAIN_EVENT_CALLBACK_DISK_CHANGE = 327,
        DOMAIN_EVENT_CALLBACK_TRAY_CHANGE = 328,
        DOMAIN_EVENT_CALLBACK_PMWAKEUP = 329,
        DOMAIN_EVENT_CALLBACK_PMSUSPEND = 330,
        DOMAIN_EVENT_CALLBACK_BALLOON_CHANGE = 331,
        DOMAIN_EVENT_CALLBACK_PMSUSPEND_DISK = 332,
        DOMAIN_EVENT_CALLBACK_DEVICE_REMOVED = 333,
        /// Block job event, second form (its callback id is in the message).
        DOMAIN_EVENT_BLOCK_JOB_2 = 339,
        /// Not served (bulk stats).
        CONNECT_GET_ALL_DOMAIN_STATS = 344,
        DOMAIN_EVENT_CALLBACK_TUNABLE = 346,
        DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE = 348,
        DOMAIN_DEFINE_XML_FLAGS = 350,
        DOMAIN_EVENT_CALLBACK_DEVICE_ADDED = 354,
        DOMAIN_EVENT_CALLBACK_MIGRATION_ITERATION = 359,
        /// void ⇒ void.
        CONNECT_REGISTER_CLOSE_CALLBACK = 360,
        /// void ⇒ void.
        CONNECT_UNREGISTER_CLOSE_CALLBACK = 361,
        DOMAIN_EVENT_CALLBACK_JOB_COMPLETED = 363,
        DOMAIN_EVENT_CALLBACK_DEVICE_REMOVAL_FAILED = 367,
        DOMAIN_EVENT_CALLBACK_METADATA_CHANGE = 379,
        DOMAIN_EVENT_BLOCK_THRESHOLD = 385,
        DOMAIN_CHECKPOINT_CREATE_XML = 411,
        DOMAIN_CHECKPOINT_GET_XML_DESC = 412,
        DOMAIN_LIST_ALL_CHECKPOINTS = 413,
        DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN = 414,
        DOMAIN_CHECKPOINT_LOOKUP_BY_NAME = 415,
        DOMAIN_CHECKPOINT_GET_PARENT = 416,
        DOMAIN_CHECKPOINT_DELETE = 417,
        DOMAIN_EVENT_MEMORY_FAILURE = 423,
        DOMAIN_GET_MESSAGES = 426,
        DOMAIN_EVENT_MEMORY_DEVICE_SIZE_CHANGE = 438,
        DOMAIN_EVENT_NIC_MAC_CHANGE = 453,
    }
}

/// `VIR_DRV_FEATURE_*` numbers a client asks with `CONNECT_SUPPORTS_FEATURE` (libvirt_internal.h).
/// Unknown features are answered 0.
pub mod feature {
    /// V1-style migration.
    pub const MIGRATION_V1: i32 = 1;
    /// The driver is not local.
    pub const REMOTE: i32 = 2;
    /// V2-style migration.
    pub const MIGRATION_V2: i32 = 3;
    /// Peer-to-peer migration.
    pub const MIGRATION_P2P: i32 = 4;
    /// Direct migration.
    pub const MIGRATION_DIRECT: i32 = 5;
    /// V3-style migration.
    pub const MIGRATION_V3: i32 = 6;
    /// Migration protected against configuration changes.
    pub const MIGRATE_CHANGE_PROTECTION: i32 = 7;
    /// File descriptor passing (answer 0: rvirtd passes none).
    pub const FD_PASSING: i32 = 8;
    /// `VIR_TYPED_PARAM_STRING`.
    pub const TYPED_PARAM_STRING: i32 = 9;
    /// The keepalive program (asked before `CONNECT_OPEN`; 1 commits the server to PONG).
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    /// `VIR_DOMAIN_XML_MIGRATABLE`.
    pub const XML_MIGRATABLE: i32 = 11;
    /// Offline migration.
    pub const MIGRATION_OFFLINE: i32 = 12;
    /// Migration parameters.
    pub const MIGRATION_PARAMS: i32 = 13;
    /// Server-side event filtering with callback ids (procedures 316/317, messages 318...).
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    /// The close callback procedures (360/361).
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
}

/// `VIR_DOMAIN_EVENT_ID_*`: the `eventID` of an event registration. A server must accept every id
/// the client knows (27 for libvirt 9.0, 28 for 11.x) even if it never fires most of them.
pub mod event_id {
    /// Lifecycle (`DOMAIN_EVENT_CALLBACK_LIFECYCLE`).
    pub const LIFECYCLE: i32 = 0;
    /// Reboot.
    pub const REBOOT: i32 = 1;
    /// RTC change.
    pub const RTC_CHANGE: i32 = 2;
    /// Watchdog.
    pub const WATCHDOG: i32 = 3;
    /// I/O error.
    pub const IO_ERROR: i32 = 4;
    /// Graphics.
    pub const GRAPHICS: i32 = 5;
    /// I/O error with a reason.
    pub const IO_ERROR_REASON: i32 = 6;
    /// Control error.
    pub const CONTROL_ERROR: i32 = 7;
    /// Block job.
    pub const BLOCK_JOB: i32 = 8;
    /// Disk change.
    pub const DISK_CHANGE: i32 = 9;
    /// Tray change.
    pub const TRAY_CHANGE: i32 = 10;
    /// PM wakeup.
    pub const PMWAKEUP: i32 = 11;
    /// PM suspend.
    pub const PMSUSPEND: i32 = 12;
    /// Balloon change.
    pub const BALLOON_CHANGE: i32 = 13;
    /// PM suspend to disk.
    pub const PMSUSPEND_DISK: i32 = 14;
    /// Device removed.
    pub const DEVICE_REMOVED: i32 = 15;
    /// Block job, second form.
    pub const BLOCK_JOB_2: i32 = 16;
    /// Tunable.
    pub const TUNABLE: i32 = 17;
    /// Agent lifecycle.
    pub const AGENT_LIFECYCLE: i32 = 18;
    /// Device added.
    pub const DEVICE_ADDED: i32 = 19;
    /// Migration iteration.
    pub const MIGRATION_ITERATION: i32 = 20;
    /// Job completed.
    pub const JOB_COMPLETED: i32 = 21;
    /// Device removal failed.
    pub const DEVICE_REMOVAL_FAILED: i32 = 22;
    /// Metadata change.
    pub const METADATA_CHANGE: i32 = 23;
    /// Block threshold.
    pub const BLOCK_THRESHOLD: i32 = 24;
    /// Memory failure.
    pub const MEMORY_FAILURE: i32 = 25;
    /// Memory device size change.
    pub const MEMORY_DEVICE_SIZE_CHANGE: i32 = 26;
    /// NIC MAC change (libvirt 11.x).
    pub const NIC_MAC_CHANGE: i32 = 27;
}

// ---- Building blocks ----

xdr_struct! {
    /// `remote_nonnull_domain`: a domain handle.
    pub struct NonnullDomain {
        /// The name.
        pub name: String,
        /// The UUID (the handle's identity: a name in a client's handle can be stale).
        pub uuid: [u8; 16],
        /// The id, -1 when inactive.
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_nonnull_network`.
    pub struct NonnullNetwork {
        /// The name.
        pub name: String,
        /// The UUID.
        pub uuid: [u8; 16],
    }
}

xdr_struct! {
    /// `remote_nonnull_domain_snapshot`.
    pub struct NonnullDomainSnapshot {
        /// The snapshot's name.
        pub name: String,
        /// Its domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `remote_nonnull_domain_checkpoint`.
    pub struct NonnullDomainCheckpoint {
        /// The checkpoint's name.
        pub name: String,
        /// Its domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `remote_error` (= `virNetMessageError`): the payload of a REPLY with status ERROR.
    pub struct RemoteError {
        /// `virErrorNumber` (39 `VIR_ERR_RPC`, 42 `VIR_ERR_NO_DOMAIN`, ...).
        pub code: i32,
        /// `virErrorDomain` (7 `VIR_FROM_RPC`, 12 `VIR_FROM_TEST`, ...).
        pub domain: i32,
        /// The message.
        pub message: Option<String>,
        /// `virErrorLevel` (2 = error).
        pub level: i32,
        /// The domain concerned, if any.
        pub dom: Option<NonnullDomain>,
        /// Extra string 1.
        pub str1: Option<String>,
        /// Extra string 2.
        pub str2: Option<String>,
        /// Extra string 3.
        pub str3: Option<String>,
        /// Extra number 1.
        pub int1: i32,
        /// Extra number 2.
        pub int2: i32,
        /// The network concerned, if any.
        pub net: Option<NonnullNetwork>,
    }
}

// ---- Shared layouts ----

xdr_struct! {
    /// `{remote_nonnull_domain dom}` args: `DOMAIN_CREATE` 9, `DESTROY` 12, `GET_AUTOSTART` 15,
    /// `GET_INFO` 16, `GET_MAX_MEMORY` 17, `GET_OS_TYPE` 19, `RESUME` 28, `SHUTDOWN` 33,
    /// `SUSPEND` 34, `UNDEFINE` 35, `GET_SECURITY_LABEL` 121, `IS_ACTIVE` 150, `IS_PERSISTENT`
    /// 151, `IS_UPDATED` 202.
    pub struct DomainArgs {
        /// The domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `{dom; unsigned flags}` args: `DOMAIN_GET_XML_DESC` 14, `REBOOT` 27, `MANAGED_SAVE` 182,
    /// `HAS_MANAGED_SAVE_IMAGE` 183, `MANAGED_SAVE_REMOVE` 184, `SNAPSHOT_NUM` 187,
    /// `HAS_CURRENT_SNAPSHOT` 190, `SNAPSHOT_CURRENT` 191, `CREATE_WITH_FLAGS` 196, `GET_STATE`
    /// 212, `UNDEFINE_FLAGS` 231, `DESTROY_FLAGS` 234, `RESET` 245, `SHUTDOWN_FLAGS` 258,
    /// `PM_WAKEUP` 267, `GET_MESSAGES` 426.
    pub struct DomainFlagsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The call's flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain dom}` ret: `DOMAIN_CREATE_XML` 10, `DEFINE_XML` 11, `LOOKUP_BY_ID`
    /// 22, `LOOKUP_BY_NAME` 23, `LOOKUP_BY_UUID` 24, `CREATE_WITH_FLAGS` 196, `DEFINE_XML_FLAGS`
    /// 350.
    pub struct DomainRet {
        /// The domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `{int num}` ret: `CONNECT_NUM_OF_DEFINED_DOMAINS` 25, `CONNECT_NUM_OF_DOMAINS` 51,
    /// `DOMAIN_SNAPSHOT_NUM` 187, `DOMAIN_SNAPSHOT_NUM_CHILDREN` 246.
    pub struct NumRet {
        /// The count.
        pub num: i32,
    }
}

xdr_struct! {
    /// `{int result}` ret: `DOMAIN_HAS_MANAGED_SAVE_IMAGE` 183, `DOMAIN_HAS_CURRENT_SNAPSHOT` 190.
    pub struct ResultRet {
        /// 1 yes, 0 no.
        pub result: i32,
    }
}

xdr_struct! {
    /// `{remote_nonnull_string xml}` ret: `DOMAIN_GET_XML_DESC` 14, `DOMAIN_SNAPSHOT_GET_XML_DESC`
    /// 186, `DOMAIN_CHECKPOINT_GET_XML_DESC` 412.
    pub struct XmlRet {
        /// The XML document.
        pub xml: String,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain_snapshot snap; unsigned flags}` args: `DOMAIN_SNAPSHOT_GET_XML_DESC`
    /// 186, `REVERT_TO_SNAPSHOT` 192, `SNAPSHOT_DELETE` 193, `SNAPSHOT_GET_PARENT` 244,
    /// `SNAPSHOT_NUM_CHILDREN` 246, `SNAPSHOT_IS_CURRENT` 271, `SNAPSHOT_HAS_METADATA` 272.
    pub struct SnapshotFlagsArgs {
        /// The snapshot.
        pub snap: NonnullDomainSnapshot,
        /// The call's flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain_snapshot snap}` ret: `DOMAIN_SNAPSHOT_CREATE_XML` 185,
    /// `SNAPSHOT_LOOKUP_BY_NAME` 189, `SNAPSHOT_CURRENT` 191, `SNAPSHOT_GET_PARENT` 244.
    pub struct SnapshotRet {
        /// The snapshot.
        pub snap: NonnullDomainSnapshot,
    }
}

xdr_struct! {
    /// `{remote_nonnull_string names<REMOTE_DOMAIN_SNAPSHOT_LIST_MAX>}` ret:
    /// `DOMAIN_SNAPSHOT_LIST_NAMES` 188, `DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES` 247.
    pub struct SnapshotNamesRet {
        /// The snapshot names.
        pub names: List<String, SNAPSHOT_LIST_MAX>,
    }
}

xdr_struct! {
    /// `{snapshots<REMOTE_DOMAIN_SNAPSHOT_LIST_MAX>; int ret}` ret: `DOMAIN_LIST_ALL_SNAPSHOTS` 274,
    /// `DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN` 275.
    pub struct SnapshotListRet {
        /// The snapshots (empty unless `need_results`).
        pub snapshots: List<NonnullDomainSnapshot, SNAPSHOT_LIST_MAX>,
        /// How many there are.
        pub ret: i32,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain_checkpoint checkpoint; unsigned flags}` args:
    /// `DOMAIN_CHECKPOINT_GET_XML_DESC` 412, `CHECKPOINT_GET_PARENT` 416, `CHECKPOINT_DELETE` 417.
    pub struct CheckpointFlagsArgs {
        /// The checkpoint.
        pub checkpoint: NonnullDomainCheckpoint,
        /// The call's flags.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain_checkpoint checkpoint}` ret: `DOMAIN_CHECKPOINT_CREATE_XML` 411,
    /// `CHECKPOINT_LOOKUP_BY_NAME` 415.
    pub struct CheckpointRet {
        /// The checkpoint.
        pub checkpoint: NonnullDomainCheckpoint,
    }
}

xdr_struct! {
    /// `{checkpoints<REMOTE_DOMAIN_CHECKPOINT_LIST_MAX>; int ret}` ret: `DOMAIN_LIST_ALL_CHECKPOINTS`
    /// 413, `DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN` 414.
    pub struct CheckpointListRet {
        /// The checkpoints (empty unless `need_results`).
        pub checkpoints: List<NonnullDomainCheckpoint, CHECKPOINT_LIST_MAX>,
        /// How many there are.
        pub ret: i32,
    }
}

// ---- Connection ----

xdr_struct! {
    /// `remote_auth_list_ret` (`AUTH_LIST` 66).
    pub struct AuthListRet {
        /// `remote_auth_type` values ([`AUTH_NONE`], ...); empty works like `[AUTH_NONE]`.
        pub types: List<i32, AUTH_TYPE_LIST_MAX>,
    }
}

xdr_struct! {
    /// `remote_auth_sasl_init_ret` (`AUTH_SASL_INIT` 67).
    pub struct AuthSaslInitRet {
        /// The SASL mechanisms offered.
        pub mechlist: String,
    }
}

xdr_struct! {
    /// `remote_auth_polkit_ret` (`AUTH_POLKIT` 70).
    pub struct AuthPolkitRet {
        /// 1 when authorised.
        pub complete: i32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_args` (`CONNECT_SUPPORTS_FEATURE` 60).
    pub struct ConnectSupportsFeatureArgs {
        /// A [`feature`] number.
        pub feature: i32,
    }
}

xdr_struct! {
    /// `remote_connect_supports_feature_ret`.
    pub struct ConnectSupportsFeatureRet {
        /// 1 supported, 0 not.
        pub supported: i32,
    }
}

xdr_struct! {
    /// `remote_connect_open_args` (`CONNECT_OPEN` 1; the ret is void).
    pub struct ConnectOpenArgs {
        /// The URI without transport and socket (`test:///default`), or none.
        pub name: Option<String>,
        /// [`CONNECT_RO`] for a read-only connection.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_get_uri_ret` (`CONNECT_GET_URI` 110).
    pub struct ConnectGetUriRet {
        /// The connection's URI.
        pub uri: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_type_ret` (`CONNECT_GET_TYPE` 3).
    pub struct ConnectGetTypeRet {
        /// The hypervisor type ("Test", "QEMU"); libvirt's field is `type`.
        pub hv_type: String,
    }
}

xdr_struct! {
    /// `remote_connect_get_version_ret` (`CONNECT_GET_VERSION` 4).
    pub struct ConnectGetVersionRet {
        /// The hypervisor version, major * 1,000,000 + minor * 1,000 + release.
        pub hv_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_lib_version_ret` (`CONNECT_GET_LIB_VERSION` 157).
    pub struct ConnectGetLibVersionRet {
        /// The libvirt version, major * 1,000,000 + minor * 1,000 + release.
        pub lib_ver: u64,
    }
}

xdr_struct! {
    /// `remote_connect_get_hostname_ret` (`CONNECT_GET_HOSTNAME` 59).
    pub struct ConnectGetHostnameRet {
        /// The host's name.
        pub hostname: String,
    }
}

xdr_struct! {
    /// `remote_connect_is_secure_ret` (`CONNECT_IS_SECURE` 149).
    pub struct ConnectIsSecureRet {
        /// 1 if the connection is safe from eavesdropping (a unix socket is).
        pub secure: i32,
    }
}

xdr_struct! {
    /// `remote_node_get_info_ret` (`NODE_GET_INFO` 6): 160 bytes.
    pub struct NodeGetInfoRet {
        /// The CPU model (`char model[32]`, a word per char), e.g. "x86_64".
        pub model: FixedChars<32>,
        /// Memory, KiB.
        pub memory: u64,
        /// Active CPUs.
        pub cpus: i32,
        /// CPU frequency, MHz.
        pub mhz: i32,
        /// NUMA nodes.
        pub nodes: i32,
        /// Sockets per node.
        pub sockets: i32,
        /// Cores per socket.
        pub cores: i32,
        /// Threads per core.
        pub threads: i32,
    }
}

xdr_struct! {
    /// `remote_connect_get_capabilities_ret` (`CONNECT_GET_CAPABILITIES` 7).
    pub struct ConnectGetCapabilitiesRet {
        /// The capabilities XML.
        pub capabilities: String,
    }
}

// ---- Listing and lookup ----

xdr_struct! {
    /// `remote_connect_list_all_domains_args` (`CONNECT_LIST_ALL_DOMAINS` 273).
    pub struct ConnectListAllDomainsArgs {
        /// 0: count only (the reply's `domains` is empty).
        pub need_results: i32,
        /// `VIR_CONNECT_LIST_DOMAINS_*` filters.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_connect_list_all_domains_ret`.
    pub struct ConnectListAllDomainsRet {
        /// The domains, at most [`DOMAIN_LIST_MAX`].
        pub domains: List<NonnullDomain, DOMAIN_LIST_MAX>,
        /// How many matched.
        pub ret: u32,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_id_args` (`DOMAIN_LOOKUP_BY_ID` 22; ret [`DomainRet`]).
    pub struct DomainLookupByIdArgs {
        /// The running domain's id.
        pub id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_name_args` (`DOMAIN_LOOKUP_BY_NAME` 23; ret [`DomainRet`]).
    pub struct DomainLookupByNameArgs {
        /// The name.
        pub name: String,
    }
}

xdr_struct! {
    /// `remote_domain_lookup_by_uuid_args` (`DOMAIN_LOOKUP_BY_UUID` 24; ret [`DomainRet`]).
    pub struct DomainLookupByUuidArgs {
        /// The UUID.
        pub uuid: [u8; 16],
    }
}

xdr_struct! {
    /// `remote_connect_list_domains_args` (legacy `CONNECT_LIST_DOMAINS` 37).
    pub struct ConnectListDomainsArgs {
        /// The most ids wanted.
        pub maxids: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_domains_ret`.
    pub struct ConnectListDomainsRet {
        /// The ids of running domains.
        pub ids: List<i32, DOMAIN_ID_LIST_MAX>,
    }
}

xdr_struct! {
    /// `remote_connect_list_defined_domains_args` (legacy `CONNECT_LIST_DEFINED_DOMAINS` 21).
    pub struct ConnectListDefinedDomainsArgs {
        /// The most names wanted.
        pub maxnames: i32,
    }
}

xdr_struct! {
    /// `remote_connect_list_defined_domains_ret`.
    pub struct ConnectListDefinedDomainsRet {
        /// The names of inactive domains.
        pub names: List<String, DOMAIN_NAME_LIST_MAX>,
    }
}

// ---- Lifecycle ----

xdr_struct! {
    /// `remote_domain_define_xml_args` (`DOMAIN_DEFINE_XML` 11; ret [`DomainRet`]).
    pub struct DomainDefineXmlArgs {
        /// The domain XML.
        pub xml: String,
    }
}

xdr_struct! {
    /// `remote_domain_define_xml_flags_args` (`DOMAIN_DEFINE_XML_FLAGS` 350; ret [`DomainRet`]).
    pub struct DomainDefineXmlFlagsArgs {
        /// The domain XML.
        pub xml: String,
        /// `VIR_DOMAIN_DEFINE_*` (`VALIDATE` = 1).
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_create_xml_args` (`DOMAIN_CREATE_XML` 10; ret [`DomainRet`]).
    pub struct DomainCreateXmlArgs {
        /// The domain XML.
        pub xml_desc: String,
        /// `VIR_DOMAIN_START_*`.
        pub flags: u32,
    }
}

// ---- Managed save and autostart ----

xdr_struct! {
    /// `remote_domain_set_autostart_args` (`DOMAIN_SET_AUTOSTART` 29; ret void).
    pub struct DomainSetAutostartArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// 1 to enable, 0 to disable.
        pub autostart: i32,
    }
}

xdr_struct! {
    /// `remote_domain_get_autostart_ret` (`DOMAIN_GET_AUTOSTART` 15; args [`DomainArgs`]).
    pub struct DomainGetAutostartRet {
        /// 1 if enabled.
        pub autostart: i32,
    }
}

// ---- Information ----

xdr_struct! {
    /// `remote_domain_get_info_ret` (`DOMAIN_GET_INFO` 16; args [`DomainArgs`]): 32 bytes.
    pub struct DomainGetInfoRet {
        /// `virDomainState` (`unsigned char`, a word).
        pub state: u32,
        /// Maximum memory, KiB.
        pub max_mem: u64,
        /// Current memory, KiB.
        pub memory: u64,
        /// Virtual CPUs (`unsigned short`, a word).
        pub nr_virt_cpu: u32,
        /// CPU time used, nanoseconds.
        pub cpu_time: u64,
    }
}

xdr_struct! {
    /// `remote_domain_get_state_ret` (`DOMAIN_GET_STATE` 212; args [`DomainFlagsArgs`]).
    pub struct DomainGetStateRet {
        /// `virDomainState`.
        pub state: i32,
        /// The state's reason (`virDomainRunningReason`, ...).
        pub reason: i32,
    }
}

xdr_struct! {
    /// `remote_domain_get_os_type_ret` (`DOMAIN_GET_OS_TYPE` 19; args [`DomainArgs`]).
    pub struct DomainGetOsTypeRet {
        /// The OS type ("hvm"); libvirt's field is `type`.
        pub os_type: String,
    }
}

xdr_struct! {
    /// `remote_domain_get_max_memory_ret` (`DOMAIN_GET_MAX_MEMORY` 17; args [`DomainArgs`]).
    pub struct DomainGetMaxMemoryRet {
        /// Maximum memory, KiB.
        pub memory: u64,
    }
}

xdr_struct! {
    /// `remote_domain_is_active_ret` (`DOMAIN_IS_ACTIVE` 150; args [`DomainArgs`]).
    pub struct DomainIsActiveRet {
        /// 1 if running (or paused).
        pub active: i32,
    }
}

xdr_struct! {
    /// `remote_domain_is_persistent_ret` (`DOMAIN_IS_PERSISTENT` 151; args [`DomainArgs`]).
    pub struct DomainIsPersistentRet {
        /// 1 if defined.
        pub persistent: i32,
    }
}

xdr_struct! {
    /// `remote_domain_is_updated_ret` (`DOMAIN_IS_UPDATED` 202; args [`DomainArgs`]).
    pub struct DomainIsUpdatedRet {
        /// 1 if the running definition differs from the persistent one.
        pub updated: i32,
    }
}

xdr_struct! {
    /// `remote_node_get_security_model_ret` (`NODE_GET_SECURITY_MODEL` 122; args void).
    pub struct NodeGetSecurityModelRet {
        /// The model ("selinux", "none", ""), a word per char, the count including the NUL.
        pub model: CharWords<SECURITY_MODEL_MAX>,
        /// The domain of interpretation, likewise.
        pub doi: CharWords<SECURITY_DOI_MAX>,
    }
}

xdr_struct! {
    /// `remote_domain_get_security_label_ret` (`DOMAIN_GET_SECURITY_LABEL` 121; args
    /// [`DomainArgs`]).
    pub struct DomainGetSecurityLabelRet {
        /// The label, a word per char, the count including the NUL.
        pub label: CharWords<SECURITY_LABEL_MAX>,
        /// 1 if enforcing.
        pub enforcing: i32,
    }
}

xdr_struct! {
    /// `remote_domain_get_messages_ret` (`DOMAIN_GET_MESSAGES` 426; args [`DomainFlagsArgs`]).
    pub struct DomainGetMessagesRet {
        /// The messages.
        pub msgs: List<String, DOMAIN_MESSAGES_MAX>,
    }
}

xdr_struct! {
    /// `remote_domain_get_metadata_args` (`DOMAIN_GET_METADATA` 265).
    pub struct DomainGetMetadataArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// `virDomainMetadataType` (0 description, 1 title, 2 element); libvirt's field is `type`.
        pub kind: i32,
        /// The element's namespace URI (for kind 2).
        pub uri: Option<String>,
        /// `VIR_DOMAIN_AFFECT_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_get_metadata_ret`.
    pub struct DomainGetMetadataRet {
        /// The metadata.
        pub metadata: String,
    }
}

// ---- Snapshots ----

xdr_struct! {
    /// `remote_domain_snapshot_create_xml_args` (`DOMAIN_SNAPSHOT_CREATE_XML` 185; ret
    /// [`SnapshotRet`]).
    pub struct DomainSnapshotCreateXmlArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The snapshot XML.
        pub xml_desc: String,
        /// `VIR_DOMAIN_SNAPSHOT_CREATE_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_list_names_args` (`DOMAIN_SNAPSHOT_LIST_NAMES` 188; ret
    /// [`SnapshotNamesRet`]).
    pub struct DomainSnapshotListNamesArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The most names wanted.
        pub maxnames: i32,
        /// `VIR_DOMAIN_SNAPSHOT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_list_all_snapshots_args` (`DOMAIN_LIST_ALL_SNAPSHOTS` 274; ret
    /// [`SnapshotListRet`]).
    pub struct DomainListAllSnapshotsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// 0: count only.
        pub need_results: i32,
        /// `VIR_DOMAIN_SNAPSHOT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_lookup_by_name_args` (`DOMAIN_SNAPSHOT_LOOKUP_BY_NAME` 189; ret
    /// [`SnapshotRet`]).
    pub struct DomainSnapshotLookupByNameArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The snapshot's name.
        pub name: String,
        /// Unused (0).
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_list_children_names_args` (`DOMAIN_SNAPSHOT_LIST_CHILDREN_NAMES`
    /// 247; ret [`SnapshotNamesRet`]).
    pub struct DomainSnapshotListChildrenNamesArgs {
        /// The parent snapshot.
        pub snap: NonnullDomainSnapshot,
        /// The most names wanted.
        pub maxnames: i32,
        /// `VIR_DOMAIN_SNAPSHOT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_list_all_children_args` (`DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN` 275;
    /// ret [`SnapshotListRet`]).
    pub struct DomainSnapshotListAllChildrenArgs {
        /// The parent snapshot.
        pub snapshot: NonnullDomainSnapshot,
        /// 0: count only.
        pub need_results: i32,
        /// `VIR_DOMAIN_SNAPSHOT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_is_current_ret` (`DOMAIN_SNAPSHOT_IS_CURRENT` 271; args
    /// [`SnapshotFlagsArgs`]).
    pub struct DomainSnapshotIsCurrentRet {
        /// 1 if it is the domain's current snapshot.
        pub current: i32,
    }
}

xdr_struct! {
    /// `remote_domain_snapshot_has_metadata_ret` (`DOMAIN_SNAPSHOT_HAS_METADATA` 272; args
    /// [`SnapshotFlagsArgs`]).
    pub struct DomainSnapshotHasMetadataRet {
        /// 1 if libvirt (here rvirtd) keeps metadata for it.
        pub metadata: i32,
    }
}

// ---- Checkpoints ----

xdr_struct! {
    /// `remote_domain_checkpoint_create_xml_args` (`DOMAIN_CHECKPOINT_CREATE_XML` 411; ret
    /// [`CheckpointRet`]).
    pub struct DomainCheckpointCreateXmlArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The checkpoint XML.
        pub xml_desc: String,
        /// `VIR_DOMAIN_CHECKPOINT_CREATE_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_list_all_checkpoints_args` (`DOMAIN_LIST_ALL_CHECKPOINTS` 413; ret
    /// [`CheckpointListRet`]).
    pub struct DomainListAllCheckpointsArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// 0: count only.
        pub need_results: i32,
        /// `VIR_DOMAIN_CHECKPOINT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_checkpoint_list_all_children_args` (`DOMAIN_CHECKPOINT_LIST_ALL_CHILDREN`
    /// 414; ret [`CheckpointListRet`]).
    pub struct DomainCheckpointListAllChildrenArgs {
        /// The parent checkpoint.
        pub checkpoint: NonnullDomainCheckpoint,
        /// 0: count only.
        pub need_results: i32,
        /// `VIR_DOMAIN_CHECKPOINT_LIST_*`.
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_checkpoint_lookup_by_name_args` (`DOMAIN_CHECKPOINT_LOOKUP_BY_NAME` 415;
    /// ret [`CheckpointRet`]).
    pub struct DomainCheckpointLookupByNameArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// The checkpoint's name.
        pub name: String,
        /// Unused (0).
        pub flags: u32,
    }
}

xdr_struct! {
    /// `remote_domain_checkpoint_get_parent_ret` (`DOMAIN_CHECKPOINT_GET_PARENT` 416; args
    /// [`CheckpointFlagsArgs`]).
    pub struct DomainCheckpointGetParentRet {
        /// The parent checkpoint.
        pub parent: NonnullDomainCheckpoint,
    }
}

// ---- Power management ----

xdr_struct! {
    /// `remote_domain_pm_suspend_for_duration_args` (`DOMAIN_PM_SUSPEND_FOR_DURATION` 261; ret
    /// void).
    pub struct DomainPmSuspendForDurationArgs {
        /// The domain.
        pub dom: NonnullDomain,
        /// `VIR_NODE_SUSPEND_TARGET_*` (0 mem, 1 disk, 2 hybrid).
        pub target: u32,
        /// Seconds, 0 for no limit.
        pub duration: u64,
        /// Unused (0).
        pub flags: u32,
    }
}

// ---- Events ----

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_args`
    /// (`CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY` 316).
    pub struct ConnectDomainEventCallbackRegisterAnyArgs {
        /// An [`event_id`].
        pub event_id: i32,
        /// The one domain to watch, or none for all.
        pub dom: Option<NonnullDomain>,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_register_any_ret`.
    pub struct ConnectDomainEventCallbackRegisterAnyRet {
        /// The registration's id (a server-wide counter), carried by each of its events.
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_callback_deregister_any_args`
    /// (`CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY` 317; ret void).
    pub struct ConnectDomainEventCallbackDeregisterAnyArgs {
        /// The registration's id.
        pub callback_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_register_any_args` (legacy `CONNECT_DOMAIN_EVENT_REGISTER_ANY`
    /// 167; ret void).
    pub struct ConnectDomainEventRegisterAnyArgs {
        /// An [`event_id`].
        pub event_id: i32,
    }
}

xdr_struct! {
    /// `remote_connect_domain_event_deregister_any_args` (legacy
    /// `CONNECT_DOMAIN_EVENT_DEREGISTER_ANY` 168; ret void).
    pub struct ConnectDomainEventDeregisterAnyArgs {
        /// An [`event_id`].
        pub event_id: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_lifecycle_msg` (legacy message `DOMAIN_EVENT_LIFECYCLE` 107, and the
    /// body of [`DomainEventCallbackLifecycleMsg`]).
    pub struct DomainEventLifecycleMsg {
        /// The domain (id -1 once stopped).
        pub dom: NonnullDomain,
        /// A `rvirt_proto::event::EventType` number.
        pub event: i32,
        /// The event's detail (`virDomainEventStartedDetailType`, ...).
        pub detail: i32,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_lifecycle_msg` (message `DOMAIN_EVENT_CALLBACK_LIFECYCLE`
    /// 318).
    pub struct DomainEventCallbackLifecycleMsg {
        /// The registration it is for.
        pub callback_id: i32,
        /// The event.
        pub msg: DomainEventLifecycleMsg,
    }
}

xdr_struct! {
    /// `{remote_nonnull_domain dom}` event body: `remote_domain_event_reboot_msg`,
    /// `_pmwakeup_msg`, `_pmsuspend_msg`, `_pmsuspend_disk_msg` (legacy messages 169, 269, 270,
    /// 292, and the bodies of the callback ones).
    pub struct DomainEventMsg {
        /// The domain.
        pub dom: NonnullDomain,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_reboot_msg` (message `DOMAIN_EVENT_CALLBACK_REBOOT` 319).
    pub struct DomainEventCallbackRebootMsg {
        /// The registration it is for.
        pub callback_id: i32,
        /// The event.
        pub msg: DomainEventMsg,
    }
}

xdr_struct! {
    /// `remote_domain_event_callback_pmwakeup_msg`, `_pmsuspend_msg`, `_pmsuspend_disk_msg`
    /// (messages `DOMAIN_EVENT_CALLBACK_PMWAKEUP` 329, `PMSUSPEND` 330, `PMSUSPEND_DISK` 332).
    pub struct DomainEventCallbackPmMsg {
        /// The registration it is for.
        pub callback_id: i32,
        /// The reason (unused by libvirt: 0).
        pub reason: i32,
        /// The event.
        pub msg: DomainEventMsg,
    }
}

#[cfg(test)]
mod tests {
    use super::super::xdr::{Xdr, XdrError, decode, encode};
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    fn round_trip<T: Xdr + PartialEq + std::fmt::Debug>(v: &T, expected: &[u8]) {
        let bytes = encode(v);
        assert_eq!(bytes, expected, "encoding of {v:?}");
        assert_eq!(decode::<T>(&bytes).as_ref(), Ok(v));
        for cut in 0..bytes.len() {
            assert!(decode::<T>(&bytes[..cut]).is_err(), "prefix of {cut} bytes of {v:?} decoded");
        }
    }

    const UUID: [u8; 16] = [0xc4, 0x8e, 0x76, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn y() -> NonnullDomain {
        NonnullDomain { name: "y".into(), uuid: UUID, id: -1 }
    }

    #[test]
    fn auth_list_call_and_reply() {
        // The first frame virsh sends, without its length word 0000001c.
        let call = Header {
            prog: REMOTE_PROGRAM,
            vers: REMOTE_PROTOCOL_VERSION,
            procedure: procedure::AUTH_LIST,
            kind: MessageType::Call as u32,
            serial: 0,
            status: Status::Ok as u32,
        };
        round_trip(&call, &unhex("20008086 00000001 00000042 00000000 00000000 00000000"));
        assert_eq!(encode(&call).len(), HEADER_BYTES);
        let reply = call.reply(Status::Ok);
        assert_eq!(encode(&reply), unhex("20008086 00000001 00000042 00000001 00000000 00000000"));
        let ret = AuthListRet { types: List::new(vec![AUTH_NONE]).expect("one type") };
        round_trip(&ret, &unhex("00000001 00000000"));
        assert_eq!(FRAME_LEN_MIN + encode(&ret).len(), 0x24);
    }

    #[test]
    fn message_type_and_status() {
        for kind in 0..7 {
            assert_eq!(MessageType::from_u32(kind).map(|k| k as u32), Some(kind));
        }
        assert_eq!(MessageType::from_u32(7), None);
        for status in 0..3 {
            assert_eq!(Status::from_u32(status).map(|s| s as u32), Some(status));
        }
        assert_eq!(Status::from_u32(3), None);
        let event = Header::event(procedure::DOMAIN_EVENT_CALLBACK_LIFECYCLE);
        assert_eq!((event.kind, event.serial, event.status), (2, 1, 0));
        let ping = Header::keepalive(KEEPALIVE_PING);
        assert_eq!(encode(&ping), unhex("6b656570 00000001 00000001 00000002 00000000 00000000"));
    }

    #[test]
    fn connect_open_args() {
        let args = ConnectOpenArgs { name: Some("test:///default".into()), flags: 0 };
        round_trip(&args, &unhex("00000001 0000000f 746573743a2f2f2f64656661756c74 00 00000000"));
    }

    #[test]
    fn nonnull_domain() {
        let mut expected = unhex("00000001 79000000");
        expected.extend_from_slice(&UUID);
        expected.extend_from_slice(&unhex("ffffffff"));
        round_trip(&y(), &expected);
        round_trip(&DomainRet { dom: y() }, &expected);
    }

    #[test]
    fn domain_get_info_ret_is_32_bytes() {
        let ret =
            DomainGetInfoRet { state: 1, max_mem: 1 << 20, memory: 1 << 19, nr_virt_cpu: 2, cpu_time: 7 };
        let bytes = encode(&ret);
        assert_eq!(bytes.len(), 32);
        assert_eq!(&bytes[..4], &unhex("00000001")[..]);
        assert_eq!(&bytes[20..24], &unhex("00000002")[..]);
        round_trip(&ret, &bytes);
    }

    #[test]
    fn node_get_info_ret_is_160_bytes() {
        let ret = NodeGetInfoRet {
            model: FixedChars::from_text("i686"),
            memory: 3_145_728,
            cpus: 16,
            mhz: 1400,
            nodes: 2,
            sockets: 2,
            cores: 2,
            threads: 2,
        };
        let bytes = encode(&ret);
        assert_eq!(bytes.len(), 160);
        assert_eq!(&bytes[..16], &unhex("00000069 00000036 00000038 00000036")[..]);
        assert!(bytes[16..128].iter().all(|&b| b == 0));
        round_trip(&ret, &bytes);
        assert_eq!(decode::<NodeGetInfoRet>(&bytes).map(|r| r.model.text()), Ok("i686".into()));
    }

    #[test]
    fn security_model() {
        let ret = NodeGetSecurityModelRet {
            model: CharWords::new("testSecurity").expect("fits"),
            doi: CharWords::new("").expect("fits"),
        };
        let mut expected = unhex("0000000d");
        for b in b"testSecurity\0" {
            expected.extend_from_slice(&u32::from(*b).to_be_bytes());
        }
        expected.extend_from_slice(&unhex("00000001 00000000"));
        round_trip(&ret, &expected);
        assert!(CharWords::<SECURITY_MODEL_MAX>::new("m".repeat(256)).is_ok());
        assert!(CharWords::<SECURITY_MODEL_MAX>::new("m".repeat(257)).is_err());
    }

    #[test]
    fn remote_error() {
        let error = RemoteError {
            code: 42,
            domain: 12,
            message: Some("Domain not found".into()),
            level: 2,
            str1: Some("Domain not found".into()),
            int1: -1,
            int2: -1,
            ..RemoteError::default()
        };
        let bytes = encode(&error);
        let mut expected = unhex("0000002a 0000000c 00000001 00000010");
        expected.extend_from_slice(b"Domain not found");
        expected.extend_from_slice(&unhex("00000002 00000000 00000001 00000010"));
        expected.extend_from_slice(b"Domain not found");
        expected.extend_from_slice(&unhex("00000000 00000000 ffffffff ffffffff 00000000"));
        round_trip(&error, &expected);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn list_all_domains() {
        round_trip(&ConnectListAllDomainsArgs { need_results: 1, flags: 3 }, &unhex("00000001 00000003"));
        let ret = ConnectListAllDomainsRet { domains: List(vec![y(), y()]), ret: 2 };
        let bytes = encode(&ret);
        assert_eq!(bytes.len(), 4 + 2 * 28 + 4);
        round_trip(&ret, &bytes);
        // A hostile count is refused before anything is allocated.
        assert_eq!(
            decode::<ConnectListAllDomainsRet>(&unhex("00004000 00000000 00000000")),
            Err(XdrError::Short { needed: 16_384 * NonnullDomain::MIN_BYTES, left: 8 })
        );
        assert!(matches!(
            decode::<ConnectListAllDomainsRet>(&unhex("00004001")),
            Err(XdrError::TooLong { what: "array", len: 16_385, max: DOMAIN_LIST_MAX })
        ));
    }

    #[test]
    fn lifecycle_event_is_40_bytes_for_x() {
        let msg = DomainEventCallbackLifecycleMsg {
            callback_id: 0,
            msg: DomainEventLifecycleMsg {
                dom: NonnullDomain { name: "x".into(), uuid: UUID, id: 1 },
                event: rvirt_proto::event::EventType::Suspended as i32,
                detail: 0,
            },
        };
        let bytes = encode(&msg);
        assert_eq!(bytes.len(), 40);
        round_trip(&msg, &bytes);
        let pm = DomainEventCallbackPmMsg { callback_id: 3, reason: 0, msg: DomainEventMsg { dom: y() } };
        let bytes = encode(&pm);
        assert_eq!(&bytes[..8], &unhex("00000003 00000000")[..]);
        round_trip(&pm, &bytes);
    }

    #[test]
    fn event_registration() {
        round_trip(
            &ConnectDomainEventCallbackRegisterAnyArgs { event_id: event_id::LIFECYCLE, dom: None },
            &unhex("00000000 00000000"),
        );
        let args = ConnectDomainEventCallbackRegisterAnyArgs { event_id: event_id::REBOOT, dom: Some(y()) };
        round_trip(&args, &encode(&args));
        assert_eq!(encode(&args).len(), 8 + 28);
    }

    #[test]
    fn snapshot_and_checkpoint_layouts() {
        let snap = NonnullDomainSnapshot { name: "s1".into(), dom: y() };
        let args = SnapshotFlagsArgs { snap: snap.clone(), flags: 0 };
        let bytes = encode(&args);
        assert_eq!(&bytes[..8], &unhex("00000002 73310000")[..]);
        assert_eq!(bytes.len(), 8 + 28 + 4);
        round_trip(&args, &bytes);
        let list = SnapshotListRet { snapshots: List(vec![snap]), ret: 1 };
        round_trip(&list, &encode(&list));
        let checkpoint = NonnullDomainCheckpoint { name: "c".into(), dom: y() };
        let ret = CheckpointListRet { checkpoints: List(vec![checkpoint.clone()]), ret: 1 };
        round_trip(&ret, &encode(&ret));
        round_trip(
            &DomainCheckpointGetParentRet { parent: checkpoint.clone() },
            &encode(&CheckpointRet { checkpoint }),
        );
        let pm = DomainPmSuspendForDurationArgs { dom: y(), target: 0, duration: 30, flags: 0 };
        assert_eq!(encode(&pm).len(), 28 + 4 + 8 + 4);
        let metadata = DomainGetMetadataArgs { dom: y(), kind: 1, uri: None, flags: 0 };
        assert_eq!(&encode(&metadata)[28..], &unhex("00000001 00000000 00000000")[..]);
    }

    #[test]
    fn procedure_names() {
        assert_eq!(procedure::name(procedure::CONNECT_LIST_ALL_DOMAINS), Some("CONNECT_LIST_ALL_DOMAINS"));
        assert_eq!(procedure::name(1), Some("CONNECT_OPEN"));
        assert_eq!(procedure::name(9999), None);
        let mut numbers = procedure::ALL.to_vec();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), procedure::ALL.len(), "a procedure number is listed twice");
        assert_eq!(
            [
                procedure::DOMAIN_GET_STATE,
                procedure::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
                procedure::DOMAIN_EVENT_CALLBACK_LIFECYCLE,
                procedure::DOMAIN_GET_MESSAGES,
                procedure::DOMAIN_CHECKPOINT_DELETE,
            ],
            [212, 316, 318, 426, 417]
        );
    }

    #[test]
    fn frame_limits() {
        assert_eq!(FRAME_LEN_MIN, 28);
        assert_eq!(FRAME_LEN_MAX, 33_554_436);
        assert_eq!(PAYLOAD_MAX, 33_554_408);
    }
}
