//! `Domains`: every domain operation, run as a job.
//!
//! A job on a domain runs in a task of its own, so it finishes whatever its caller does (a
//! client that cancels or misses its deadline only stops waiting). It holds the domain's job
//! lock (an async mutex, so a slow hypervisor call delays only that domain), reads the current
//! view, asks `lifecycle` whether the operation is allowed and what it leaves now, lets the
//! `Driver` act, records the change with the `Store` and only then commits it to the `Registry`
//! as one generation. Defines and creates first *claim* their name and UUID (a short std lock,
//! never held across an await), so two of them never take the same name at once while one slow
//! boot blocks no other define. What the hypervisor does later on its own arrives as a
//! `DriverEvent`, which `apply_event` runs as a job like any other. Reads need no job: they
//! answer from one view.

use crate::access::{Authority, Grants};
use crate::caller::Caller;
use crate::counters::Counters;
use crate::domain::Domain;
use crate::driver::{Driver, DriverEvent};
use crate::error::{DomainRef, Error, Result};
use crate::lifecycle::{self, Change, Op, flags};
use crate::policy::Rights;
use crate::registry::{Committed, Registry, View};
use crate::store::Store;
use crate::xml::DomainDef;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// The domain operations of one daemon.
#[derive(Debug)]
pub struct Domains {
    registry: Registry,
    driver: Arc<dyn Driver>,
    store: Store,
    counters: Counters,
    /// Who may do what; asked inside each job.
    authority: Arc<Authority>,
    jobs: JobLocks,
    /// Names and UUIDs that defines and creates in flight have claimed.
    claims: Arc<Mutex<Claims>>,
    /// Every job task, so a stopping daemon can wait for them.
    tasks: TaskTracker,
}

/// One async mutex per domain that has a job running or waiting.
#[derive(Debug, Default)]
struct JobLocks {
    /// A std lock: held only to look up or insert an entry, never across an await.
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// A held job lock.
struct Job {
    uuid: Uuid,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: OwnedMutexGuard<()>,
}

impl JobLocks {
    async fn acquire(&self, uuid: Uuid) -> Job {
        loop {
            let lock = self.lock_table().entry(uuid).or_default().clone();
            let guard = lock.clone().lock_owned().await;
            // The entry may have been retired (domain removed) while we waited: then start over
            // with the current one, or two jobs could run on one domain.
            if self.lock_table().get(&uuid).is_some_and(|current| Arc::ptr_eq(current, &lock)) {
                return Job { uuid, lock, _guard: guard };
            }
        }
    }

    /// Ends a job; the entry is retired when the domain no longer exists.
    fn release(&self, job: Job, exists: bool) {
        if !exists {
            let mut table = self.lock_table();
            if table.get(&job.uuid).is_some_and(|current| Arc::ptr_eq(current, &job.lock)) {
                table.remove(&job.uuid);
            }
        }
    }

    fn lock_table(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        self.locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The names and UUIDs of defines and creates in flight, each with how many hold it.
#[derive(Debug, Default)]
struct Claims {
    names: HashMap<Arc<str>, (Uuid, usize)>,
    uuids: HashMap<Uuid, Arc<str>>,
}

/// A held claim, released when dropped.
struct Claim {
    claims: Arc<Mutex<Claims>>,
    name: Arc<str>,
    uuid: Uuid,
}

impl Claim {
    /// Claims `name` for `uuid`: refused while another define or create in flight holds the name
    /// for another UUID or the UUID under another name. Those in flight for the same domain share
    /// the claim; its job lock orders them.
    fn take(claims: &Arc<Mutex<Claims>>, name: Arc<str>, uuid: Uuid) -> Result<Claim> {
        let mut table = claims.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&(holder, _)) = table.names.get(&name)
            && holder != uuid
        {
            return Err(Error::NameTaken { name: name.to_string(), uuid: holder });
        }
        if let Some(held) = table.uuids.get(&uuid)
            && *held != name
        {
            return Err(Error::UuidTaken { name: held.to_string(), uuid });
        }
        table.names.entry(name.clone()).or_insert((uuid, 0)).1 += 1;
        table.uuids.insert(uuid, name.clone());
        Ok(Claim { claims: claims.clone(), name, uuid })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut table = self.claims.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = table.names.get_mut(&self.name) {
            entry.1 -= 1;
            if entry.1 == 0 {
                table.names.remove(&self.name);
                table.uuids.remove(&self.uuid);
            }
        }
    }
}

impl Domains {
    /// Operations over `registry`, acting through `driver`, recorded in `store`, allowed by
    /// `authority`.
    pub fn new(
        registry: Registry,
        driver: Arc<dyn Driver>,
        store: Store,
        counters: Counters,
        authority: Arc<Authority>,
    ) -> Arc<Self> {
        Arc::new(Domains {
            registry,
            driver,
            store,
            counters,
            authority,
            jobs: JobLocks::default(),
            claims: Arc::default(),
            tasks: TaskTracker::new(),
        })
    }

    /// The current view: one consistent snapshot of every domain.
    pub fn view(&self) -> Arc<View> {
        self.registry.view()
    }

    /// The recent changes, which watchers follow.
    pub fn history(&self) -> &crate::history::History {
        self.registry.history()
    }

    /// What `caller` may see and do under the policy in force now.
    pub fn grants(&self, caller: &Arc<Caller>) -> Grants {
        self.authority.grants(caller)
    }

    /// The access policy.
    pub fn authority(&self) -> &Arc<Authority> {
        &self.authority
    }

    /// The driver.
    pub fn driver(&self) -> &dyn Driver {
        &*self.driver
    }

    /// The domain `uuid` in the current view.
    pub fn get(&self, uuid: Uuid) -> Result<Arc<Domain>> {
        self.view().get(&uuid).cloned().ok_or(Error::NoDomain(DomainRef::Uuid(uuid)))
    }

    /// virDomainDefineXMLFlags.
    pub async fn define_xml(self: &Arc<Self>, xml: &str, define_flags: u32) -> Result<Committed> {
        Error::check_flags(define_flags, flags::DEFINE_VALIDATE, "virDomainDefineXMLFlags")?;
        self.define(self.parse_def(xml)?, define_flags).await
    }

    /// A domain definition as this daemon's driver reads it and can honour (pure CPU: callers may
    /// run it off the async workers).
    pub fn parse_def(&self, xml: &str) -> Result<DomainDef> {
        let def = DomainDef::parse(xml, &self.driver.parse_defaults())?;
        self.driver.check_def(&def)?;
        Ok(def)
    }

    /// virDomainDefineXMLFlags of a definition already parsed with `parse_def`.
    pub async fn define(self: &Arc<Self>, def: DomainDef, define_flags: u32) -> Result<Committed> {
        self.define_as(&Caller::daemon(), def, define_flags).await
    }

    /// `define` for `caller`, who needs `define` on the new definition and on what it replaces.
    pub async fn define_as(
        self: &Arc<Self>,
        caller: &Arc<Caller>,
        def: DomainDef,
        define_flags: u32,
    ) -> Result<Committed> {
        Error::check_flags(define_flags, flags::DEFINE_VALIDATE, "virDomainDefineXMLFlags")?;
        self.introduce(caller, def, (Rights::DEFINE, None), lifecycle::define).await
    }

    /// A define or create by `caller`, who needs `needed` on the definition (and on what it
    /// replaces): claims its name and UUID, then decides in the job (`op`: a start) with hidden
    /// domains treated as absent.
    async fn introduce(
        self: &Arc<Self>,
        caller: &Arc<Caller>,
        def: DomainDef,
        (needed, op): (Rights, Option<Op>),
        decide: fn(DomainDef, Option<&Domain>, Option<&Domain>) -> Result<Change>,
    ) -> Result<Committed> {
        let claim = self.claim(caller, &def, needed)?;
        let (uuid, authority, caller) = (def.uuid, self.authority.clone(), caller.clone());
        self.job(uuid, op, Some(claim), move |view| {
            let (by_uuid, by_name) = (view.get(&def.uuid).cloned(), view.by_name(&def.name).cloned());
            authority.grants(&caller).decide_define(
                (&def.name, def.uuid),
                needed,
                (by_uuid.as_deref(), by_name.as_deref()),
                |by_uuid, by_name| decide(def.clone(), by_uuid, by_name),
            )
        })
        .await
    }

    /// Claims the name and UUID of `def` for a define or create by `caller`. When some domains
    /// are hidden from the caller, a claim held by another call in flight is refused as a
    /// define outside the caller's rights is, without naming the other domain.
    fn claim(&self, caller: &Arc<Caller>, def: &DomainDef, needed: Rights) -> Result<Claim> {
        let grants = self.grants(caller);
        // First what depends only on what the caller sent: a caller without the right claims
        // nothing (and holds no other define up).
        if !grants.rights_on(&def.name, def.uuid).contains(needed) {
            return Err(grants.denied(needed, &def.name));
        }
        // Differs from libvirt: libvirt names the domain in the way; a caller some domains are
        // hidden from is told only that it may not define this one.
        Claim::take(&self.claims, def.name.clone(), def.uuid)
            .map_err(|error| if grants.filters() { grants.denied(needed, &def.name) } else { error })
    }

    /// virDomainCreateXML.
    pub async fn create_xml(self: &Arc<Self>, xml: &str, create_flags: u32) -> Result<Committed> {
        Error::check_flags(create_flags, flags::CREATE_VALIDATE, "virDomainCreateXML")?;
        self.create(self.parse_def(xml)?, create_flags).await
    }

    /// virDomainCreateXML of a definition already parsed with `parse_def`. The name and UUID are
    /// claimed for the whole boot; no other define or create waits for it.
    pub async fn create(self: &Arc<Self>, def: DomainDef, create_flags: u32) -> Result<Committed> {
        self.create_as(&Caller::daemon(), def, create_flags).await
    }

    /// `create` for `caller`, who needs `define` and `lifecycle` on the new domain.
    pub async fn create_as(
        self: &Arc<Self>,
        caller: &Arc<Caller>,
        def: DomainDef,
        create_flags: u32,
    ) -> Result<Committed> {
        Error::check_flags(create_flags, flags::CREATE_VALIDATE, "virDomainCreateXML")?;
        self.introduce(caller, def, (Rights::DEFINE | Rights::LIFECYCLE, Some(Op::Start)), lifecycle::create)
            .await
    }

    /// Every operation on an existing domain, by rvirtd itself.
    pub async fn operate(self: &Arc<Self>, uuid: Uuid, op: Op) -> Result<Committed> {
        self.operate_as(&Caller::daemon(), uuid, op).await
    }

    /// Every operation on an existing domain, for `caller`: allowed or not on the view the job
    /// decides on, under the policy in force then.
    pub async fn operate_as(self: &Arc<Self>, caller: &Arc<Caller>, uuid: Uuid, op: Op) -> Result<Committed> {
        let settles = self.driver.settles(&op);
        let decided = op.clone();
        let (authority, caller) = (self.authority.clone(), caller.clone());
        self.job(uuid, Some(op), None, move |view| {
            let domain = view.get(&uuid).ok_or(Error::NoDomain(DomainRef::Uuid(uuid)))?;
            authority.grants(&caller).check(domain, &decided)?;
            lifecycle::apply(domain, &decided, settles)
        })
        .await
    }

    /// A state change the hypervisor reported on its own, applied as a change like any other:
    /// a guest that stopped leaves a transient domain removed and a persistent one shut off. An
    /// event about an earlier run, or that changes nothing, commits nothing.
    pub async fn apply_event(self: &Arc<Self>, event: DriverEvent) -> Result<Committed> {
        self.job(event.uuid, None, None, move |view| {
            let domain = view.get(&event.uuid).ok_or(Error::NoDomain(DomainRef::Uuid(event.uuid)))?;
            Ok(lifecycle::observed(domain, event.id, event.state, event.reason)
                .unwrap_or_else(|| Change::unchanged(domain)))
        })
        .await
    }

    /// At start: every domain recorded as active is found again by the driver and recorded as
    /// the driver finds it (the same, another state, or shut off if its guest is gone); then the
    /// driver removes what starts in flight at the crash left behind. Guests are looked for all
    /// at once, so one hung QEMU costs its own timeout, not everyone's.
    pub async fn reattach(self: &Arc<Self>) {
        let active: Vec<Arc<Domain>> = self.view().iter().filter(|d| d.is_active()).cloned().collect();
        let mut lookups = tokio::task::JoinSet::new();
        for domain in active {
            let driver = self.driver.clone();
            lookups.spawn(async move {
                let found = driver.reattach(&domain).await;
                (domain, found)
            });
        }
        let mut running = Vec::new();
        while let Some(joined) = lookups.join_next().await {
            let Ok((domain, found)) = joined else { continue };
            let uuid = domain.uuid();
            let change = match found {
                Ok(found) => {
                    running.push(uuid);
                    let mut next = (*domain).clone();
                    (next.state, next.reason, next.runtime) = (found.state, found.reason, found.runtime);
                    tracing::info!(domain.name = domain.name(), domain.id = domain.id, state = %next.state, "re-attached");
                    if next == *domain {
                        continue;
                    }
                    Change::update(next)
                }
                Err(gone) => {
                    tracing::warn!(
                        domain.name = domain.name(),
                        domain.id = domain.id,
                        reason = gone.reason,
                        "the guest ended while rvirtd was down"
                    );
                    match lifecycle::observed(&domain, domain.id, gone.state, gone.reason) {
                        Some(change) => change,
                        None => continue,
                    }
                }
            };
            if let Err(error) = self.job(uuid, None, None, move |_| Ok(change)).await {
                tracing::error!(domain.uuid = %uuid, %error, "could not record a re-attached domain");
            }
        }
        self.driver.sweep(&running).await;
    }

    /// Snapshot and checkpoint creation: parses the document and stamps it with the time now.
    pub async fn create_moment(
        self: &Arc<Self>,
        uuid: Uuid,
        xml: &str,
        moment_flags: u32,
        snapshot: bool,
    ) -> Result<Committed> {
        let op = if snapshot {
            crate::api::snapshot_create(xml, moment_flags)?
        } else {
            crate::api::checkpoint_create(xml, moment_flags)?
        };
        self.operate(uuid, op).await
    }

    /// Starts every inactive persistent domain marked for autostart, as libvirt does once per host
    /// boot. A failure is logged and the others still start.
    pub async fn autostart(self: &Arc<Self>) {
        let candidates: Vec<Uuid> = self
            .view()
            .iter()
            .filter(|d| d.autostart && d.persistent && !d.is_active())
            .map(|d| d.uuid())
            .collect();
        for uuid in candidates {
            match self.operate(uuid, Op::Start).await {
                Ok(_) => tracing::info!(domain.uuid = %uuid, "autostarted"),
                Err(error) => tracing::error!(domain.uuid = %uuid, %error, "autostart failed"),
            }
        }
    }

    /// Waits (at most `timeout`) for every job started so far to end; no new job starts after.
    pub async fn wait_for_jobs(&self, timeout: std::time::Duration) {
        self.tasks.close();
        if tokio::time::timeout(timeout, self.tasks.wait()).await.is_err() {
            tracing::warn!(jobs = self.tasks.len(), "jobs still running at shutdown");
        }
    }

    /// Writes the exact counters, so the next start continues from them. Call once nothing
    /// changes any more.
    pub fn flush(&self) -> Result<()> {
        self.counters.write_exact(&self.store, self.view().generation)
    }

    /// Runs one job on the domain `uuid` in a task of its own: under its job lock, `decide` on
    /// the current view, let the driver carry out `op` (when there is one), record the change,
    /// commit it. The task runs to its end even when the caller stops waiting for it.
    async fn job(
        self: &Arc<Self>,
        uuid: Uuid,
        op: Option<Op>,
        claim: Option<Claim>,
        decide: impl FnOnce(&View) -> Result<Change> + Send + 'static,
    ) -> Result<Committed> {
        let this = self.clone();
        // In the caller's span, so the job's own log lines name the RPC and its caller.
        let task = self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            let _claim = claim;
            let job = this.jobs.acquire(uuid).await;
            let result = this.run_job(uuid, op.as_ref(), decide).await;
            this.jobs.release(job, this.view().get(&uuid).is_some());
            result
        }));
        task.await.map_err(|error| Error::driver(format!("a job on domain {uuid} failed: {error}")))?
    }

    async fn run_job(
        &self,
        uuid: Uuid,
        op: Option<&Op>,
        decide: impl FnOnce(&View) -> Result<Change>,
    ) -> Result<Committed> {
        let view = self.view();
        let old = view.get(&uuid).cloned();
        let mut change = decide(&view)?;
        if change.pending {
            // The hypervisor is asked; the outcome comes back as an event of its own.
            if let (Some(op), Some(old)) = (op, &old) {
                self.driver.execute(old, op, &change).await?;
            }
            return Ok(Committed { generation: view.generation, domain: old });
        }
        // Every reservation this change needs is made before it is recorded: a reservation that
        // failed after the record would leave on disk a change the call reports as failed, and
        // the files the record writes carry the reservations (see `counters`).
        if change.started
            && let Some(domain) = &mut change.domain
        {
            domain.id = self.counters.allocate_id(&self.store)?;
        }
        self.counters.reserve_generations(&self.store, view.generation + 1)?;
        if let Some(op) = op {
            let outcome = match (&old, &change.domain) {
                (Some(old), _) => self.driver.execute(old, op, &change).await?,
                (None, Some(new)) => self.driver.execute(new, op, &change).await?,
                (None, None) => Default::default(),
            };
            if let Some(domain) = &mut change.domain {
                if outcome.runtime.is_some() {
                    domain.runtime = outcome.runtime;
                }
                if let Some((state, why)) = outcome.state
                    && domain.is_active()
                    && state != crate::domain::DomainState::Shutoff
                {
                    (domain.state, domain.reason) = (state, why);
                }
            }
        }
        // Recording and committing have no await between them, so a cancelled call can never
        // leave a change on disk but not in the registry. Their fsyncs block: on a multi-threaded
        // runtime this worker hands its other tasks to another thread while they run. Anything
        // that fails after the record undoes it, so a failed call leaves the disk as it was.
        let record_and_commit = || {
            self.store.record(uuid, old.as_deref(), change.domain.as_ref())?;
            let committed = loop {
                match self.registry.commit(uuid, &change, self.counters.generation_ceiling()) {
                    Ok(Some(committed)) => break Ok(committed),
                    // Other jobs used up the reservation since ours was made.
                    Ok(None) => {
                        if let Err(error) =
                            self.counters.reserve_generations(&self.store, self.view().generation + 1)
                        {
                            break Err(error);
                        }
                    }
                    Err(error) => break Err(error),
                }
            };
            if committed.is_err() {
                self.store.unrecord(uuid, old.as_deref(), change.domain.as_ref());
            }
            committed
        };
        let committed = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(record_and_commit),
            _ => record_and_commit(),
        };
        let committed = match committed {
            Ok(committed) => committed,
            Err(error) => {
                // A guest the driver started but nobody recorded would run unknown: stop it.
                if change.started
                    && let Some(domain) = &change.domain
                {
                    let stop = Change::update(domain.clone());
                    if let Err(stop_error) = self.driver.execute(domain, &Op::Destroy(0), &stop).await {
                        tracing::error!(domain.uuid = %uuid, %stop_error, "could not stop an unrecorded guest");
                    }
                }
                return Err(error);
            }
        };
        match &committed.domain {
            Some(domain) => tracing::info!(
                domain.name = domain.name(), domain.uuid = %uuid, domain.id = domain.id,
                state = %domain.state, generation = committed.generation, "domain changed"
            ),
            None => tracing::info!(domain.uuid = %uuid, generation = committed.generation, "domain removed"),
        }
        Ok(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DomainState, reason};
    use crate::driver::test::TestDriver;

    const XML: &str =
        "<domain type='test'><name>g</name><memory>1</memory><os><type>hvm</type></os></domain>";

    fn test_retention() -> crate::history::Retention {
        crate::history::Retention::of(&crate::config::WatchConfig::default())
    }

    fn test_driver() -> Arc<TestDriver> {
        Arc::new(TestDriver::new(crate::driver::events().0))
    }

    fn domains(dir: &std::path::Path) -> Arc<Domains> {
        let store = Store::open(&dir.join("state"), &dir.join("run")).unwrap();
        Domains::new(
            Registry::new([], 0, test_retention()).unwrap(),
            test_driver(),
            store,
            Counters::new(0, 1),
            Authority::new(None),
        )
    }

    /// What a real hypervisor's driver reports when a guest powers off by itself: applied as a
    /// change like any other, through the same job, record and commit.
    #[tokio::test]
    async fn a_guest_that_stops_on_its_own_is_shut_off_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let domains = domains(dir.path());
        let uuid = domains.define_xml(XML, 0).await.unwrap().domain.unwrap().uuid();
        domains.operate(uuid, Op::Start).await.unwrap();
        let id = domains.operate(uuid, Op::Suspend).await.unwrap().domain.unwrap().id;
        // About an earlier run: nothing changes, no generation.
        let stale =
            DriverEvent { uuid, id: id + 1, state: DomainState::Shutoff, reason: reason::SHUTOFF_SHUTDOWN };
        assert_eq!(domains.apply_event(stale).await.unwrap().generation, 3);
        let event = DriverEvent { uuid, id, state: DomainState::Shutoff, reason: reason::SHUTOFF_SHUTDOWN };
        let committed = domains.apply_event(event.clone()).await.unwrap();
        let domain = committed.domain.unwrap();
        assert_eq!(
            (domain.state, domain.reason, domain.id),
            (DomainState::Shutoff, reason::SHUTOFF_SHUTDOWN, -1)
        );
        assert_eq!(committed.generation, 4);
        // Once shut off, the same report again changes nothing.
        assert_eq!(domains.apply_event(event.clone()).await.unwrap().generation, 4);

        let started = domains.create_xml(&XML.replace(">g<", ">t<"), 0).await.unwrap().domain.unwrap();
        let (transient, id) = (started.uuid(), started.id);
        let crashed = DriverEvent { uuid: transient, id, state: DomainState::Crashed, reason: 1 };
        let domain = domains.apply_event(crashed).await.unwrap().domain.unwrap();
        assert_eq!(
            (domain.state, domain.id),
            (DomainState::Crashed, id),
            "crashed and preserved stays active"
        );
        let gone = DriverEvent { uuid: transient, id, ..event };
        assert!(domains.apply_event(gone).await.unwrap().domain.is_none());
        assert!(matches!(domains.get(transient), Err(Error::NoDomain(_))));
    }

    /// Failure atomicity and power cuts, on the model disk (`store::model`).
    mod faults {
        use super::*;
        use crate::domain::Domain;
        use crate::lifecycle::flags;
        use crate::store::model::ModelFs;
        use crate::store::{Fs, fs::is_temp};
        use crate::xml::MomentDef;
        use crate::xml::ParseDefaults;
        use std::time::Instant;

        const DEFAULTS: ParseDefaults = ParseDefaults { arch: "i686" };

        fn uuid(i: usize) -> Uuid {
            Uuid::parse_str(&format!("00000000-0000-4000-8000-{i:012}")).unwrap()
        }

        fn xml(i: usize, memory: u32) -> String {
            format!(
                "<domain type='test'><name>d{i}</name><uuid>{}</uuid><memory>{memory}</memory>\
                 <os><type>hvm</type></os><devices><disk type='file'><source file='/x'/>\
                 <target dev='vda'/></disk></devices></domain>",
                uuid(i)
            )
        }

        /// One mutating call.
        #[derive(Debug, Clone)]
        enum Call {
            Define(usize, u32),
            Create(usize),
            Op(usize, Op),
        }

        fn moment(name: &str) -> MomentDef {
            MomentDef { name: Some(name.into()), description: "d".into() }
        }

        async fn run(domains: &Arc<Domains>, call: &Call) -> Result<Committed> {
            match call {
                Call::Define(i, memory) => domains.define_xml(&xml(*i, *memory), 0).await,
                Call::Create(i) => domains.create_xml(&xml(*i, 1), 0).await,
                Call::Op(i, op) => domains.operate(uuid(*i), op.clone()).await,
            }
        }

        /// A daemon start on `fs`: open, load, index.
        fn boot(fs: Arc<dyn Fs>) -> (Arc<Domains>, crate::store::Loaded) {
            let store = Store::open_with(fs, "/s".as_ref(), "/r".as_ref()).unwrap();
            let loaded = store.load(&DEFAULTS).unwrap();
            let registry =
                Registry::new(loaded.domains.clone(), loaded.generation, test_retention()).unwrap();
            let counters = Counters::new(loaded.generation, loaded.next_id);
            (Domains::new(registry, test_driver(), store, counters, Authority::new(None)), loaded)
        }

        /// Sorted, and with a pending definition equal to the running one dropped, as loading
        /// does (a define of a running transient domain keeps one; both mean the same).
        fn sorted(mut domains: Vec<Domain>) -> Vec<Domain> {
            domains.sort_by_key(Domain::uuid);
            for d in &mut domains {
                if d.next_def.as_ref().is_some_and(|next| **next == *d.def) {
                    d.next_def = None;
                }
            }
            domains
        }

        fn state(domains: &Domains) -> Vec<Domain> {
            sorted(domains.view().iter().map(|d| Domain::clone(d)).collect())
        }

        /// What loading `fs` finds, as a fresh daemon would.
        fn reloaded(fs: Arc<dyn Fs>) -> crate::store::Loaded {
            let store = Store::open_with(fs, "/s".as_ref(), "/r".as_ref()).unwrap();
            let mut loaded = store.load(&DEFAULTS).unwrap();
            loaded.domains = sorted(std::mem::take(&mut loaded.domains));
            loaded
        }

        /// The parts of each domain that matter, one line each.
        fn summary(domains: &[Domain]) -> Vec<String> {
            domains
                .iter()
                .map(|d| {
                    let snapshots: Vec<&str> = d.moments.snapshots.iter().map(|s| s.name.as_str()).collect();
                    let checkpoints: Vec<&str> = d.moments.checkpoints.iter().map(|c| c.name.as_str()).collect();
                    format!(
                        "{} mem={} next_mem={:?} id={} {:?}/{} persistent={} autostart={} saved={} snapshots={snapshots:?} current={:?} checkpoints={checkpoints:?}",
                        d.name(), d.def.memory_kib, d.next_def.as_ref().map(|n| n.memory_kib), d.id, d.state,
                        d.reason, d.persistent, d.autostart, d.has_managed_save, d.moments.current_snapshot
                    )
                })
                .collect()
        }

        struct Rng(u64);
        impl Rng {
            fn below(&mut self, n: usize) -> usize {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % n as u64) as usize
            }
        }

        fn random_call(rng: &mut Rng) -> Call {
            let i = rng.below(3);
            let names = ["a", "b", "c.d", "x%/y"];
            let name = names[rng.below(names.len())];
            let delete_flags = [0, flags::MOMENT_DELETE_CHILDREN, flags::MOMENT_DELETE_CHILDREN_ONLY];
            let op = match rng.below(19) {
                0 | 1 => return Call::Define(i, 1 + rng.below(3) as u32),
                2 => return Call::Create(i),
                3 | 4 => Op::Start,
                5 => Op::Destroy(0),
                6 => Op::Shutdown,
                7 => Op::Suspend,
                8 => Op::Resume,
                9 => Op::ManagedSave,
                10 => Op::ManagedSaveRemove,
                11 => Op::SetAutostart(rng.below(2) == 0),
                12 => Op::Undefine([0, 3][rng.below(2)]),
                13 | 14 => {
                    Op::SnapshotCreate(moment(name), [0, flags::SNAPSHOT_CREATE_HALT][rng.below(2)], 7)
                }
                15 => Op::SnapshotDelete(name.into(), delete_flags[rng.below(3)]),
                16 => Op::CheckpointCreate(moment(name), 8),
                17 => Op::CheckpointDelete(name.into(), delete_flags[rng.below(3)]),
                _ => [Op::PmSuspend, Op::PmWakeup][rng.below(2)].clone(),
            };
            Call::Op(i, op)
        }

        /// Power cuts: many random histories on a model disk that keeps only what was made
        /// durable; a cut after every operation that changes durable state. Each cut must load
        /// to the state after the calls acknowledged before it, or with the call in flight done
        /// whole; generations and ids never go back.
        #[tokio::test]
        async fn a_power_cut_anywhere_keeps_every_acknowledged_change_and_no_half_one() {
            let started = Instant::now();
            let (mut cuts, mut calls, mut acknowledged) = (0, 0, 0);
            for seed in 0..200u64 {
                let fs = Arc::new(ModelFs::default());
                let (domains, _) = boot(fs.clone());
                fs.record_images();
                // (operations before, operations after, state, generation, highest id so far)
                let mut after_each = vec![(0, fs.ops(), state(&domains), 0, 0)];
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((seed + 1) * 0x1000_0001));
                let history: Vec<Call> = (0..30).map(|_| random_call(&mut rng)).collect();
                for call in &history {
                    let before = fs.ops();
                    let result = run(&domains, call).await;
                    let now = state(&domains);
                    let previous = after_each.last().unwrap();
                    if result.is_err() {
                        assert_eq!(now, previous.2, "a failed call changed the view: {call:?}");
                    } else {
                        acknowledged += 1;
                    }
                    let max_id = now.iter().map(|d| d.id).max().unwrap_or(0).max(previous.4);
                    after_each.push((before, fs.ops(), now, domains.view().generation, max_id));
                }
                calls += history.len();
                drop(domains);
                for (at, image) in fs.take_images() {
                    cuts += 1;
                    let done = after_each.iter().rposition(|s| s.1 <= at).unwrap();
                    let (_, _, expected, generation, max_id) = &after_each[done];
                    let in_flight = after_each.get(done + 1).filter(|s| s.0 < at);
                    let loaded = reloaded(image);
                    let whole = in_flight.is_some_and(|s| s.2 == loaded.domains);
                    assert!(
                        loaded.domains == *expected || whole,
                        "seed {seed}: a cut after operation {at} (during {:?}) lost an acknowledged \
                         change or left a half one:\n loaded {:#?}\n expected {:#?}\n or, whole, {:#?}",
                        history.get(done),
                        summary(&loaded.domains),
                        summary(expected),
                        in_flight.map(|s| summary(&s.2))
                    );
                    assert!(loaded.generation >= *generation, "seed {seed}, cut {at}: generation went back");
                    assert!(loaded.next_id > *max_id, "seed {seed}, cut {at}: an id would be reused");
                }
            }
            println!(
                "power cuts: 200 histories, {calls} calls ({acknowledged} acknowledged), {cuts} cuts checked in {:?}",
                started.elapsed()
            );
            assert!(cuts > 5_000 && acknowledged > 1_000, "too little to mean anything");
        }

        /// Every kind of mutating call, from a state that allows it: (what, setup, call).
        fn scenarios() -> Vec<(&'static str, Vec<Call>, Call)> {
            let define = || Call::Define(0, 1);
            let on = |op: Op| Call::Op(0, op);
            let snap = |name: &str| on(Op::SnapshotCreate(moment(name), 0, 7));
            let cp = |name: &str| on(Op::CheckpointCreate(moment(name), 8));
            vec![
                ("define", vec![], define()),
                ("redefine", vec![define()], Call::Define(0, 2)),
                ("redefine running", vec![define(), on(Op::Start)], Call::Define(0, 2)),
                ("define running transient", vec![Call::Create(0)], define()),
                ("undefine", vec![define()], on(Op::Undefine(0))),
                (
                    "undefine with everything",
                    vec![
                        define(),
                        on(Op::SetAutostart(true)),
                        snap("a"),
                        snap("b"),
                        on(Op::Start),
                        on(Op::ManagedSave),
                    ],
                    on(Op::Undefine(flags::UNDEFINE_MANAGED_SAVE | flags::UNDEFINE_SNAPSHOTS_METADATA)),
                ),
                ("undefine running", vec![define(), on(Op::Start)], on(Op::Undefine(0))),
                ("create", vec![], Call::Create(0)),
                ("start", vec![define()], on(Op::Start)),
                (
                    "start from managed save",
                    vec![define(), on(Op::Start), on(Op::ManagedSave)],
                    on(Op::Start),
                ),
                ("destroy", vec![define(), on(Op::Start)], on(Op::Destroy(0))),
                ("destroy transient", vec![Call::Create(0), snap("a")], on(Op::Destroy(0))),
                ("shutdown", vec![define(), on(Op::Start)], on(Op::Shutdown)),
                ("suspend", vec![define(), on(Op::Start)], on(Op::Suspend)),
                ("resume", vec![define(), on(Op::Start), on(Op::Suspend)], on(Op::Resume)),
                ("pm suspend", vec![define(), on(Op::Start)], on(Op::PmSuspend)),
                ("pm wakeup", vec![define(), on(Op::Start), on(Op::PmSuspend)], on(Op::PmWakeup)),
                ("managed save", vec![define(), on(Op::Start)], on(Op::ManagedSave)),
                (
                    "managed save remove",
                    vec![define(), on(Op::Start), on(Op::ManagedSave)],
                    on(Op::ManagedSaveRemove),
                ),
                ("autostart on", vec![define()], on(Op::SetAutostart(true))),
                ("autostart off", vec![define(), on(Op::SetAutostart(true))], on(Op::SetAutostart(false))),
                ("snapshot create", vec![define()], snap("a")),
                ("snapshot create, second", vec![define(), snap("a")], snap("x%/y")),
                (
                    "snapshot create halt",
                    vec![define(), on(Op::Start)],
                    on(Op::SnapshotCreate(moment("h"), flags::SNAPSHOT_CREATE_HALT, 7)),
                ),
                (
                    "snapshot delete",
                    vec![define(), snap("a"), snap("b")],
                    on(Op::SnapshotDelete("a".into(), 0)),
                ),
                (
                    "snapshot delete children",
                    vec![define(), snap("a"), snap("b"), snap("c")],
                    on(Op::SnapshotDelete("a".into(), flags::MOMENT_DELETE_CHILDREN)),
                ),
                ("checkpoint create", vec![define(), on(Op::Start)], cp("c")),
                (
                    "checkpoint delete",
                    vec![define(), on(Op::Start), cp("c"), cp("d")],
                    on(Op::CheckpointDelete("c".into(), 0)),
                ),
            ]
        }

        /// Active domains' ids all made 1, for comparisons where only the id may differ.
        fn any_id(domains: Vec<Domain>) -> Vec<Domain> {
            domains
                .into_iter()
                .map(|mut d| {
                    d.id = d.id.min(1);
                    d
                })
                .collect()
        }

        /// Sets up a daemon on a fresh model disk and runs `setup`.
        async fn prepared(setup: &[Call]) -> (Arc<ModelFs>, Arc<Domains>) {
            let fs = Arc::new(ModelFs::default());
            let (domains, _) = boot(fs.clone());
            for call in setup {
                run(&domains, call).await.unwrap_or_else(|e| panic!("setup {call:?}: {e}"));
            }
            (fs, domains)
        }

        /// The fault sweep: every kind of mutating call, its k-th file operation failed with EIO
        /// and with ENOSPC for every k it performs. Each must answer an error naming the cause,
        /// leave the view as it was, leave no temporary file, load after a restart (and after a
        /// power cut at any point of the failed call and its undo) to the state before it, and
        /// then succeed with no fault.
        #[tokio::test]
        async fn every_call_failing_at_every_file_operation_changes_nothing() {
            let started = Instant::now();
            let mut runs = 0;
            let mut cuts = 0;
            let mut report = Vec::new();
            for (what, setup, call) in scenarios() {
                let (fs, domains) = prepared(&setup).await;
                let before = fs.ops();
                run(&domains, &call).await.unwrap_or_else(|e| panic!("{what}: {e}"));
                let operations = fs.ops() - before;
                let after = state(&domains);
                drop(domains);
                for (code, cause, grpc) in [
                    (libc::EIO, "input/output error", tonic::Code::Internal),
                    (libc::ENOSPC, "no space left on device", tonic::Code::ResourceExhausted),
                ] {
                    for k in 1..=operations {
                        let (fs, domains) = prepared(&setup).await;
                        let (view_before, generation) = (state(&domains), domains.view().generation);
                        fs.record_images();
                        fs.fail_in(k, code);
                        let error = run(&domains, &call).await.expect_err(&format!("{what}: op {k} failed"));
                        let message = error.to_string();
                        assert!(message.contains(cause), "{what}, op {k}: {message}");
                        assert_eq!(crate::grpc::status::code(&error), grpc, "{what}, op {k}: {message}");
                        assert_eq!(state(&domains), view_before, "{what}, op {k}: the view changed");
                        assert_eq!(domains.store.poisoned(), None, "{what}, op {k}: the undo failed");
                        assert_eq!(domains.view().generation, generation, "{what}, op {k}");
                        let temps: Vec<String> = fs
                            .files()
                            .into_iter()
                            .filter(|f| is_temp(f.rsplit('/').next().unwrap()))
                            .collect();
                        assert!(temps.is_empty(), "{what}, op {k}: temporary files left: {temps:?}");
                        drop(domains);
                        for (at, image) in fs.take_images() {
                            cuts += 1;
                            let loaded = reloaded(image).domains;
                            assert!(
                                loaded == view_before || any_id(loaded.clone()) == any_id(after.clone()),
                                "{what}, op {k} failed, power cut after operation {at}: half a change:\n{:#?}",
                                summary(&loaded)
                            );
                        }
                        // A restart on the same disk finds nothing of the call; then the call
                        // succeeds.
                        let (domains, loaded) = boot(fs.clone());
                        assert_eq!(
                            sorted(loaded.domains),
                            view_before,
                            "{what}, op {k}: on disk after the failure"
                        );
                        run(&domains, &call)
                            .await
                            .unwrap_or_else(|e| panic!("{what} after op {k} failed: {e}"));
                        // The retry's id may be a later one: the failed call's reservation stands.
                        assert_eq!(
                            any_id(state(&domains)),
                            any_id(after.clone()),
                            "{what}, op {k}: the retry"
                        );
                        runs += 1;
                    }
                }
                report.push(format!("{what}: {operations}"));
            }
            println!(
                "fault sweep: {} calls, {runs} failed runs (calls x k x 2 errnos), {cuts} power cuts during them, in {:?}\n  file operations per call: {}",
                scenarios().len(),
                started.elapsed(),
                report.join(", ")
            );
            assert!(runs > 500);
        }
    }
}
