//! The rvirt.v1 `DomainService`: validates and converts each request, calls `Domains`, converts
//! the answer. The only module that knows prost; it holds no domain state of its own.

pub mod budget;
pub mod convert;
pub mod guard;
pub mod status;
pub mod trace;
pub mod watch;

use crate::access::Grants;
use crate::caller::{Access, Caller, Identity};
use crate::config::WatchConfig;
use crate::domains::Domains;
use crate::error::{DomainRef, Error};
use crate::filter::ListFilter;
use crate::lifecycle::{self, Op, flags};
use crate::paging::{PageToken, RetainedViews, TokenCodec};
use crate::pool::WorkPool;
use crate::xml::MomentDef;
use budget::ByteBudget;
use rvirt_proto::v1::{self, domain_service_server::DomainService};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The gRPC face of one daemon's `Domains`.
#[derive(Debug, Clone)]
pub struct Service {
    domains: Arc<Domains>,
    /// Issues and checks ListAllDomains page tokens.
    tokens: Arc<TokenCodec>,
    /// Snapshots of listings still being paged.
    retained: Arc<RetainedViews>,
    /// The message size limit pages are cut to fit.
    max_message_bytes: usize,
    /// Where large pages are cut, off the async workers.
    pool: WorkPool,
    /// Bytes of answers built but not yet read by their clients.
    budget: ByteBudget,
    /// The open watch streams, and their limit.
    watchers: Arc<watch::Watchers>,
    /// The `[watch]` settings.
    watch: WatchConfig,
    /// `[limits] stall_timeout_ms`.
    stall_timeout_ms: u64,
    /// Cancelled when the daemon stops: watch streams end.
    stopping: tokio_util::sync::CancellationToken,
}

/// The most domains one ListAllDomains page holds.
pub const MAX_PAGE_SIZE: usize = 250_000;
/// Room left in a message for everything but the domains.
const MESSAGE_MARGIN_BYTES: usize = 64 << 10;

/// A listing entry's size as reserved before the page is cut: its fixed fields at their widest and
/// a long name (the page then gives back what it did not use).
const ESTIMATED_ENTRY_BYTES: usize = 160;

/// XML documents up to this size are parsed on the async worker itself (tens of microseconds).
const INLINE_PARSE_LIMIT: usize = 16 << 10;

/// Views up to this size are cut into pages on the async worker itself.
const INLINE_PAGE_LIMIT: usize = 2_000;

/// One page of a listing.
struct Page {
    domains: Vec<v1::DomainSummary>,
    /// More matching domains follow.
    more: bool,
    /// Matching domains in the whole listing.
    count: u64,
    /// An upper bound of the page's encoded size.
    bytes: usize,
}

/// Cuts the page that starts after `after`: at most `max_count` entries and about `budget`
/// encoded bytes (always at least one entry).
fn page(
    view: &crate::registry::View,
    (filter, grants): (&ListFilter, &Grants),
    after: Option<uuid::Uuid>,
    max_count: usize,
    budget: usize,
    known_count: Option<u64>,
) -> Page {
    let capacity = if filter.flags() == 0 && !grants.filters() { view.len().min(max_count) } else { 0 };
    let (mut domains, mut bytes, mut more) = (Vec::with_capacity(capacity), 0, false);
    for domain in view.iter_after(after).filter(|d| filter.matches(d) && grants.sees(d)) {
        // An upper bound of the entry's encoded size: every fixed field at its widest.
        let size = 64 + domain.name().len() + domain.def.extras().title.as_ref().map_or(0, |t| t.len());
        if domains.len() == max_count || (bytes + size > budget && !domains.is_empty()) {
            more = true;
            break;
        }
        bytes += size;
        domains.push(convert::summary(domain));
    }
    let count = known_count
        .unwrap_or_else(|| if more { view.count(filter, grants) as u64 } else { domains.len() as u64 });
    Page { domains, more, count, bytes }
}

/// Who is calling, as the connection's listener stamped it (`connections`). A request that came
/// some other way is treated as an anonymous reader: it can never do more than one stamped.
fn caller<T>(request: &Request<T>) -> Arc<Caller> {
    request.extensions().get::<Arc<Caller>>().cloned().unwrap_or_else(|| {
        let address = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        Arc::new(Caller { identity: Identity::Anonymous { address }, access: Access::ReadOnly })
    })
}

type Reply<T> = Result<Response<T>, Status>;
type ChangeReply = Reply<v1::DomainChangeResponse>;

impl Service {
    /// Serves `domains`, cutting listings into pages that fit `max_message_bytes` on `pool`,
    /// holding unread answers within `budget`.
    pub fn new(
        domains: Arc<Domains>,
        max_message_bytes: usize,
        pool: WorkPool,
        budget: ByteBudget,
        (watch, stall_timeout_ms): (WatchConfig, u64),
        stopping: tokio_util::sync::CancellationToken,
    ) -> Self {
        let (tokens, retained) = (Arc::new(TokenCodec::new()), Arc::new(RetainedViews::default()));
        let watchers = Arc::new(watch::Watchers::new(watch.max_watchers));
        Service {
            domains,
            tokens,
            retained,
            max_message_bytes,
            pool,
            budget,
            watchers,
            watch,
            stall_timeout_ms,
            stopping,
        }
    }

    /// The answer to a mutating call, with the incarnation its generation belongs to.
    fn change(&self, committed: crate::registry::Committed) -> v1::DomainChangeResponse {
        convert::change(committed, self.domains.history().incarnation())
    }

    async fn operate(&self, caller: &Arc<Caller>, uuid: &str, op: Op) -> ChangeReply {
        let uuid = convert::uuid(uuid)?;
        Ok(Response::new(self.change(self.domains.operate_as(caller, uuid, op).await?)))
    }

    /// Parses a domain definition; a large one on the work pool, off the async workers.
    async fn parse_def(&self, xml: String) -> Result<crate::xml::DomainDef, Error> {
        if xml.len() <= INLINE_PARSE_LIMIT {
            return self.domains.parse_def(&xml);
        }
        let domains = self.domains.clone();
        self.pool.run(move || domains.parse_def(&xml)).await?
    }

    /// Snapshot or checkpoint creation; a large document parsed on the work pool.
    async fn create_moment(
        &self,
        caller: &Arc<Caller>,
        (uuid, xml, moment_flags): (String, String, u32),
        snapshot: bool,
    ) -> ChangeReply {
        let uuid = convert::uuid(&uuid)?;
        let op = if xml.len() <= INLINE_PARSE_LIMIT {
            Domains::moment_op(&xml, moment_flags, snapshot)?
        } else {
            self.pool.run(move || Domains::moment_op(&xml, moment_flags, snapshot)).await??
        };
        Ok(Response::new(self.change(self.domains.operate_as(caller, uuid, op).await?)))
    }

    /// The domain `uuid` names, if the caller of `request` may see it; a hidden one is missing.
    fn domain(&self, caller: &Arc<Caller>, uuid: &str) -> Result<Arc<crate::domain::Domain>, Error> {
        let uuid = convert::uuid(uuid)?;
        let (view, grants) = (self.domains.view(), self.domains.grants(caller));
        grants.visible(view.get(&uuid), DomainRef::Uuid(uuid)).cloned()
    }

    /// SnapshotCreateXML with REDEFINE (and CURRENT), checked as libvirt's public API does:
    /// CURRENT needs REDEFINE, which excludes HALT and NO_METADATA.
    async fn redefine_snapshot(
        &self,
        caller: &Arc<Caller>,
        request: v1::DomainSnapshotCreateXmlRequest,
    ) -> ChangeReply {
        let create_flags = request.flags;
        requires_flag(
            create_flags,
            (flags::SNAPSHOT_CREATE_CURRENT, "VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT"),
            (flags::SNAPSHOT_CREATE_REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE"),
        )?;
        let redefine = (flags::SNAPSHOT_CREATE_REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE");
        exclusive_flags(
            create_flags,
            redefine,
            (flags::SNAPSHOT_CREATE_NO_METADATA, "VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA"),
        )?;
        exclusive_flags(
            create_flags,
            redefine,
            (flags::SNAPSHOT_CREATE_HALT, "VIR_DOMAIN_SNAPSHOT_CREATE_HALT"),
        )?;
        Error::check_flags(
            create_flags,
            flags::SNAPSHOT_CREATE_ALL | flags::SNAPSHOT_CREATE_REDEFINE | flags::SNAPSHOT_CREATE_CURRENT,
            "virDomainSnapshotCreateXML",
        )?;
        let uuid = convert::uuid(&request.uuid)?;
        let xml = request.xml;
        let def = if xml.len() <= INLINE_PARSE_LIMIT {
            MomentDef::parse(&xml, "domainsnapshot")?
        } else {
            self.pool.run(move || MomentDef::parse(&xml, "domainsnapshot")).await??
        };
        Ok(Response::new(
            self.change(
                self.domains.operate_as(caller, uuid, Op::SnapshotRedefine(def, create_flags)).await?,
            ),
        ))
    }
}

/// libvirt's virCheckExclusiveFlags: `a` and `b` (bit and libvirt name) not both.
fn exclusive_flags(value: u32, (a, a_name): (u32, &str), (b, b_name): (u32, &str)) -> Result<(), Error> {
    if value & a != 0 && value & b != 0 {
        return Err(Error::InvalidArg(format!("Flags '{a_name}' and '{b_name}' are mutually exclusive")));
    }
    Ok(())
}

/// libvirt's VIR_REQUIRE_FLAG_RET: `flag` only with `required` (bit and libvirt name each).
fn requires_flag(
    value: u32,
    (flag, flag_name): (u32, &str),
    (required, required_name): (u32, &str),
) -> Result<(), Error> {
    if value & flag != 0 && value & required == 0 {
        return Err(Error::InvalidArg(format!("Flag '{required_name}' is required by flag '{flag_name}'")));
    }
    Ok(())
}

/// libvirt's public API refuses CHILDREN with CHILDREN_ONLY (virCheckExclusiveFlags); `kind` is
/// SNAPSHOT or CHECKPOINT, for libvirt's message.
fn exclusive_children_flags(delete_flags: u32, kind: &str) -> Result<(), Error> {
    let both = flags::MOMENT_DELETE_CHILDREN | flags::MOMENT_DELETE_CHILDREN_ONLY;
    if delete_flags & both == both {
        return Err(Error::InvalidArg(format!(
            "Flags 'VIR_DOMAIN_{kind}_DELETE_CHILDREN' and 'VIR_DOMAIN_{kind}_DELETE_CHILDREN_ONLY' are mutually exclusive"
        )));
    }
    Ok(())
}

fn reply<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

#[tonic::async_trait]
impl DomainService for Service {
    type WatchDomainEventsStream = watch::WatchEvents;

    async fn watch_domain_events(
        &self,
        request: Request<v1::WatchDomainEventsRequest>,
    ) -> Reply<Self::WatchDomainEventsStream> {
        let grants = self.domains.grants(&caller(&request));
        let request = request.into_inner();
        let filter = ListFilter::from_flags(request.flags)?;
        let bookmark_interval = match request.bookmark_interval_ms {
            0 => Duration::from_millis(self.watch.bookmark_interval_ms),
            ms if ms < 100 => {
                return Err(Error::InvalidArg(format!(
                    "bookmark_interval_ms must be at least 100, not {ms}"
                ))
                .into());
            }
            ms => Duration::from_millis(u64::from(ms)),
        };
        let start = if request.send_initial_state {
            watch::Start::Initial(self.domains.view())
        } else {
            let incarnation = self.domains.history().incarnation();
            if request.incarnation != incarnation {
                return Err(Error::OtherIncarnation(format!(
                    "generation {} belongs to incarnation {:016x}, not this daemon's {incarnation:016x} (it restarted); list again",
                    request.after_generation, request.incarnation
                ))
                .into());
            }
            // A listing at the reload's own generation may have been filtered by either policy:
            // after a reload, resuming from it is refused too (the client lists again).
            if grants.epoch() > 0 && request.after_generation <= grants.since_generation() {
                return Err(Error::PolicyChanged(format!(
                    "the access policy changed at generation {}, after generation {}; list again",
                    grants.since_generation(),
                    request.after_generation
                ))
                .into());
            }
            watch::Start::After(request.after_generation)
        };
        let timing =
            watch::Timing { bookmark_interval, stall_timeout: Duration::from_millis(self.stall_timeout_ms) };
        let stopping = self.stopping.clone();
        let stream = watch::WatchEvents::open(
            &self.watchers,
            self.domains.clone(),
            filter,
            start,
            timing,
            grants,
            stopping,
        )?;
        Ok(Response::new(stream))
    }

    async fn list_all_domains(
        &self,
        request: Request<v1::ListAllDomainsRequest>,
    ) -> Reply<v1::ListAllDomainsResponse> {
        let grants = self.domains.grants(&caller(&request));
        let caller = grants.caller().token_key();
        let request = request.into_inner();
        let filter = ListFilter::from_flags(request.flags)?;
        if request.count_only {
            let view = self.domains.view();
            let count = view.count(&filter, &grants) as u64;
            return reply(v1::ListAllDomainsResponse {
                count,
                generation: view.generation,
                incarnation: self.domains.history().incarnation(),
                ..Default::default()
            });
        }
        // One view: every domain as of one generation, the registry lock held only to clone its
        // Arc. Later pages come from the same view, retained, so they add up to one snapshot.
        let (view, after, known_count) = if request.page_token.is_empty() {
            (self.domains.view(), None, None)
        } else {
            let token = self.tokens.decode(&request.page_token)?;
            if token.flags != request.flags {
                let message =
                    format!("page_token was issued for flags {:#x}, not {:#x}", token.flags, request.flags);
                return Err(Error::InvalidArg(message).into());
            }
            if token.caller != caller {
                return Err(Error::InvalidArg("page_token was issued to another caller".into()).into());
            }
            if token.policy_epoch != grants.epoch() {
                return Err(Error::PageExpired(
                    "the access policy changed since the first page; list again from the first page".into(),
                )
                .into());
            }
            let view = self.retained.get(token.generation).ok_or_else(|| {
                Error::PageExpired(format!(
                    "the snapshot of generation {} is no longer retained; list again from the first page",
                    token.generation
                ))
            })?;
            (view, Some(token.after), Some(token.count))
        };
        let max_count = match request.page_size {
            0 => MAX_PAGE_SIZE,
            size => (size as usize).min(MAX_PAGE_SIZE),
        };
        let budget = self.max_message_bytes.saturating_sub(MESSAGE_MARGIN_BYTES);
        // Reserve the answer's memory before building it: held twice until sent (as messages,
        // then encoded), at most a whole message; what the page does not use is given back.
        let estimate = view.len().min(max_count).saturating_mul(ESTIMATED_ENTRY_BYTES).min(budget);
        let mut reservation = self.budget.reserve(2 * estimate)?;
        // Cutting a large page is milliseconds of CPU with no await in it: on the work pool's
        // low-priority threads, so the async workers stay free to take short calls meanwhile.
        let page = if view.len() > INLINE_PAGE_LIMIT {
            let (view, grants) = (view.clone(), grants.clone());
            self.pool
                .run(move || page(&view, (&filter, &grants), after, max_count, budget, known_count))
                .await?
        } else {
            page(&view, (&filter, &grants), after, max_count, budget, known_count)
        };
        reservation.fit_to(2 * page.bytes, &self.budget)?;
        let Page { domains, more, count, .. } = page;
        let next_page_token = match (more, domains.last()) {
            (true, Some(last)) => {
                self.retained.retain(&view);
                let after = uuid::Uuid::from_u64_pair(last.uuid_high, last.uuid_low);
                let (generation, flags, policy_epoch) = (view.generation, request.flags, grants.epoch());
                let token = PageToken { generation, after, flags, caller, count, policy_epoch };
                self.tokens.encode(&token)
            }
            _ => String::new(),
        };
        let mut response = Response::new(v1::ListAllDomainsResponse {
            domains,
            count,
            generation: view.generation,
            next_page_token,
            incarnation: self.domains.history().incarnation(),
        });
        response.extensions_mut().insert(budget::Held::new(reservation));
        Ok(response)
    }

    async fn num_of_domains(
        &self,
        request: Request<v1::NumOfDomainsRequest>,
    ) -> Reply<v1::NumOfDomainsResponse> {
        let grants = self.domains.grants(&caller(&request));
        reply(v1::NumOfDomainsResponse { count: self.domains.view().num_active(&grants) as u32 })
    }

    async fn list_domains(&self, request: Request<v1::ListDomainsRequest>) -> Reply<v1::ListDomainsResponse> {
        let max = convert::max_count(request.get_ref().max_ids, "maxids in virConnectListDomains")?;
        let grants = self.domains.grants(&caller(&request));
        reply(v1::ListDomainsResponse { ids: self.domains.view().active_ids(max, &grants) })
    }

    async fn num_of_defined_domains(
        &self,
        request: Request<v1::NumOfDefinedDomainsRequest>,
    ) -> Reply<v1::NumOfDefinedDomainsResponse> {
        let (view, grants) = (self.domains.view(), self.domains.grants(&caller(&request)));
        let count = if grants.filters() {
            view.iter().filter(|d| !d.is_active() && grants.sees(d)).count()
        } else {
            view.len() - view.num_active(&grants)
        };
        reply(v1::NumOfDefinedDomainsResponse { count: count as u32 })
    }

    async fn list_defined_domains(
        &self,
        request: Request<v1::ListDefinedDomainsRequest>,
    ) -> Reply<v1::ListDefinedDomainsResponse> {
        let max =
            convert::max_count(request.get_ref().max_names, "maxnames in virConnectListDefinedDomains")?;
        let grants = self.domains.grants(&caller(&request));
        reply(v1::ListDefinedDomainsResponse { names: self.domains.view().inactive_names(max, &grants) })
    }

    async fn lookup_domain_by_id(
        &self,
        request: Request<v1::LookupDomainByIdRequest>,
    ) -> Reply<v1::LookupDomainResponse> {
        let id = request.get_ref().id;
        if id < 0 {
            return Err(Error::InvalidArg("id in virDomainLookupByID must be zero or greater".into()).into());
        }
        let (view, grants) = (self.domains.view(), self.domains.grants(&caller(&request)));
        let domain = grants.visible(view.by_id(id), DomainRef::Id(id))?;
        reply(v1::LookupDomainResponse { domain: Some(convert::handle(domain)) })
    }

    async fn lookup_domain_by_name(
        &self,
        request: Request<v1::LookupDomainByNameRequest>,
    ) -> Reply<v1::LookupDomainResponse> {
        let name = convert::name(&request.get_ref().name)?;
        let (view, grants) = (self.domains.view(), self.domains.grants(&caller(&request)));
        let domain = grants.visible(view.by_name(name), DomainRef::Name(name.to_owned()))?;
        reply(v1::LookupDomainResponse { domain: Some(convert::handle(domain)) })
    }

    async fn lookup_domain_by_uuid(
        &self,
        request: Request<v1::LookupDomainByUuidRequest>,
    ) -> Reply<v1::LookupDomainResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        reply(v1::LookupDomainResponse { domain: Some(convert::handle(&domain)) })
    }

    async fn domain_define_xml(&self, request: Request<v1::DomainDefineXmlRequest>) -> ChangeReply {
        let caller = caller(&request);
        let request = request.into_inner();
        let def = self.parse_def(request.xml).await?;
        reply(self.change(self.domains.define_as(&caller, def, request.flags).await?))
    }

    async fn domain_create_xml(&self, request: Request<v1::DomainCreateXmlRequest>) -> ChangeReply {
        let caller = caller(&request);
        let request = request.into_inner();
        let def = self.parse_def(request.xml).await?;
        reply(self.change(self.domains.create_as(&caller, def, request.flags).await?))
    }

    async fn domain_create(&self, request: Request<v1::DomainCreateRequest>) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, 0, "virDomainCreateWithFlags")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Start).await
    }

    async fn domain_shutdown(&self, request: Request<v1::DomainShutdownRequest>) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, 0, "virDomainShutdownFlags")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Shutdown).await
    }

    async fn domain_reboot(&self, request: Request<v1::DomainRebootRequest>) -> ChangeReply {
        let reboot_flags = request.get_ref().flags;
        Error::check_flags(reboot_flags, flags::REBOOT_ALL, "virDomainReboot")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Reboot(reboot_flags)).await
    }

    async fn domain_reset(&self, request: Request<v1::DomainResetRequest>) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, 0, "virDomainReset")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Reset).await
    }

    async fn domain_destroy(&self, request: Request<v1::DomainDestroyRequest>) -> ChangeReply {
        let destroy_flags = request.get_ref().flags;
        Error::check_flags(destroy_flags, flags::DESTROY_GRACEFUL, "virDomainDestroyFlags")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Destroy(destroy_flags)).await
    }

    async fn domain_suspend(&self, request: Request<v1::DomainSuspendRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Suspend).await
    }

    async fn domain_resume(&self, request: Request<v1::DomainResumeRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Resume).await
    }

    async fn domain_undefine(&self, request: Request<v1::DomainUndefineRequest>) -> ChangeReply {
        let undefine_flags = request.get_ref().flags;
        Error::check_flags(
            undefine_flags,
            flags::UNDEFINE_MANAGED_SAVE | flags::UNDEFINE_SNAPSHOTS_METADATA,
            "virDomainUndefineFlags",
        )?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Undefine(undefine_flags)).await
    }

    async fn domain_managed_save(&self, request: Request<v1::DomainManagedSaveRequest>) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, flags::MANAGED_SAVE_ALL, "virDomainManagedSave")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::ManagedSave).await
    }

    async fn domain_has_managed_save_image(
        &self,
        request: Request<v1::DomainHasManagedSaveImageRequest>,
    ) -> Reply<v1::DomainHasManagedSaveImageResponse> {
        Error::check_flags(request.get_ref().flags, 0, "virDomainHasManagedSaveImage")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        reply(v1::DomainHasManagedSaveImageResponse { has_managed_save: domain.has_managed_save })
    }

    async fn domain_managed_save_remove(
        &self,
        request: Request<v1::DomainManagedSaveRemoveRequest>,
    ) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, 0, "virDomainManagedSaveRemove")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::ManagedSaveRemove).await
    }

    async fn domain_set_autostart(&self, request: Request<v1::DomainSetAutostartRequest>) -> ChangeReply {
        self.operate(
            &caller(&request),
            &request.get_ref().uuid,
            Op::SetAutostart(request.get_ref().autostart),
        )
        .await
    }

    async fn domain_get_autostart(
        &self,
        request: Request<v1::DomainGetAutostartRequest>,
    ) -> Reply<v1::DomainGetAutostartResponse> {
        reply(v1::DomainGetAutostartResponse {
            autostart: self.domain(&caller(&request), &request.get_ref().uuid)?.autostart,
        })
    }

    async fn domain_pm_suspend_for_duration(
        &self,
        request: Request<v1::DomainPmSuspendForDurationRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, 0, "virDomainPMSuspendForDuration")?;
        if request.target > 2 {
            return Err(Error::InvalidArg(format!("unknown suspend target {}", request.target)).into());
        }
        if request.duration != 0 {
            // As the QEMU driver: guests cannot be told when to wake up.
            return Err(Error::InvalidArg("duration not supported, use 0".into()).into());
        }
        self.operate(&who, &request.uuid, Op::PmSuspend).await
    }

    async fn domain_pm_wakeup(&self, request: Request<v1::DomainPmWakeupRequest>) -> ChangeReply {
        Error::check_flags(request.get_ref().flags, 0, "virDomainPMWakeup")?;
        self.operate(&caller(&request), &request.get_ref().uuid, Op::PmWakeup).await
    }

    async fn domain_get_state(
        &self,
        request: Request<v1::DomainGetStateRequest>,
    ) -> Reply<v1::DomainGetStateResponse> {
        Error::check_flags(request.get_ref().flags, 0, "virDomainGetState")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        reply(v1::DomainGetStateResponse { state: convert::state(domain.state), reason: domain.reason })
    }

    async fn domain_get_info(
        &self,
        request: Request<v1::DomainGetInfoRequest>,
    ) -> Reply<v1::DomainGetInfoResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let driver = self.domains.driver();
        let usage = driver.usage(&domain);
        reply(v1::DomainGetInfoResponse {
            domain: Some(convert::handle(&domain)),
            state: convert::state(domain.state),
            reason: domain.reason,
            max_memory_kib: domain.def.memory_kib,
            memory_kib: usage.memory_kib.unwrap_or(domain.def.current_memory_kib),
            vcpus: domain.def.vcpus,
            cpu_time_ns: usage.cpu_time_ns,
            os_type: driver.os_type(&domain.def),
            persistent: domain.persistent,
            autostart: domain.autostart,
            has_managed_save: domain.has_managed_save,
        })
    }

    async fn domain_get_xml_desc(
        &self,
        request: Request<v1::DomainGetXmlDescRequest>,
    ) -> Reply<v1::DomainGetXmlDescResponse> {
        let xml_flags = request.get_ref().flags;
        Error::check_flags(xml_flags, flags::XML_ALL, "virDomainGetXMLDesc")?;
        let caller = caller(&request);
        // As libvirt: secrets only when asked for, and never on a read-only connection.
        if xml_flags & flags::XML_SECURE != 0 && caller.read_only() {
            return Err(Error::ReadOnly("virDomainGetXMLDesc with secure flag".into()).into());
        }
        let domain = self.domain(&caller, &request.get_ref().uuid)?;
        let xml = if xml_flags & flags::XML_INACTIVE != 0 {
            domain.next_def.as_ref().unwrap_or(&domain.def).to_xml(None)
        } else {
            domain.def.to_xml(domain.is_active().then_some(domain.id))
        };
        let xml = if xml_flags & flags::XML_SECURE != 0 { xml } else { convert::without_secrets(xml) };
        reply(v1::DomainGetXmlDescResponse { xml })
    }

    async fn domain_is_active(
        &self,
        request: Request<v1::DomainIsActiveRequest>,
    ) -> Reply<v1::DomainIsActiveResponse> {
        reply(v1::DomainIsActiveResponse {
            active: self.domain(&caller(&request), &request.get_ref().uuid)?.is_active(),
        })
    }

    async fn domain_is_persistent(
        &self,
        request: Request<v1::DomainIsPersistentRequest>,
    ) -> Reply<v1::DomainIsPersistentResponse> {
        reply(v1::DomainIsPersistentResponse {
            persistent: self.domain(&caller(&request), &request.get_ref().uuid)?.persistent,
        })
    }

    async fn domain_snapshot_create_xml(
        &self,
        request: Request<v1::DomainSnapshotCreateXmlRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.into_inner();
        if request.flags & (flags::SNAPSHOT_CREATE_REDEFINE | flags::SNAPSHOT_CREATE_CURRENT) != 0 {
            return self.redefine_snapshot(&who, request).await;
        }
        self.create_moment(&who, (request.uuid, request.xml, request.flags), true).await
    }

    async fn domain_list_all_snapshots(
        &self,
        request: Request<v1::DomainListAllSnapshotsRequest>,
    ) -> Reply<v1::DomainListAllSnapshotsResponse> {
        let list_flags = request.get_ref().flags;
        Error::check_flags(list_flags, flags::SNAPSHOT_LIST_ALL, "virDomainListAllSnapshots")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let listed = lifecycle::list_snapshots(&domain.moments, None, list_flags)?;
        let snapshots = listed.into_iter().map(|s| convert::snapshot_of(&domain, s)).collect();
        reply(v1::DomainListAllSnapshotsResponse { snapshots })
    }

    async fn domain_snapshot_num(
        &self,
        request: Request<v1::DomainSnapshotNumRequest>,
    ) -> Reply<v1::DomainSnapshotNumResponse> {
        let list_flags = request.get_ref().flags;
        Error::check_flags(list_flags, flags::SNAPSHOT_LIST_ALL, "virDomainSnapshotNum")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let count = lifecycle::list_snapshots(&domain.moments, None, list_flags)?.len() as u32;
        reply(v1::DomainSnapshotNumResponse { count })
    }

    async fn domain_revert_to_snapshot(
        &self,
        request: Request<v1::DomainRevertToSnapshotRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        exclusive_flags(
            request.flags,
            (flags::SNAPSHOT_REVERT_RUNNING, "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING"),
            (flags::SNAPSHOT_REVERT_PAUSED, "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"),
        )?;
        Error::check_flags(request.flags, flags::SNAPSHOT_REVERT_ALL, "virDomainRevertToSnapshot")?;
        let name = convert::moment_name(&request.name)?;
        self.operate(&who, &request.uuid, Op::SnapshotRevert(name.to_owned(), request.flags)).await
    }

    async fn domain_snapshot_lookup_by_name(
        &self,
        request: Request<v1::DomainSnapshotLookupByNameRequest>,
    ) -> Reply<v1::DomainSnapshotLookupByNameResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, 0, "virDomainSnapshotLookupByName")?;
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot = lifecycle::find_snapshot(&domain.moments, convert::moment_name(&request.name)?)?;
        reply(v1::DomainSnapshotLookupByNameResponse {
            snapshot: Some(convert::snapshot_of(&domain, snapshot)),
        })
    }

    async fn domain_snapshot_current(
        &self,
        request: Request<v1::DomainSnapshotCurrentRequest>,
    ) -> Reply<v1::DomainSnapshotCurrentResponse> {
        Error::check_flags(request.get_ref().flags, 0, "virDomainSnapshotCurrent")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let current =
            domain.moments.current_snapshot.as_deref().ok_or_else(|| {
                Error::NoRelatedSnapshot("the domain does not have a current snapshot".into())
            })?;
        let snapshot = lifecycle::find_snapshot(&domain.moments, current)?;
        reply(v1::DomainSnapshotCurrentResponse { snapshot: Some(convert::snapshot_of(&domain, snapshot)) })
    }

    async fn domain_has_current_snapshot(
        &self,
        request: Request<v1::DomainHasCurrentSnapshotRequest>,
    ) -> Reply<v1::DomainHasCurrentSnapshotResponse> {
        Error::check_flags(request.get_ref().flags, 0, "virDomainHasCurrentSnapshot")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let has_current_snapshot = domain.moments.current_snapshot.is_some();
        reply(v1::DomainHasCurrentSnapshotResponse { has_current_snapshot })
    }

    async fn domain_snapshot_get_xml_desc(
        &self,
        request: Request<v1::DomainSnapshotGetXmlDescRequest>,
    ) -> Reply<v1::DomainSnapshotGetXmlDescResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, flags::SNAPSHOT_XML_SECURE, "virDomainSnapshotGetXMLDesc")?;
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot = lifecycle::find_snapshot(&domain.moments, convert::moment_name(&request.name)?)?;
        reply(v1::DomainSnapshotGetXmlDescResponse { xml: convert::snapshot_xml(&domain, snapshot) })
    }

    async fn domain_snapshot_get_parent(
        &self,
        request: Request<v1::DomainSnapshotGetParentRequest>,
    ) -> Reply<v1::DomainSnapshotGetParentResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, 0, "virDomainSnapshotGetParent")?;
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot = lifecycle::find_snapshot(&domain.moments, convert::moment_name(&request.name)?)?;
        let parent = snapshot.parent.as_deref().ok_or_else(|| {
            Error::NoRelatedSnapshot(format!("snapshot '{}' does not have a parent", snapshot.name))
        })?;
        let parent = lifecycle::find_snapshot(&domain.moments, parent)?;
        reply(v1::DomainSnapshotGetParentResponse { snapshot: Some(convert::snapshot_of(&domain, parent)) })
    }

    async fn domain_snapshot_is_current(
        &self,
        request: Request<v1::DomainSnapshotIsCurrentRequest>,
    ) -> Reply<v1::DomainSnapshotIsCurrentResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, 0, "virDomainSnapshotIsCurrent")?;
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot = lifecycle::find_snapshot(&domain.moments, convert::moment_name(&request.name)?)?;
        let current = domain.moments.current_snapshot.as_deref() == Some(snapshot.name.as_str());
        reply(v1::DomainSnapshotIsCurrentResponse { current })
    }

    async fn domain_snapshot_has_metadata(
        &self,
        request: Request<v1::DomainSnapshotHasMetadataRequest>,
    ) -> Reply<v1::DomainSnapshotHasMetadataResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, 0, "virDomainSnapshotHasMetadata")?;
        let domain = self.domain(&who, &request.uuid)?;
        lifecycle::find_snapshot(&domain.moments, convert::moment_name(&request.name)?)?;
        // Every snapshot rvirt knows is known through its metadata.
        reply(v1::DomainSnapshotHasMetadataResponse { has_metadata: true })
    }

    async fn domain_snapshot_list_all_children(
        &self,
        request: Request<v1::DomainSnapshotListAllChildrenRequest>,
    ) -> Reply<v1::DomainSnapshotListAllChildrenResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, flags::SNAPSHOT_LIST_ALL, "virDomainSnapshotListAllChildren")?;
        let domain = self.domain(&who, &request.uuid)?;
        let name = convert::moment_name(&request.name)?;
        let listed = lifecycle::list_snapshots(&domain.moments, Some(name), request.flags)?;
        let snapshots = listed.into_iter().map(|s| convert::snapshot_of(&domain, s)).collect();
        reply(v1::DomainSnapshotListAllChildrenResponse { snapshots })
    }

    async fn domain_snapshot_num_children(
        &self,
        request: Request<v1::DomainSnapshotNumChildrenRequest>,
    ) -> Reply<v1::DomainSnapshotNumChildrenResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, flags::SNAPSHOT_LIST_ALL, "virDomainSnapshotNumChildren")?;
        let domain = self.domain(&who, &request.uuid)?;
        let name = convert::moment_name(&request.name)?;
        let count = lifecycle::list_snapshots(&domain.moments, Some(name), request.flags)?.len() as u32;
        reply(v1::DomainSnapshotNumChildrenResponse { count })
    }

    async fn domain_snapshot_delete(&self, request: Request<v1::DomainSnapshotDeleteRequest>) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, flags::SNAPSHOT_DELETE_ALL, "virDomainSnapshotDelete")?;
        exclusive_children_flags(request.flags, "SNAPSHOT")?;
        let name = convert::moment_name(&request.name)?;
        self.operate(&who, &request.uuid, Op::SnapshotDelete(name.to_owned(), request.flags)).await
    }

    async fn domain_checkpoint_create_xml(
        &self,
        request: Request<v1::DomainCheckpointCreateXmlRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.into_inner();
        self.create_moment(&who, (request.uuid, request.xml, request.flags), false).await
    }

    async fn domain_list_all_checkpoints(
        &self,
        request: Request<v1::DomainListAllCheckpointsRequest>,
    ) -> Reply<v1::DomainListAllCheckpointsResponse> {
        Error::check_flags(request.get_ref().flags, 0, "virDomainListAllCheckpoints")?;
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        reply(v1::DomainListAllCheckpointsResponse {
            checkpoints: domain.moments.checkpoints.iter().map(convert::checkpoint).collect(),
        })
    }

    async fn domain_checkpoint_delete(
        &self,
        request: Request<v1::DomainCheckpointDeleteRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        Error::check_flags(request.flags, flags::CHECKPOINT_DELETE_ALL, "virDomainCheckpointDelete")?;
        exclusive_children_flags(request.flags, "CHECKPOINT")?;
        let name = convert::moment_name(&request.name)?;
        self.operate(&who, &request.uuid, Op::CheckpointDelete(name.to_owned(), request.flags)).await
    }
}
