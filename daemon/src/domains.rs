//! `Domains`: every domain operation, run as a job.
//!
//! A job on a domain holds that domain's job lock (an async mutex, so a slow hypervisor call
//! delays only that domain), reads the current view, asks `lifecycle` whether the operation is
//! allowed and what it leaves, lets the `Driver` act, and commits
//! it to the `Registry` as one generation. Defines and creates also hold the
//! namespace lock, so two of them never claim the same name at once. Reads need no job: they
//! answer from one view.

use crate::domain::Domain;
use crate::driver::{Driver, DriverEvent};
use crate::error::{DomainRef, Error, Result};
use crate::lifecycle::{self, Change, Op, flags};
use crate::registry::{Committed, Registry, View};
use crate::xml::{DomainDef, MomentDef};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

/// The domain operations of one daemon.
#[derive(Debug)]
pub struct Domains {
    registry: Registry,
    driver: Arc<dyn Driver>,
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
            if self
                .lock_table()
                .get(&uuid)
                .is_some_and(|current| Arc::ptr_eq(current, &lock))
            {
                return Job {
                    uuid,
                    lock,
                    _guard: guard,
                };
            }
        }
    }

    /// Ends a job; the entry is retired when the domain no longer exists.
    fn release(&self, job: Job, exists: bool) {
        if !exists {
            let mut table = self.lock_table();
            if table
                .get(&job.uuid)
                .is_some_and(|current| Arc::ptr_eq(current, &job.lock))
            {
                table.remove(&job.uuid);
            }
        }
    }

    fn lock_table(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        self.locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Domains {
    /// Operations over `registry`, acting through `driver`.
    pub fn new(registry: Registry, driver: Arc<dyn Driver>) -> Self {
        Domains {
            registry,
            driver,
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
        self.view()
            .get(&uuid)
            .cloned()
            .ok_or(Error::NoDomain(DomainRef::Uuid(uuid)))
    }

    /// virDomainDefineXMLFlags.
    pub async fn define_xml(&self, xml: &str, define_flags: u32) -> Result<Committed> {
        Error::check_flags(
            define_flags,
            flags::DEFINE_VALIDATE,
            "virDomainDefineXMLFlags",
        )?;
        let def = DomainDef::parse(xml, &self.driver.parse_defaults())?;
        let _namespace = self.namespace.lock().await;
        self.job(def.uuid, |view| async move {
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
        self.job(def.uuid, |view| async move {
            let existing = view.get(&def.uuid).cloned();
            let change = lifecycle::create(
                def.clone(),
                existing.as_deref(),
                view.by_name(&def.name).map(|d| &**d),
            )?;
            match (&existing, &change.domain) {
                (Some(existing), _) => self.driver.execute(existing, &Op::Start, &change).await?,
                (None, Some(domain)) => self.driver.create(domain).await?,
                (None, None) => unreachable!("create always leaves a domain"),
            }
            Ok(change)
        })
        .await
    }

    /// Every operation on an existing domain.
    pub async fn operate(&self, uuid: Uuid, op: Op) -> Result<Committed> {
        self.job(uuid, |view| async move {
            let domain = view
                .get(&uuid)
                .ok_or(Error::NoDomain(DomainRef::Uuid(uuid)))?;
            let change = lifecycle::apply(domain, &op)?;
            self.driver.execute(domain, &op, &change).await?;
            Ok(change)
        })
        .await
    }

    /// A state change the hypervisor reported on its own, applied as a change like any other:
    /// a guest that stopped leaves a transient domain removed and a persistent one shut off.
    pub async fn apply_event(&self, event: DriverEvent) -> Result<Committed> {
        self.job(event.uuid, |view| async move {
            let domain = view
                .get(&event.uuid)
                .ok_or(Error::NoDomain(DomainRef::Uuid(event.uuid)))?;
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
            Error::check_flags(
                moment_flags,
                flags::SNAPSHOT_CREATE_HALT | flags::SNAPSHOT_CREATE_ATOMIC,
                "virDomainSnapshotCreateXML",
            )?;
            Op::SnapshotCreate(MomentDef::parse(xml, "domainsnapshot")?, moment_flags, now)
        } else {
            Error::check_flags(moment_flags, 0, "virDomainCheckpointCreateXML")?;
            Op::CheckpointCreate(MomentDef::parse(xml, "domaincheckpoint")?, now)
        };
        self.operate(uuid, op).await
    }

    /// Runs `work` on the domain `uuid` under its job lock, then commits the change it decided.
    async fn job<F, Fut>(&self, uuid: Uuid, work: F) -> Result<Committed>
    where
        F: FnOnce(Arc<View>) -> Fut,
        Fut: Future<Output = Result<Change>>,
    {
        let job = self.jobs.acquire(uuid).await;
        let result = match work(self.view()).await {
            Ok(change) => self.commit(uuid, change),
            Err(error) => Err(error),
        };
        self.jobs.release(job, self.view().get(&uuid).is_some());
        result
    }

    /// Makes the change visible as one generation.
    fn commit(&self, uuid: Uuid, change: Change) -> Result<Committed> {
        let committed = self.registry.commit(uuid, change)?;
        match &committed.domain {
            Some(domain) => tracing::info!(
                domain.name = domain.name(), domain.uuid = %uuid, domain.id = domain.id,
                state = %domain.state, generation = committed.generation, "domain changed"
            ),
            None => {
                tracing::info!(domain.uuid = %uuid, generation = committed.generation, "domain removed")
            }
        }
        Ok(committed)
    }
}
