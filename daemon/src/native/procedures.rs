//! The procedures: each decodes its arguments, calls `api` and `Domains` as the caller of the
//! connection, and encodes libvirt's answer. Domains are found by the UUID in the client's handle
//! (its name may be stale); a hidden domain is missing, as on gRPC.
//!
//! A procedure not listed here is answered as libvirtd answers one it does not know, so clients
//! take their fallbacks (virsh without `DOMAIN_GET_MESSAGES` prints `dominfo` without it).

use super::failure::{self, Failure, code};
use super::frame::Outgoing;
use super::protocol::{self as p, procedure as n};
use super::session::{Callback, Session};
use super::xdr::{self, List, Xdr};
use crate::api;
use crate::caller::Caller;
use crate::domain::{Checkpoint, Domain, Snapshot};
use crate::error::{DomainRef, Error};
use crate::filter::ListFilter;
use crate::lifecycle::{Op, flags};
use crate::registry::Committed;
use std::sync::Arc;
use uuid::Uuid;

/// The version of libvirt whose protocol and behaviour rvirtd follows (9.0.0), for
/// `CONNECT_GET_LIB_VERSION`.
const LIB_VERSION: u64 = 9_000_000;

/// virDomainMetadataType: VIR_DOMAIN_METADATA_DESCRIPTION, TITLE.
const METADATA_DESCRIPTION: i32 = 0;
const METADATA_TITLE: i32 = 1;

/// The procedures that change something, with the libvirt function each is, for the read-only
/// refusal (libvirt's virCheckReadOnlyGoto, before anything else is looked at).
const MUTATING: &[(i32, &str)] = &[
    (n::DOMAIN_DEFINE_XML, "virDomainDefineXML"),
    (n::DOMAIN_DEFINE_XML_FLAGS, "virDomainDefineXMLFlags"),
    (n::DOMAIN_CREATE_XML, "virDomainCreateXML"),
    (n::DOMAIN_CREATE, "virDomainCreate"),
    (n::DOMAIN_CREATE_WITH_FLAGS, "virDomainCreateWithFlags"),
    (n::DOMAIN_SHUTDOWN, "virDomainShutdown"),
    (n::DOMAIN_SHUTDOWN_FLAGS, "virDomainShutdownFlags"),
    (n::DOMAIN_DESTROY, "virDomainDestroy"),
    (n::DOMAIN_DESTROY_FLAGS, "virDomainDestroyFlags"),
    (n::DOMAIN_SUSPEND, "virDomainSuspend"),
    (n::DOMAIN_RESUME, "virDomainResume"),
    (n::DOMAIN_REBOOT, "virDomainReboot"),
    (n::DOMAIN_RESET, "virDomainReset"),
    (n::DOMAIN_UNDEFINE, "virDomainUndefine"),
    (n::DOMAIN_UNDEFINE_FLAGS, "virDomainUndefineFlags"),
    (n::DOMAIN_MANAGED_SAVE, "virDomainManagedSave"),
    (n::DOMAIN_MANAGED_SAVE_REMOVE, "virDomainManagedSaveRemove"),
    (n::DOMAIN_SET_AUTOSTART, "virDomainSetAutostart"),
    (n::DOMAIN_SNAPSHOT_CREATE_XML, "virDomainSnapshotCreateXML"),
    (n::DOMAIN_REVERT_TO_SNAPSHOT, "virDomainRevertToSnapshot"),
    (n::DOMAIN_SNAPSHOT_DELETE, "virDomainSnapshotDelete"),
    (n::DOMAIN_CHECKPOINT_CREATE_XML, "virDomainCheckpointCreateXML"),
    (n::DOMAIN_CHECKPOINT_DELETE, "virDomainCheckpointDelete"),
    (n::DOMAIN_PM_SUSPEND_FOR_DURATION, "virDomainPMSuspendForDuration"),
    (n::DOMAIN_PM_WAKEUP, "virDomainPMWakeup"),
];

/// One past the newest VIR_DOMAIN_EVENT_ID_* (libvirt 11.7's): every ID a current client knows is
/// accepted, though rvirtd sends only lifecycle events; one past them is refused as libvirtd does.
const EVENT_ID_LAST: i32 = p::event_id::NIC_MAC_CHANGE + 1;

/// A reply frame with its first `ROOM` bytes left for the length word and header (the caller
/// fills them in), so a large answer is encoded once, in place (or shared, as a listing).
type Answer = Result<Outgoing, Failure>;

/// The bytes an `Answer` leaves before its payload.
pub const ROOM: usize = p::LEN_BYTES + p::HEADER_BYTES;

/// A call's arguments. Differs from libvirt: bytes left over after them are refused (libvirtd
/// ignores them); no libvirt client sends any.
fn args<T: Xdr>(payload: &[u8]) -> Result<T, Failure> {
    xdr::decode(payload).map_err(|error| Failure::rpc(format!("Unable to decode message payload: {error}")))
}

fn ret<T: Xdr>(value: T) -> Answer {
    let mut out = vec![0; ROOM];
    value.put(&mut out);
    Ok(out.into())
}

fn void() -> Answer {
    Ok(vec![0; ROOM].into())
}

fn int(value: bool) -> i32 {
    i32::from(value)
}

/// A domain handle as a client holds it.
pub fn handle(domain: &Domain) -> p::NonnullDomain {
    handle_with_id(domain, domain.id)
}

/// A domain handle with `id` (an event about a domain that just stopped carries -1).
pub fn handle_with_id(domain: &Domain, id: i32) -> p::NonnullDomain {
    p::NonnullDomain { name: domain.name().to_owned(), uuid: *domain.uuid().as_bytes(), id }
}

fn snapshot_handle(domain: &Domain, snapshot: &Snapshot) -> p::NonnullDomainSnapshot {
    p::NonnullDomainSnapshot { name: snapshot.name.clone(), dom: handle(domain) }
}

fn checkpoint_handle(domain: &Domain, checkpoint: &Checkpoint) -> p::NonnullDomainCheckpoint {
    p::NonnullDomainCheckpoint { name: checkpoint.name.clone(), dom: handle(domain) }
}

/// The domain of the change just made, for procedures that return a handle.
fn changed(committed: Committed) -> Answer {
    match committed.domain {
        Some(domain) => ret(p::DomainRet { dom: handle(&domain) }),
        None => Err(Error::driver("the domain is gone").into()),
    }
}

/// Runs one call on `session`.
pub async fn call(session: &Arc<Session>, procedure: i32, payload: &[u8]) -> Answer {
    // What works before CONNECT_OPEN: authentication, the keepalive probe, the open itself.
    match procedure {
        n::AUTH_LIST => return ret(p::AuthListRet { types: List(vec![p::AUTH_NONE]) }),
        n::AUTH_SASL_INIT | n::AUTH_SASL_START | n::AUTH_SASL_STEP | n::AUTH_POLKIT => {
            // Advertised: none; as libvirtd on an auth-none socket.
            let message = "authentication failed: authentication failed".to_owned();
            return Err(Failure::Remote(code::AUTH_FAILED, failure::FROM_RPC, message));
        }
        n::CONNECT_SUPPORTS_FEATURE => return supports_feature(session, args(payload)?),
        n::CONNECT_OPEN => return open(session, args(payload)?),
        _ => {}
    }
    if !known(procedure) {
        return Err(Failure::unknown_procedure(procedure));
    }
    let caller = session.caller()?;
    if let Some((_, function)) = MUTATING.iter().find(|(number, _)| *number == procedure)
        && caller.read_only()
    {
        return Err(Error::read_only(function).into());
    }
    let calls = Calls { session, caller };
    calls.run(procedure, payload).await
}

/// Whether `procedure` is one rvirtd implements (once the connection is open).
fn known(procedure: i32) -> bool {
    IMPLEMENTED.contains(&procedure)
}

/// Every procedure `Calls::run` answers.
const IMPLEMENTED: &[i32] = &[
    n::CONNECT_CLOSE,
    n::CONNECT_GET_TYPE,
    n::CONNECT_GET_VERSION,
    n::CONNECT_GET_LIB_VERSION,
    n::CONNECT_GET_HOSTNAME,
    n::CONNECT_GET_URI,
    n::CONNECT_IS_SECURE,
    n::NODE_GET_INFO,
    n::CONNECT_REGISTER_CLOSE_CALLBACK,
    n::CONNECT_UNREGISTER_CLOSE_CALLBACK,
    n::CONNECT_LIST_ALL_DOMAINS,
    n::CONNECT_NUM_OF_DOMAINS,
    n::CONNECT_LIST_DOMAINS,
    n::CONNECT_NUM_OF_DEFINED_DOMAINS,
    n::CONNECT_LIST_DEFINED_DOMAINS,
    n::DOMAIN_LOOKUP_BY_ID,
    n::DOMAIN_LOOKUP_BY_NAME,
    n::DOMAIN_LOOKUP_BY_UUID,
    n::DOMAIN_DEFINE_XML,
    n::DOMAIN_DEFINE_XML_FLAGS,
    n::DOMAIN_CREATE_XML,
    n::DOMAIN_CREATE,
    n::DOMAIN_CREATE_WITH_FLAGS,
    n::DOMAIN_SHUTDOWN,
    n::DOMAIN_SHUTDOWN_FLAGS,
    n::DOMAIN_DESTROY,
    n::DOMAIN_DESTROY_FLAGS,
    n::DOMAIN_SUSPEND,
    n::DOMAIN_RESUME,
    n::DOMAIN_REBOOT,
    n::DOMAIN_RESET,
    n::DOMAIN_UNDEFINE,
    n::DOMAIN_UNDEFINE_FLAGS,
    n::DOMAIN_MANAGED_SAVE,
    n::DOMAIN_HAS_MANAGED_SAVE_IMAGE,
    n::DOMAIN_MANAGED_SAVE_REMOVE,
    n::DOMAIN_SET_AUTOSTART,
    n::DOMAIN_GET_AUTOSTART,
    n::DOMAIN_GET_INFO,
    n::DOMAIN_GET_STATE,
    n::DOMAIN_GET_OS_TYPE,
    n::DOMAIN_IS_ACTIVE,
    n::DOMAIN_IS_PERSISTENT,
    n::DOMAIN_IS_UPDATED,
    n::DOMAIN_GET_XML_DESC,
    n::DOMAIN_GET_METADATA,
    n::DOMAIN_SNAPSHOT_CREATE_XML,
    n::DOMAIN_SNAPSHOT_GET_XML_DESC,
    n::DOMAIN_SNAPSHOT_NUM,
    n::DOMAIN_LIST_ALL_SNAPSHOTS,
    n::DOMAIN_SNAPSHOT_LOOKUP_BY_NAME,
    n::DOMAIN_HAS_CURRENT_SNAPSHOT,
    n::DOMAIN_SNAPSHOT_CURRENT,
    n::DOMAIN_REVERT_TO_SNAPSHOT,
    n::DOMAIN_SNAPSHOT_DELETE,
    n::DOMAIN_SNAPSHOT_GET_PARENT,
    n::DOMAIN_SNAPSHOT_NUM_CHILDREN,
    n::DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN,
    n::DOMAIN_SNAPSHOT_IS_CURRENT,
    n::DOMAIN_SNAPSHOT_HAS_METADATA,
    n::DOMAIN_CHECKPOINT_CREATE_XML,
    n::DOMAIN_CHECKPOINT_GET_XML_DESC,
    n::DOMAIN_LIST_ALL_CHECKPOINTS,
    n::DOMAIN_CHECKPOINT_LOOKUP_BY_NAME,
    n::DOMAIN_CHECKPOINT_GET_PARENT,
    n::DOMAIN_CHECKPOINT_DELETE,
    n::DOMAIN_PM_SUSPEND_FOR_DURATION,
    n::DOMAIN_PM_WAKEUP,
    n::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
    n::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
];

/// `CONNECT_SUPPORTS_FEATURE`: yes only to what is implemented. Keepalive may be asked before
/// the open (the RPC layer answers it); the rest need an open connection.
fn supports_feature(session: &Arc<Session>, a: p::ConnectSupportsFeatureArgs) -> Answer {
    let supported = match a.feature {
        p::feature::PROGRAM_KEEPALIVE => {
            session.enable_keepalive();
            true
        }
        _ if !session.is_open() => return Err(Failure::rpc_internal("hypervisor connection not open")),
        p::feature::REMOTE_EVENT_CALLBACK | p::feature::REMOTE_CLOSE_CALLBACK => true,
        // FD passing, typed-parameter strings, migration: not implemented.
        _ => false,
    };
    ret(p::ConnectSupportsFeatureRet { supported: int(supported) })
}

/// `CONNECT_OPEN`: the daemon's own driver URI (or none: the default), nothing else.
fn open(session: &Arc<Session>, a: p::ConnectOpenArgs) -> Answer {
    let uri = session.native.uri;
    if let Some(name) = a.name.as_deref().filter(|name| !name.is_empty())
        && name != uri
    {
        // As libvirtd when no driver takes the URI.
        let message = format!("no connection driver available for {name}");
        return Err(Failure::Remote(code::NO_CONNECT, failure::FROM_NONE, message));
    }
    session.open(a.flags & p::CONNECT_RO != 0)?;
    tracing::debug!(caller = %session.peer, uri, flags = a.flags, "libvirt-protocol connection opened its driver");
    void()
}

/// The calls of an open connection, for `caller`.
struct Calls<'a> {
    session: &'a Arc<Session>,
    caller: Arc<Caller>,
}

impl Calls<'_> {
    fn domains(&self) -> &Arc<crate::domains::Domains> {
        &self.session.native.domains
    }

    /// The domain a handle names, by UUID, if the caller may see it.
    fn domain(&self, dom: &p::NonnullDomain) -> Result<Arc<Domain>, Failure> {
        let uuid = Uuid::from_bytes(dom.uuid);
        let (view, grants) = (self.domains().view(), self.domains().grants(&self.caller));
        grants.visible(view.get(&uuid), DomainRef::Uuid(uuid)).cloned().map_err(|e| missing_handle(dom, e))
    }

    async fn operate(&self, dom: &p::NonnullDomain, op: Op) -> Result<Committed, Failure> {
        let uuid = Uuid::from_bytes(dom.uuid);
        self.domains().operate_as(&self.caller, uuid, op).await.map_err(|e| missing_handle(dom, e))
    }

    /// A lookup's NO_DOMAIN as the daemon's driver words it: libvirt's test driver says a bare
    /// "Domain not found", QEMU's names what was asked for (as `DomainRef` does).
    fn missing_lookup(&self, error: Error) -> Failure {
        match error {
            Error::NoDomain(_) if self.session.native.error_domain == failure::FROM_TEST => {
                Failure::Remote(code::NO_DOMAIN, failure::FROM_TEST, "Domain not found".into())
            }
            other => other.into(),
        }
    }

    async fn operate_void(&self, dom: &p::NonnullDomain, op: Result<Op, Error>) -> Answer {
        self.operate(dom, op?).await?;
        void()
    }

    /// Parses a domain definition; a large one on the work pool, off the async workers.
    async fn parse_def(&self, xml: String) -> Result<crate::xml::DomainDef, Failure> {
        let domains = self.domains().clone();
        self.parse(xml.len(), move || domains.parse_def(&xml)).await
    }

    /// Builds the Op for a snapshot or checkpoint document; a large one on the work pool.
    async fn moment_op(
        &self,
        xml: String,
        build: fn(&str, u32) -> Result<Op, Error>,
        flags: u32,
    ) -> Result<Op, Failure> {
        self.parse(xml.len(), move || build(&xml, flags)).await
    }

    /// `work`, a parse of `bytes` of XML: here when small (tens of microseconds), on the work
    /// pool otherwise.
    async fn parse<T: Send + 'static>(
        &self,
        bytes: usize,
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Failure> {
        if bytes <= crate::grpc::INLINE_PARSE_LIMIT {
            return Ok(work()?);
        }
        Ok(self.session.native.pool.run(work).await??)
    }

    async fn run(&self, procedure: i32, payload: &[u8]) -> Answer {
        match procedure {
            n::CONNECT_CLOSE => {
                self.session.close();
                void()
            }
            // The client's close callback fires when the socket closes: nothing to keep here.
            n::CONNECT_REGISTER_CLOSE_CALLBACK | n::CONNECT_UNREGISTER_CLOSE_CALLBACK => void(),
            n::CONNECT_GET_TYPE => {
                let kind = if self.session.native.uri.starts_with("qemu") { "QEMU" } else { "TEST" };
                ret(p::ConnectGetTypeRet { hv_type: kind.to_owned() })
            }
            n::CONNECT_GET_VERSION => ret(p::ConnectGetVersionRet { hv_ver: LIB_VERSION }),
            n::CONNECT_GET_LIB_VERSION => ret(p::ConnectGetLibVersionRet { lib_ver: LIB_VERSION }),
            n::CONNECT_GET_HOSTNAME => ret(p::ConnectGetHostnameRet { hostname: hostname() }),
            n::CONNECT_GET_URI => ret(p::ConnectGetUriRet { uri: self.session.native.uri.to_owned() }),
            // A unix socket is as secure as libvirtd says its unix sockets are.
            n::CONNECT_IS_SECURE => ret(p::ConnectIsSecureRet { secure: 1 }),
            n::NODE_GET_INFO => ret(node_info()),
            n::CONNECT_LIST_ALL_DOMAINS => self.list_all_domains(args(payload)?).await,
            n::CONNECT_NUM_OF_DOMAINS => {
                let grants = self.domains().grants(&self.caller);
                ret(p::NumRet { num: self.domains().view().num_active(&grants) as i32 })
            }
            n::CONNECT_LIST_DOMAINS => {
                let a: p::ConnectListDomainsArgs = args(payload)?;
                let max = list_max(
                    api::max_count(a.maxids, "maxids in virConnectListDomains")?,
                    (p::DOMAIN_ID_LIST_MAX, "REMOTE_DOMAIN_LIST_MAX"),
                    "maxids",
                )?;
                let grants = self.domains().grants(&self.caller);
                ret(p::ConnectListDomainsRet { ids: List(self.domains().view().active_ids(max, &grants)) })
            }
            n::CONNECT_NUM_OF_DEFINED_DOMAINS => {
                let grants = self.domains().grants(&self.caller);
                ret(p::NumRet { num: self.domains().view().num_inactive(&grants) as i32 })
            }
            n::CONNECT_LIST_DEFINED_DOMAINS => {
                let a: p::ConnectListDefinedDomainsArgs = args(payload)?;
                let max = api::max_count(a.maxnames, "maxnames in virConnectListDefinedDomains")?;
                let max = list_max(max, (p::DOMAIN_NAME_LIST_MAX, "REMOTE_DOMAIN_LIST_MAX"), "maxnames")?;
                let grants = self.domains().grants(&self.caller);
                ret(p::ConnectListDefinedDomainsRet {
                    names: List(self.domains().view().inactive_names(max, &grants)),
                })
            }
            n::DOMAIN_LOOKUP_BY_ID => {
                let a: p::DomainLookupByIdArgs = args(payload)?;
                let id = api::id(a.id)?;
                let (view, grants) = (self.domains().view(), self.domains().grants(&self.caller));
                let found =
                    grants.visible(view.by_id(id), DomainRef::Id(id)).map_err(|e| self.missing_lookup(e))?;
                ret(p::DomainRet { dom: handle(found) })
            }
            n::DOMAIN_LOOKUP_BY_NAME => {
                let a: p::DomainLookupByNameArgs = args(payload)?;
                let name = api::name(&a.name)?;
                let (view, grants) = (self.domains().view(), self.domains().grants(&self.caller));
                let found = grants
                    .visible(view.by_name(name), DomainRef::Name(name.to_owned()))
                    .map_err(|e| self.missing_lookup(e))?;
                ret(p::DomainRet { dom: handle(found) })
            }
            n::DOMAIN_LOOKUP_BY_UUID => {
                let a: p::DomainLookupByUuidArgs = args(payload)?;
                let uuid = Uuid::from_bytes(a.uuid);
                let (view, grants) = (self.domains().view(), self.domains().grants(&self.caller));
                let found = grants
                    .visible(view.get(&uuid), DomainRef::Uuid(uuid))
                    .map_err(|e| self.missing_lookup(e))?;
                ret(p::DomainRet { dom: handle(found) })
            }
            n::DOMAIN_DEFINE_XML => {
                let a: p::DomainDefineXmlArgs = args(payload)?;
                let def = self.parse_def(a.xml).await?;
                changed(self.domains().define_as(&self.caller, def, 0).await?)
            }
            n::DOMAIN_DEFINE_XML_FLAGS => {
                let a: p::DomainDefineXmlFlagsArgs = args(payload)?;
                let def = self.parse_def(a.xml).await?;
                changed(self.domains().define_as(&self.caller, def, a.flags).await?)
            }
            n::DOMAIN_CREATE_XML => {
                let a: p::DomainCreateXmlArgs = args(payload)?;
                let def = self.parse_def(a.xml_desc).await?;
                changed(self.domains().create_as(&self.caller, def, a.flags).await?)
            }
            n::DOMAIN_CREATE => {
                let a: p::DomainArgs = args(payload)?;
                self.operate_void(&a.dom, api::start(0)).await
            }
            n::DOMAIN_CREATE_WITH_FLAGS => {
                let a: p::DomainFlagsArgs = args(payload)?;
                changed(self.operate(&a.dom, api::start(a.flags)?).await?)
            }
            n::DOMAIN_SHUTDOWN => {
                self.operate_void(&args::<p::DomainArgs>(payload)?.dom, api::shutdown(0)).await
            }
            n::DOMAIN_SHUTDOWN_FLAGS => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::shutdown(a.flags)).await
            }
            n::DOMAIN_DESTROY => {
                self.operate_void(&args::<p::DomainArgs>(payload)?.dom, api::destroy(0)).await
            }
            n::DOMAIN_DESTROY_FLAGS => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::destroy(a.flags)).await
            }
            n::DOMAIN_SUSPEND => {
                self.operate_void(&args::<p::DomainArgs>(payload)?.dom, Ok(Op::Suspend)).await
            }
            n::DOMAIN_RESUME => self.operate_void(&args::<p::DomainArgs>(payload)?.dom, Ok(Op::Resume)).await,
            n::DOMAIN_REBOOT => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::reboot(a.flags)).await
            }
            n::DOMAIN_RESET => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::reset(a.flags)).await
            }
            n::DOMAIN_UNDEFINE => {
                self.operate_void(&args::<p::DomainArgs>(payload)?.dom, api::undefine(0)).await
            }
            n::DOMAIN_UNDEFINE_FLAGS => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::undefine(a.flags)).await
            }
            n::DOMAIN_MANAGED_SAVE => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::managed_save(a.flags)).await
            }
            n::DOMAIN_HAS_MANAGED_SAVE_IMAGE => {
                let a: p::DomainFlagsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                ret(p::ResultRet { result: int(api::has_managed_save(&domain, a.flags)?) })
            }
            n::DOMAIN_MANAGED_SAVE_REMOVE => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::managed_save_remove(a.flags)).await
            }
            n::DOMAIN_SET_AUTOSTART => {
                let a: p::DomainSetAutostartArgs = args(payload)?;
                self.operate_void(&a.dom, Ok(Op::SetAutostart(a.autostart != 0))).await
            }
            n::DOMAIN_GET_AUTOSTART => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                ret(p::DomainGetAutostartRet { autostart: int(domain.autostart) })
            }
            n::DOMAIN_GET_INFO => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                let usage = self.domains().driver().usage(&domain);
                ret(p::DomainGetInfoRet {
                    state: domain.state as u32,
                    max_mem: domain.def.memory_kib,
                    memory: usage.memory_kib.unwrap_or(domain.def.current_memory_kib),
                    nr_virt_cpu: domain.def.vcpus,
                    cpu_time: usage.cpu_time_ns,
                })
            }
            n::DOMAIN_GET_STATE => {
                let a: p::DomainFlagsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let (state, reason) = api::state(&domain, a.flags)?;
                ret(p::DomainGetStateRet { state: state as i32, reason })
            }
            n::DOMAIN_GET_OS_TYPE => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                ret(p::DomainGetOsTypeRet { os_type: self.domains().driver().os_type(&domain.def) })
            }
            n::DOMAIN_IS_ACTIVE => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                ret(p::DomainIsActiveRet { active: int(domain.is_active()) })
            }
            n::DOMAIN_IS_PERSISTENT => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                ret(p::DomainIsPersistentRet { persistent: int(domain.persistent) })
            }
            n::DOMAIN_IS_UPDATED => {
                let domain = self.domain(&args::<p::DomainArgs>(payload)?.dom)?;
                // Updated: the live definition differs from the persistent one waiting behind it.
                ret(p::DomainIsUpdatedRet { updated: int(domain.next_def.is_some()) })
            }
            n::DOMAIN_GET_XML_DESC => {
                let a: p::DomainFlagsArgs = args(payload)?;
                api::xml_desc_flags(a.flags, self.caller.read_only())?;
                let domain = self.domain(&a.dom)?;
                ret(p::XmlRet { xml: api::xml_desc(&domain, a.flags) })
            }
            n::DOMAIN_GET_METADATA => {
                let a: p::DomainGetMetadataArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                Error::check_flags(a.flags, 1 | 2, "virDomainGetMetadata")?;
                let extras = domain.def.extras();
                let text = match a.kind {
                    METADATA_TITLE => extras.title.as_deref(),
                    METADATA_DESCRIPTION => extras.description.as_deref(),
                    // Custom XML elements: rvirt keeps none.
                    _ => None,
                };
                match text {
                    Some(text) => ret(p::DomainGetMetadataRet { metadata: text.to_owned() }),
                    None => Err(Failure::Remote(
                        code::NO_DOMAIN_METADATA,
                        self.session.native.error_domain,
                        "metadata not found: Requested metadata element is not present".into(),
                    )),
                }
            }
            n::DOMAIN_SNAPSHOT_CREATE_XML => {
                let a: p::DomainSnapshotCreateXmlArgs = args(payload)?;
                let op = self.moment_op(a.xml_desc, api::snapshot_create, a.flags).await?;
                let name = moment_name(&op);
                let committed = self.operate(&a.dom, op).await?;
                let domain =
                    committed.domain.ok_or_else(|| Failure::from(Error::driver("the domain is gone")))?;
                let name = name
                    .or_else(|| domain.moments.snapshots.last().map(|s| s.name.clone()))
                    .unwrap_or_default();
                ret(p::SnapshotRet { snap: p::NonnullDomainSnapshot { name, dom: handle(&domain) } })
            }
            n::DOMAIN_SNAPSHOT_GET_XML_DESC => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                let (function, secure) =
                    ("virDomainSnapshotGetXMLDesc", a.flags & flags::SNAPSHOT_XML_SECURE != 0);
                api::secure_flag(secure, self.caller.read_only(), function)?;
                let domain = self.domain(&a.snap.dom)?;
                let snapshot =
                    api::snapshot(&domain, &a.snap.name, (a.flags, flags::SNAPSHOT_XML_SECURE, function))?;
                ret(p::XmlRet { xml: api::snapshot_xml(&domain, snapshot, secure) })
            }
            n::DOMAIN_SNAPSHOT_NUM => {
                let a: p::DomainFlagsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let count = api::snapshots(&domain, None, a.flags, "virDomainSnapshotNum")?.len();
                ret(p::NumRet { num: count as i32 })
            }
            n::DOMAIN_LIST_ALL_SNAPSHOTS => {
                let a: p::DomainListAllSnapshotsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let listed = api::snapshots(&domain, None, a.flags, "virDomainListAllSnapshots")?;
                snapshot_list(&domain, &listed, a.need_results)
            }
            n::DOMAIN_SNAPSHOT_LIST_ALL_CHILDREN => {
                let a: p::DomainSnapshotListAllChildrenArgs = args(payload)?;
                let domain = self.domain(&a.snapshot.dom)?;
                let function = "virDomainSnapshotListAllChildren";
                let listed = api::snapshots(&domain, Some(&a.snapshot.name), a.flags, function)?;
                snapshot_list(&domain, &listed, a.need_results)
            }
            n::DOMAIN_SNAPSHOT_NUM_CHILDREN => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                let domain = self.domain(&a.snap.dom)?;
                let function = "virDomainSnapshotNumChildren";
                let count = api::snapshots(&domain, Some(&a.snap.name), a.flags, function)?.len();
                ret(p::NumRet { num: count as i32 })
            }
            n::DOMAIN_SNAPSHOT_LOOKUP_BY_NAME => {
                let a: p::DomainSnapshotLookupByNameArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let snapshot =
                    api::snapshot(&domain, &a.name, (a.flags, 0, "virDomainSnapshotLookupByName"))?;
                ret(p::SnapshotRet { snap: snapshot_handle(&domain, snapshot) })
            }
            n::DOMAIN_HAS_CURRENT_SNAPSHOT => {
                let a: p::DomainFlagsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                ret(p::ResultRet { result: int(api::has_current_snapshot(&domain, a.flags)?) })
            }
            n::DOMAIN_SNAPSHOT_CURRENT => {
                let a: p::DomainFlagsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                ret(p::SnapshotRet {
                    snap: snapshot_handle(&domain, api::snapshot_current(&domain, a.flags)?),
                })
            }
            n::DOMAIN_REVERT_TO_SNAPSHOT => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                self.operate_void(&a.snap.dom, api::snapshot_revert(&a.snap.name, a.flags)).await
            }
            n::DOMAIN_SNAPSHOT_DELETE => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                self.operate_void(&a.snap.dom, api::snapshot_delete(&a.snap.name, a.flags)).await
            }
            n::DOMAIN_SNAPSHOT_GET_PARENT => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                let domain = self.domain(&a.snap.dom)?;
                let parent = api::snapshot_parent(&domain, &a.snap.name, a.flags)?;
                ret(p::SnapshotRet { snap: snapshot_handle(&domain, parent) })
            }
            n::DOMAIN_SNAPSHOT_IS_CURRENT => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                let domain = self.domain(&a.snap.dom)?;
                let snapshot =
                    api::snapshot(&domain, &a.snap.name, (a.flags, 0, "virDomainSnapshotIsCurrent"))?;
                ret(p::DomainSnapshotIsCurrentRet { current: int(api::is_current(&domain, snapshot)) })
            }
            n::DOMAIN_SNAPSHOT_HAS_METADATA => {
                let a: p::SnapshotFlagsArgs = args(payload)?;
                let domain = self.domain(&a.snap.dom)?;
                api::snapshot(&domain, &a.snap.name, (a.flags, 0, "virDomainSnapshotHasMetadata"))?;
                // Every snapshot rvirt knows is known through its metadata.
                ret(p::DomainSnapshotHasMetadataRet { metadata: 1 })
            }
            n::DOMAIN_CHECKPOINT_CREATE_XML => {
                let a: p::DomainCheckpointCreateXmlArgs = args(payload)?;
                let op = self.moment_op(a.xml_desc, api::checkpoint_create, a.flags).await?;
                let name = moment_name(&op);
                let committed = self.operate(&a.dom, op).await?;
                let domain =
                    committed.domain.ok_or_else(|| Failure::from(Error::driver("the domain is gone")))?;
                let name = name
                    .or_else(|| domain.moments.checkpoints.last().map(|c| c.name.clone()))
                    .unwrap_or_default();
                ret(p::CheckpointRet {
                    checkpoint: p::NonnullDomainCheckpoint { name, dom: handle(&domain) },
                })
            }
            n::DOMAIN_CHECKPOINT_GET_XML_DESC => {
                let a: p::CheckpointFlagsArgs = args(payload)?;
                let function = "virDomainCheckpointGetXMLDesc";
                let secure = a.flags & flags::CHECKPOINT_XML_SECURE != 0;
                api::secure_flag(secure, self.caller.read_only(), function)?;
                let domain = self.domain(&a.checkpoint.dom)?;
                let known = flags::CHECKPOINT_XML_SECURE
                    | flags::CHECKPOINT_XML_NO_DOMAIN
                    | flags::CHECKPOINT_XML_SIZE;
                let checkpoint = api::checkpoint(&domain, &a.checkpoint.name, (a.flags, known, function))?;
                let with_domain = a.flags & flags::CHECKPOINT_XML_NO_DOMAIN == 0;
                ret(p::XmlRet { xml: api::checkpoint_xml(&domain, checkpoint, with_domain, secure) })
            }
            n::DOMAIN_LIST_ALL_CHECKPOINTS => {
                let a: p::DomainListAllCheckpointsArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let listed = api::checkpoints(&domain, a.flags)?;
                let checkpoints = if a.need_results != 0 {
                    list_of(listed.iter().map(|c| checkpoint_handle(&domain, c)).collect(), "checkpoints")?
                } else {
                    List(Vec::new())
                };
                ret(p::CheckpointListRet { checkpoints, ret: listed.len() as i32 })
            }
            n::DOMAIN_CHECKPOINT_LOOKUP_BY_NAME => {
                let a: p::DomainCheckpointLookupByNameArgs = args(payload)?;
                let domain = self.domain(&a.dom)?;
                let checkpoint =
                    api::checkpoint(&domain, &a.name, (a.flags, 0, "virDomainCheckpointLookupByName"))?;
                ret(p::CheckpointRet { checkpoint: checkpoint_handle(&domain, checkpoint) })
            }
            n::DOMAIN_CHECKPOINT_GET_PARENT => {
                let a: p::CheckpointFlagsArgs = args(payload)?;
                let domain = self.domain(&a.checkpoint.dom)?;
                let parent = api::checkpoint_parent(&domain, &a.checkpoint.name, a.flags)?;
                ret(p::DomainCheckpointGetParentRet { parent: checkpoint_handle(&domain, parent) })
            }
            n::DOMAIN_CHECKPOINT_DELETE => {
                let a: p::CheckpointFlagsArgs = args(payload)?;
                self.operate_void(&a.checkpoint.dom, api::checkpoint_delete(&a.checkpoint.name, a.flags))
                    .await
            }
            n::DOMAIN_PM_SUSPEND_FOR_DURATION => {
                let a: p::DomainPmSuspendForDurationArgs = args(payload)?;
                self.operate_void(&a.dom, api::pm_suspend(a.target, a.duration, a.flags)).await
            }
            n::DOMAIN_PM_WAKEUP => {
                let a: p::DomainFlagsArgs = args(payload)?;
                self.operate_void(&a.dom, api::pm_wakeup(a.flags)).await
            }
            n::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => {
                let a: p::ConnectDomainEventCallbackRegisterAnyArgs = args(payload)?;
                // As libvirtd 9.0 answers a raw client (its C client checks the id itself).
                if !(0..EVENT_ID_LAST).contains(&a.event_id) {
                    return Err(Failure::rpc_internal(&format!("unsupported event ID {}", a.event_id)));
                }
                // Not looked up, as libvirtd does not: a callback on a domain not defined (yet)
                // gets its events once it is; what the caller may not see never reaches it.
                let domain = a.dom.as_ref().map(|dom| Uuid::from_bytes(dom.uuid));
                let callback = Callback { event_id: a.event_id, domain };
                let callback_id = self.session.register(callback).ok_or_else(|| {
                    Error::Busy(format!(
                        "this connection holds {} event callbacks already; deregister some first",
                        super::session::MAX_CALLBACKS
                    ))
                })?;
                ret(p::ConnectDomainEventCallbackRegisterAnyRet { callback_id })
            }
            n::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => {
                let a: p::ConnectDomainEventCallbackDeregisterAnyArgs = args(payload)?;
                if !self.session.deregister(a.callback_id) {
                    let message = format!("domain event callback {} not registered", a.callback_id);
                    return Err(Failure::rpc_internal(&message));
                }
                void()
            }
            other => Err(Failure::unknown_procedure(other)),
        }
    }

    /// `CONNECT_LIST_ALL_DOMAINS`: every domain the flags select and the caller may see, from one
    /// view (one generation), as `ListAllDomains` on gRPC.
    async fn list_all_domains(&self, a: p::ConnectListAllDomainsArgs) -> Answer {
        let filter = ListFilter::from_flags(a.flags)?;
        let (view, grants) = (self.domains().view(), self.domains().grants(&self.caller));
        if a.need_results == 0 {
            return ret(p::ConnectListAllDomainsRet {
                domains: List(Vec::new()),
                ret: view.count(&filter, &grants) as u32,
            });
        }
        let native = &self.session.native;
        let payload = match native.listings.kept(&view, &filter, &grants) {
            Some(kept) => kept,
            None if view.len() <= crate::grpc::INLINE_LISTING_LIMIT => {
                native.listings.encode(&view, &filter, &grants)?
            }
            // Walking a large view is milliseconds of CPU with no await in it: on the work
            // pool, so the async workers stay free for short calls meanwhile, as on gRPC.
            None => {
                let native = native.clone();
                native.pool.clone().run(move || native.listings.encode(&view, &filter, &grants)).await??
            }
        };
        Ok(Outgoing { head: vec![0; ROOM], tail: Some(payload), held: None })
    }
}

/// An operation's NO_DOMAIN as both of libvirt's drivers word it (testDomObjFromDomain,
/// qemuDomainObjFromDomain): the handle's UUID and the name the client knows it by.
fn missing_handle(dom: &p::NonnullDomain, error: Error) -> Failure {
    match error {
        Error::NoDomain(DomainRef::Uuid(uuid)) => {
            Failure::Daemon(Error::NoDomain(DomainRef::Handle(uuid, dom.name.clone())))
        }
        other => other.into(),
    }
}

/// The name a snapshot or checkpoint creation will have, when its document names it.
fn moment_name(op: &Op) -> Option<String> {
    match op {
        Op::SnapshotCreate(def, ..) | Op::SnapshotRedefine(def, _) | Op::CheckpointCreate(def, _) => {
            def.name.clone()
        }
        _ => None,
    }
}

/// A `maxids`/`maxnames` argument within the protocol's list bound, as libvirtd checks it.
fn list_max(max: usize, (bound, bound_name): (u32, &str), what: &str) -> Result<usize, Failure> {
    if max > bound as usize {
        // libvirtd names the protocol's constant: "maxids > REMOTE_DOMAIN_LIST_MAX".
        return Err(Failure::rpc(format!("{what} > {bound_name}")));
    }
    Ok(max)
}

/// A list for a reply, refused as libvirtd refuses one longer than the protocol carries.
fn list_of<T, const MAX: u32>(items: Vec<T>, what: &str) -> Result<List<T, MAX>, Failure> {
    if items.len() > MAX as usize {
        return Err(Failure::too_many(what, items.len(), MAX));
    }
    Ok(List(items))
}

fn snapshot_list(domain: &Domain, listed: &[&Snapshot], need_results: i32) -> Answer {
    let snapshots = if need_results != 0 {
        list_of(listed.iter().map(|s| snapshot_handle(domain, s)).collect(), "snapshots")?
    } else {
        List(Vec::new())
    };
    ret(p::SnapshotListRet { snapshots, ret: listed.len() as i32 })
}

/// The host's name, as `gethostname` gives it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// virNodeGetInfo for this host: its architecture, memory and processors.
fn node_info() -> p::NodeGetInfoRet {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    p::NodeGetInfoRet {
        model: xdr::FixedChars::from_text(std::env::consts::ARCH),
        memory,
        cpus,
        mhz: 0,
        nodes: 1,
        sockets: 1,
        cores: cpus,
        threads: 1,
    }
}
