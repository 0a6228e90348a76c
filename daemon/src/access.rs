//! Access decisions: what a `Caller` may see and do, under the policy in force now.
//!
//! `Authority` holds the current policy (swapped whole on reload, never edited). A request takes
//! one `Grants` from it and decides everything with that: a listing filters its one view with one
//! policy, so it is atomic in both. Mutations decide inside their job, on the view the job acts
//! on, with the policy loaded there (`Domains`), so neither a reload nor a rename lets a stale
//! decision through.
//!
//! A domain the caller may not see does not exist for it: every path answers exactly what it
//! answers for a missing domain (`Error::NoDomain`, built from what the caller asked for, never
//! from the hidden domain). Acting on a visible domain without the right is PERMISSION_DENIED.

use crate::caller::{Access, Caller, Identity};
use crate::domain::Domain;
use crate::error::{DomainRef, Error, Result};
use crate::lifecycle::Op;
use crate::policy::{Policy, Rights};
use arc_swap::ArcSwap;
use std::sync::Arc;
use uuid::Uuid;

/// The policy in force, and since when.
#[derive(Debug)]
struct Rules {
    /// `None`: no policy file; a read-write listener grants everything.
    policy: Option<Policy>,
    /// Counts replacements; a watch started under another epoch must list again.
    epoch: u64,
    /// The registry's generation when this policy took effect.
    since_generation: u64,
}

/// The daemon's current access policy.
#[derive(Debug)]
pub struct Authority {
    rules: ArcSwap<Rules>,
    /// The registry's head generation, once serving (`follow`).
    head: std::sync::OnceLock<tokio::sync::watch::Receiver<u64>>,
    /// Replacements are one at a time, so epochs never repeat.
    replacing: std::sync::Mutex<()>,
}

impl Authority {
    /// Starts with `policy` (`None`: no policy file).
    pub fn new(policy: Option<Policy>) -> Arc<Self> {
        Arc::new(Authority {
            rules: ArcSwap::from_pointee(Rules { policy, epoch: 0, since_generation: 0 }),
            head: Default::default(),
            replacing: Default::default(),
        })
    }

    /// The policy file at `path` (`None`: no policy file). A file that cannot be read or is
    /// invalid never stops the daemon: it starts with an empty policy, which grants nothing to
    /// anyone, says why, and takes the fixed file on SIGHUP.
    pub fn load(path: Option<&std::path::Path>) -> Arc<Self> {
        let Some(path) = path else { return Self::new(None) };
        match Policy::read(path) {
            Ok(policy) => {
                tracing::info!(policy = %path.display(), grants = policy.len(), "access policy loaded");
                Self::new(Some(policy))
            }
            Err(error) => {
                tracing::error!(
                    policy = %path.display(),
                    "the access policy is not usable, so nothing is granted to anyone until it is fixed (then send SIGHUP): {error}"
                );
                Self::new(Some(Policy::default()))
            }
        }
    }

    /// Reads the policy file at `path` again and puts it in force; an unusable file changes
    /// nothing and says why.
    pub fn reload(&self, path: &std::path::Path) -> std::result::Result<usize, String> {
        let policy = Policy::read(path)?;
        let grants = policy.len();
        self.replace(Some(policy));
        Ok(grants)
    }

    /// Follows the registry's head generation, which stamps each replacement.
    pub fn follow(&self, head: tokio::sync::watch::Receiver<u64>) {
        let _ = self.head.set(head);
    }

    /// Puts `policy` in force from now on.
    pub fn replace(&self, policy: Option<Policy>) {
        let _one = self.replacing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let epoch = self.rules.load().epoch + 1;
        let since_generation = self.head.get().map_or(0, |head| *head.borrow());
        self.rules.store(Arc::new(Rules { policy, epoch, since_generation }));
    }

    /// What `caller` may do, under the policy in force now.
    pub fn grants(&self, caller: &Arc<Caller>) -> Grants {
        Grants { caller: caller.clone(), rules: self.rules.load_full() }
    }

    /// The current policy's epoch.
    pub fn epoch(&self) -> u64 {
        self.rules.load().epoch
    }
}

/// One caller's rights under one policy.
#[derive(Debug, Clone)]
pub struct Grants {
    caller: Arc<Caller>,
    rules: Arc<Rules>,
}

impl Grants {
    /// The caller these are for.
    pub fn caller(&self) -> &Arc<Caller> {
        &self.caller
    }

    /// The policy's epoch.
    pub fn epoch(&self) -> u64 {
        self.rules.epoch
    }

    /// The generation this policy has been in force since: a watch resuming from before it must
    /// list again.
    pub fn since_generation(&self) -> u64 {
        self.rules.since_generation
    }

    /// Whether some domain may be hidden from this caller (else filtering can be skipped).
    pub fn filters(&self) -> bool {
        self.rules.policy.is_some() && self.caller.identity != Identity::Daemon
    }

    /// What the caller may do to the domain `name`/`uuid`.
    pub fn rights_on(&self, name: &str, uuid: Uuid) -> Rights {
        let rights = match (&self.rules.policy, &self.caller.identity) {
            (_, Identity::Daemon) | (None, _) => Rights::all(),
            (Some(policy), identity) => policy.rights(identity, name, uuid),
        };
        match self.caller.access {
            Access::ReadWrite => rights,
            Access::ReadOnly => rights & Rights::READ,
        }
    }

    /// What the caller may do to `domain`.
    pub fn rights(&self, domain: &Domain) -> Rights {
        self.rights_on(domain.name(), domain.uuid())
    }

    /// Whether the caller may see `domain`.
    pub fn sees(&self, domain: &Domain) -> bool {
        !self.filters() || self.rights(domain).contains(Rights::READ)
    }

    /// `domain` if the caller may see it; otherwise the very error a missing domain gets.
    pub fn visible<'a>(&self, domain: Option<&'a Arc<Domain>>, asked: DomainRef) -> Result<&'a Arc<Domain>> {
        domain.filter(|domain| self.sees(domain)).ok_or(Error::NoDomain(asked))
    }

    /// Refuses `op` on `domain` unless the caller holds its rights: a hidden domain is missing,
    /// a visible one without the right is denied.
    pub fn check(&self, domain: &Domain, op: &Op) -> Result<()> {
        let rights = self.rights(domain);
        if !rights.contains(Rights::READ) {
            return Err(Error::NoDomain(DomainRef::Uuid(domain.uuid())));
        }
        self.require(rights, required(op), domain.name())
    }

    /// Decides a define or create of `name`/`uuid` (which needs `needed`) against the domains
    /// holding that UUID and that name, with `decide` (lifecycle's define or create) on the
    /// domains given to it. The caller's rights on what it sent are checked first (they depend on
    /// nothing else). A hidden domain in the way is treated as absent: if the define would still
    /// fail on what the caller sees, that answer is given (it names only visible domains);
    /// otherwise it is refused as a define outside the caller's rights is, naming only what the
    /// caller sent (see ARCHITECTURE.md, "Access control").
    pub fn decide_define<T>(
        &self,
        (name, uuid): (&str, Uuid),
        needed: Rights,
        (by_uuid, by_name): (Option<&Domain>, Option<&Domain>),
        decide: impl Fn(Option<&Domain>, Option<&Domain>) -> Result<T>,
    ) -> Result<T> {
        self.require(self.rights_on(name, uuid), needed, name)?;
        let (seen_uuid, seen_name) = (by_uuid.filter(|d| self.sees(d)), by_name.filter(|d| self.sees(d)));
        if seen_uuid.is_some() != by_uuid.is_some() || seen_name.is_some() != by_name.is_some() {
            decide(seen_uuid, seen_name)?;
            return Err(self.denied(needed, name));
        }
        for domain in [by_uuid, by_name].into_iter().flatten() {
            self.require(self.rights(domain), needed, domain.name())?;
        }
        decide(by_uuid, by_name)
    }

    fn require(&self, held: Rights, needed: Rights, name: &str) -> Result<()> {
        if held.contains(needed) { Ok(()) } else { Err(self.denied(needed, name)) }
    }

    /// The refusal of `needed` on the domain `name` (named by the caller).
    pub fn denied(&self, needed: Rights, name: &str) -> Error {
        if self.caller.access == Access::ReadOnly {
            return Error::read_only(format!("'{}' on domain '{name}'", needed.words()));
        }
        Error::AccessDenied(format!("{} may not '{}' domain '{name}'", self.caller, needed.words()))
    }
}

/// The rights an operation needs (besides seeing the domain).
pub fn required(op: &Op) -> Rights {
    match op {
        Op::Start
        | Op::Shutdown
        | Op::Destroy(_)
        | Op::Suspend
        | Op::Resume
        | Op::PmSuspend
        | Op::PmWakeup
        | Op::Reboot(_)
        | Op::Reset => Rights::LIFECYCLE,
        Op::ManagedSave | Op::ManagedSaveRemove => Rights::MANAGED_SAVE,
        Op::SetAutostart(_) => Rights::AUTOSTART,
        Op::Undefine(_) => Rights::DEFINE,
        Op::SnapshotCreate(..)
        | Op::SnapshotDelete(..)
        | Op::SnapshotRevert(..)
        | Op::SnapshotRedefine(..) => Rights::SNAPSHOT,
        Op::CheckpointCreate(..) | Op::CheckpointDelete(..) => Rights::CHECKPOINT,
    }
}
