//! `Domains`: every domain operation, run as a job.
//!
//! A job on a domain holds that domain's job lock (an async mutex, so a slow hypervisor call
//! delays only that domain), reads the current view, asks `lifecycle` whether the operation is
//! allowed and what it leaves, lets the `Driver` act, records the change with the `Store` and
//! only then commits it to the `Registry` as one generation. Defines and creates also hold the
//! namespace lock, so two of them never claim the same name at once. Reads need no job: they
//! answer from one view.

use crate::counters::Counters;
use crate::domain::Domain;
use crate::driver::{Driver, DriverEvent};
use crate::error::{DomainRef, Error, Result};
use crate::lifecycle::{self, Change, Op, flags};
use crate::registry::{Committed, Registry, View};
use crate::store::Store;
use crate::xml::{DomainDef, MomentDef};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// The domain operations of one daemon.
#[derive(Debug)]
pub struct Domains {
    registry: Registry,
    driver: Arc<dyn Driver>,
    store: Store,
    counters: Counters,
    jobs: JobLocks,
    /// Held by DefineXML and CreateXML from their conflict check to their commit.
    namespace: tokio::sync::Mutex<()>,
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

impl Domains {
    /// Operations over `registry`, acting through `driver`, recorded in `store`.
    pub fn new(registry: Registry, driver: Arc<dyn Driver>, store: Store, counters: Counters) -> Self {
        Domains {
            registry,
            driver,
            store,
            counters,
            jobs: JobLocks::default(),
            namespace: tokio::sync::Mutex::new(()),
        }
    }

    /// The current view: one consistent snapshot of every domain.
    pub fn view(&self) -> Arc<View> {
        self.registry.view()
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
    pub async fn define_xml(&self, xml: &str, define_flags: u32) -> Result<Committed> {
        Error::check_flags(define_flags, flags::DEFINE_VALIDATE, "virDomainDefineXMLFlags")?;
        let def = DomainDef::parse(xml, &self.driver.parse_defaults())?;
        let _namespace = self.namespace.lock().await;
        self.job(def.uuid, None, |view| {
            lifecycle::define(
                def.clone(),
                view.get(&def.uuid).map(|d| &**d),
                view.by_name(&def.name).map(|d| &**d),
            )
        })
        .await
    }

    /// virDomainCreateXML.
    pub async fn create_xml(&self, xml: &str, create_flags: u32) -> Result<Committed> {
        Error::check_flags(create_flags, flags::CREATE_VALIDATE, "virDomainCreateXML")?;
        let def = DomainDef::parse(xml, &self.driver.parse_defaults())?;
        let _namespace = self.namespace.lock().await;
        self.job(def.uuid, Some(&Op::Start), |view| {
            lifecycle::create(
                def.clone(),
                view.get(&def.uuid).map(|d| &**d),
                view.by_name(&def.name).map(|d| &**d),
            )
        })
        .await
    }

    /// Every operation on an existing domain.
    pub async fn operate(&self, uuid: Uuid, op: Op) -> Result<Committed> {
        self.job(uuid, Some(&op), |view| {
            let domain = view.get(&uuid).ok_or(Error::NoDomain(DomainRef::Uuid(uuid)))?;
            lifecycle::apply(domain, &op)
        })
        .await
    }

    /// A state change the hypervisor reported on its own, applied as a change like any other:
    /// a guest that stopped leaves a transient domain removed and a persistent one shut off.
    pub async fn apply_event(&self, event: DriverEvent) -> Result<Committed> {
        self.job(event.uuid, None, |view| {
            let domain = view.get(&event.uuid).ok_or(Error::NoDomain(DomainRef::Uuid(event.uuid)))?;
            Ok(lifecycle::observed(domain, event.state, event.reason))
        })
        .await
    }

    /// Snapshot and checkpoint creation: parses the document and stamps it with the time now.
    pub async fn create_moment(
        &self,
        uuid: Uuid,
        xml: &str,
        moment_flags: u32,
        snapshot: bool,
    ) -> Result<Committed> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or(0);
        let op = if snapshot {
            Error::check_flags(moment_flags, flags::SNAPSHOT_CREATE_ALL, "virDomainSnapshotCreateXML")?;
            Op::SnapshotCreate(MomentDef::parse(xml, "domainsnapshot")?, moment_flags, now)
        } else {
            Error::check_flags(
                moment_flags,
                flags::CHECKPOINT_CREATE_QUIESCE,
                "virDomainCheckpointCreateXML",
            )?;
            Op::CheckpointCreate(MomentDef::parse(xml, "domaincheckpoint")?, now)
        };
        self.operate(uuid, op).await
    }

    /// Starts every inactive persistent domain marked for autostart, as libvirt does once per host
    /// boot. A failure is logged and the others still start.
    pub async fn autostart(&self) {
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

    /// Writes the exact counters, so the next start continues from them. Call once nothing
    /// changes any more.
    pub fn flush(&self) -> Result<()> {
        self.counters.write_exact(&self.store, self.view().generation)
    }

    /// Runs one job on the domain `uuid`: under its job lock, `decide` on the current view,
    /// let the driver carry out `op` (when there is one), record the change, commit it.
    async fn job(
        &self,
        uuid: Uuid,
        op: Option<&Op>,
        decide: impl FnOnce(&View) -> Result<Change>,
    ) -> Result<Committed> {
        let job = self.jobs.acquire(uuid).await;
        let result = self.run_job(uuid, op, decide).await;
        self.jobs.release(job, self.view().get(&uuid).is_some());
        result
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
        if change.started
            && let Some(domain) = &mut change.domain
        {
            domain.id = self.counters.allocate_id(&self.store)?;
        }
        if let Some(op) = op {
            match (&old, &change.domain) {
                (Some(old), _) => self.driver.execute(old, op, &change).await?,
                (None, Some(new)) => self.driver.create(new).await?,
                (None, None) => {}
            }
        }
        // Recording and committing have no await between them, so a cancelled call can never
        // leave a change on disk but not in the registry. Their fsyncs block: on a multi-threaded
        // runtime this worker hands its other tasks to another thread while they run.
        let record_and_commit = || {
            self.store.record(uuid, old.as_deref(), change.domain.as_ref())?;
            loop {
                match self.registry.commit(uuid, &change, self.counters.generation_ceiling())? {
                    Some(committed) => return Ok::<_, Error>(committed),
                    None => self.counters.reserve_generations(&self.store, self.view().generation + 1)?,
                }
            }
        };
        let committed = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(record_and_commit)?,
            _ => record_and_commit()?,
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

    fn domains(dir: &std::path::Path) -> Domains {
        let store = Store::open(&dir.join("state"), &dir.join("run")).unwrap();
        Domains::new(Registry::new([], 0).unwrap(), Arc::new(TestDriver), store, Counters::new(0, 1))
    }

    /// What a real hypervisor's driver reports when a guest powers off by itself: applied as a
    /// change like any other, through the same job, record and commit.
    #[tokio::test]
    async fn a_guest_that_stops_on_its_own_is_shut_off_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let domains = domains(dir.path());
        let uuid = domains.define_xml(XML, 0).await.unwrap().domain.unwrap().uuid();
        domains.operate(uuid, Op::Start).await.unwrap();
        let event = DriverEvent { uuid, state: DomainState::Shutoff, reason: reason::SHUTOFF_SHUTDOWN };
        let committed = domains.apply_event(event.clone()).await.unwrap();
        let domain = committed.domain.unwrap();
        assert_eq!(
            (domain.state, domain.reason, domain.id),
            (DomainState::Shutoff, reason::SHUTOFF_SHUTDOWN, -1)
        );
        assert_eq!(committed.generation, 3);

        let transient =
            domains.create_xml(&XML.replace(">g<", ">t<"), 0).await.unwrap().domain.unwrap().uuid();
        let crashed = DriverEvent { uuid: transient, state: DomainState::Crashed, reason: 1 };
        assert_eq!(domains.apply_event(crashed).await.unwrap().domain.unwrap().state, DomainState::Crashed);
        let gone = DriverEvent { uuid: transient, ..event };
        assert!(domains.apply_event(gone).await.unwrap().domain.is_none());
        assert!(matches!(domains.get(transient), Err(Error::NoDomain(_))));
    }
}
