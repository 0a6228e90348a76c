//! The rvirt.v1 `DomainService`: validates and converts each request, calls `Domains`, converts
//! the answer. The only module that knows prost; it holds no domain state of its own.

pub mod budget;
pub mod convert;
pub mod guard;
pub mod status;
pub mod trace;
pub mod watch;

use crate::access::Grants;
use crate::api;
use crate::caller::{Access, Caller, Identity};
use crate::config::WatchConfig;
use crate::domains::Domains;
use crate::error::{DomainRef, Error};
use crate::filter::ListFilter;
use crate::lifecycle::{Op, flags};
use crate::paging::{PageToken, RetainedViews, TokenCodec};
use crate::pool::WorkPool;
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
pub(crate) const INLINE_PARSE_LIMIT: usize = 16 << 10;

/// Views up to this size are listed on the async worker itself (cut into pages here, encoded
/// whole for libvirt's protocol); larger ones on the work pool.
pub(crate) const INLINE_LISTING_LIMIT: usize = 2_000;

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
        let build = move |xml: &str| {
            if snapshot {
                api::snapshot_create(xml, moment_flags)
            } else {
                api::checkpoint_create(xml, moment_flags)
            }
        };
        let op = if xml.len() <= INLINE_PARSE_LIMIT {
            build(&xml)?
        } else {
            self.pool.run(move || build(&xml)).await??
        };
        Ok(Response::new(self.change(self.domains.operate_as(caller, uuid, op).await?)))
    }

    /// The domain `uuid` names, if the caller of `request` may see it; a hidden one is missing.
    fn domain(&self, caller: &Arc<Caller>, uuid: &str) -> Result<Arc<crate::domain::Domain>, Error> {
        let uuid = convert::uuid(uuid)?;
        let (view, grants) = (self.domains.view(), self.domains.grants(caller));
        grants.visible(view.get(&uuid), DomainRef::Uuid(uuid)).cloned()
    }
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
        let page = if view.len() > INLINE_LISTING_LIMIT {
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
        let max = api::max_count(request.get_ref().max_ids, "maxids in virConnectListDomains")?;
        let grants = self.domains.grants(&caller(&request));
        reply(v1::ListDomainsResponse { ids: self.domains.view().active_ids(max, &grants) })
    }

    async fn num_of_defined_domains(
        &self,
        request: Request<v1::NumOfDefinedDomainsRequest>,
    ) -> Reply<v1::NumOfDefinedDomainsResponse> {
        let (view, grants) = (self.domains.view(), self.domains.grants(&caller(&request)));
        let count = view.num_inactive(&grants);
        reply(v1::NumOfDefinedDomainsResponse { count: count as u32 })
    }

    async fn list_defined_domains(
        &self,
        request: Request<v1::ListDefinedDomainsRequest>,
    ) -> Reply<v1::ListDefinedDomainsResponse> {
        let max = api::max_count(request.get_ref().max_names, "maxnames in virConnectListDefinedDomains")?;
        let grants = self.domains.grants(&caller(&request));
        reply(v1::ListDefinedDomainsResponse { names: self.domains.view().inactive_names(max, &grants) })
    }

    async fn lookup_domain_by_id(
        &self,
        request: Request<v1::LookupDomainByIdRequest>,
    ) -> Reply<v1::LookupDomainResponse> {
        let id = api::id(request.get_ref().id)?;
        let (view, grants) = (self.domains.view(), self.domains.grants(&caller(&request)));
        let domain = grants.visible(view.by_id(id), DomainRef::Id(id))?;
        reply(v1::LookupDomainResponse { domain: Some(convert::handle(domain)) })
    }

    async fn lookup_domain_by_name(
        &self,
        request: Request<v1::LookupDomainByNameRequest>,
    ) -> Reply<v1::LookupDomainResponse> {
        let name = api::name(&request.get_ref().name)?;
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
        self.operate(&caller(&request), &request.get_ref().uuid, api::start(request.get_ref().flags)?).await
    }

    async fn domain_shutdown(&self, request: Request<v1::DomainShutdownRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::shutdown(request.get_ref().flags)?)
            .await
    }

    async fn domain_reboot(&self, request: Request<v1::DomainRebootRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::reboot(request.get_ref().flags)?).await
    }

    async fn domain_reset(&self, request: Request<v1::DomainResetRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::reset(request.get_ref().flags)?).await
    }

    async fn domain_destroy(&self, request: Request<v1::DomainDestroyRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::destroy(request.get_ref().flags)?).await
    }

    async fn domain_suspend(&self, request: Request<v1::DomainSuspendRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Suspend).await
    }

    async fn domain_resume(&self, request: Request<v1::DomainResumeRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, Op::Resume).await
    }

    async fn domain_undefine(&self, request: Request<v1::DomainUndefineRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::undefine(request.get_ref().flags)?)
            .await
    }

    async fn domain_managed_save(&self, request: Request<v1::DomainManagedSaveRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::managed_save(request.get_ref().flags)?)
            .await
    }

    async fn domain_has_managed_save_image(
        &self,
        request: Request<v1::DomainHasManagedSaveImageRequest>,
    ) -> Reply<v1::DomainHasManagedSaveImageResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let has_managed_save = api::has_managed_save(&domain, request.get_ref().flags)?;
        reply(v1::DomainHasManagedSaveImageResponse { has_managed_save })
    }

    async fn domain_managed_save_remove(
        &self,
        request: Request<v1::DomainManagedSaveRemoveRequest>,
    ) -> ChangeReply {
        self.operate(
            &caller(&request),
            &request.get_ref().uuid,
            api::managed_save_remove(request.get_ref().flags)?,
        )
        .await
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
        let op = api::pm_suspend(request.target, request.duration, request.flags)?;
        self.operate(&who, &request.uuid, op).await
    }

    async fn domain_pm_wakeup(&self, request: Request<v1::DomainPmWakeupRequest>) -> ChangeReply {
        self.operate(&caller(&request), &request.get_ref().uuid, api::pm_wakeup(request.get_ref().flags)?)
            .await
    }

    async fn domain_get_state(
        &self,
        request: Request<v1::DomainGetStateRequest>,
    ) -> Reply<v1::DomainGetStateResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let (state, reason) = api::state(&domain, request.get_ref().flags)?;
        reply(v1::DomainGetStateResponse { state: convert::state(state), reason })
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
        let caller = caller(&request);
        let xml_flags = request.get_ref().flags;
        api::xml_desc_flags(xml_flags, caller.read_only())?;
        let domain = self.domain(&caller, &request.get_ref().uuid)?;
        let xml = api::xml_desc(&domain, xml_flags);
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
        self.create_moment(&who, (request.uuid, request.xml, request.flags), true).await
    }

    async fn domain_list_all_snapshots(
        &self,
        request: Request<v1::DomainListAllSnapshotsRequest>,
    ) -> Reply<v1::DomainListAllSnapshotsResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let listed = api::snapshots(&domain, None, request.get_ref().flags, "virDomainListAllSnapshots")?;
        let snapshots = listed.into_iter().map(|s| convert::snapshot_of(&domain, s)).collect();
        reply(v1::DomainListAllSnapshotsResponse { snapshots })
    }

    async fn domain_snapshot_num(
        &self,
        request: Request<v1::DomainSnapshotNumRequest>,
    ) -> Reply<v1::DomainSnapshotNumResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let count =
            api::snapshots(&domain, None, request.get_ref().flags, "virDomainSnapshotNum")?.len() as u32;
        reply(v1::DomainSnapshotNumResponse { count })
    }

    async fn domain_revert_to_snapshot(
        &self,
        request: Request<v1::DomainRevertToSnapshotRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        self.operate(&who, &request.uuid, api::snapshot_revert(&request.name, request.flags)?).await
    }

    async fn domain_snapshot_lookup_by_name(
        &self,
        request: Request<v1::DomainSnapshotLookupByNameRequest>,
    ) -> Reply<v1::DomainSnapshotLookupByNameResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot =
            api::snapshot(&domain, &request.name, (request.flags, 0, "virDomainSnapshotLookupByName"))?;
        reply(v1::DomainSnapshotLookupByNameResponse {
            snapshot: Some(convert::snapshot_of(&domain, snapshot)),
        })
    }

    async fn domain_snapshot_current(
        &self,
        request: Request<v1::DomainSnapshotCurrentRequest>,
    ) -> Reply<v1::DomainSnapshotCurrentResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let snapshot = api::snapshot_current(&domain, request.get_ref().flags)?;
        reply(v1::DomainSnapshotCurrentResponse { snapshot: Some(convert::snapshot_of(&domain, snapshot)) })
    }

    async fn domain_has_current_snapshot(
        &self,
        request: Request<v1::DomainHasCurrentSnapshotRequest>,
    ) -> Reply<v1::DomainHasCurrentSnapshotResponse> {
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let has_current_snapshot = api::has_current_snapshot(&domain, request.get_ref().flags)?;
        reply(v1::DomainHasCurrentSnapshotResponse { has_current_snapshot })
    }

    async fn domain_snapshot_get_xml_desc(
        &self,
        request: Request<v1::DomainSnapshotGetXmlDescRequest>,
    ) -> Reply<v1::DomainSnapshotGetXmlDescResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let (function, secure) =
            ("virDomainSnapshotGetXMLDesc", request.flags & flags::SNAPSHOT_XML_SECURE != 0);
        api::secure_flag(secure, who.read_only(), function)?;
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot =
            api::snapshot(&domain, &request.name, (request.flags, flags::SNAPSHOT_XML_SECURE, function))?;
        reply(v1::DomainSnapshotGetXmlDescResponse { xml: api::snapshot_xml(&domain, snapshot, secure) })
    }

    async fn domain_snapshot_get_parent(
        &self,
        request: Request<v1::DomainSnapshotGetParentRequest>,
    ) -> Reply<v1::DomainSnapshotGetParentResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        let parent = api::snapshot_parent(&domain, &request.name, request.flags)?;
        reply(v1::DomainSnapshotGetParentResponse { snapshot: Some(convert::snapshot_of(&domain, parent)) })
    }

    async fn domain_snapshot_is_current(
        &self,
        request: Request<v1::DomainSnapshotIsCurrentRequest>,
    ) -> Reply<v1::DomainSnapshotIsCurrentResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        let snapshot =
            api::snapshot(&domain, &request.name, (request.flags, 0, "virDomainSnapshotIsCurrent"))?;
        let current = api::is_current(&domain, snapshot);
        reply(v1::DomainSnapshotIsCurrentResponse { current })
    }

    async fn domain_snapshot_has_metadata(
        &self,
        request: Request<v1::DomainSnapshotHasMetadataRequest>,
    ) -> Reply<v1::DomainSnapshotHasMetadataResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        api::snapshot(&domain, &request.name, (request.flags, 0, "virDomainSnapshotHasMetadata"))?;
        // Every snapshot rvirt knows is known through its metadata.
        reply(v1::DomainSnapshotHasMetadataResponse { has_metadata: true })
    }

    async fn domain_snapshot_list_all_children(
        &self,
        request: Request<v1::DomainSnapshotListAllChildrenRequest>,
    ) -> Reply<v1::DomainSnapshotListAllChildrenResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        let function = "virDomainSnapshotListAllChildren";
        let listed = api::snapshots(&domain, Some(&request.name), request.flags, function)?;
        let snapshots = listed.into_iter().map(|s| convert::snapshot_of(&domain, s)).collect();
        reply(v1::DomainSnapshotListAllChildrenResponse { snapshots })
    }

    async fn domain_snapshot_num_children(
        &self,
        request: Request<v1::DomainSnapshotNumChildrenRequest>,
    ) -> Reply<v1::DomainSnapshotNumChildrenResponse> {
        let who = caller(&request);
        let request = request.get_ref();
        let domain = self.domain(&who, &request.uuid)?;
        let function = "virDomainSnapshotNumChildren";
        let count = api::snapshots(&domain, Some(&request.name), request.flags, function)?.len() as u32;
        reply(v1::DomainSnapshotNumChildrenResponse { count })
    }

    async fn domain_snapshot_delete(&self, request: Request<v1::DomainSnapshotDeleteRequest>) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        self.operate(&who, &request.uuid, api::snapshot_delete(&request.name, request.flags)?).await
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
        let domain = self.domain(&caller(&request), &request.get_ref().uuid)?;
        let checkpoints = api::checkpoints(&domain, request.get_ref().flags)?;
        reply(v1::DomainListAllCheckpointsResponse {
            checkpoints: checkpoints.iter().map(convert::checkpoint).collect(),
        })
    }

    async fn domain_checkpoint_delete(
        &self,
        request: Request<v1::DomainCheckpointDeleteRequest>,
    ) -> ChangeReply {
        let who = caller(&request);
        let request = request.get_ref();
        self.operate(&who, &request.uuid, api::checkpoint_delete(&request.name, request.flags)?).await
    }
}
