//! The race comparison's engine: the legacy enumeration against `ListAllDomains` under churn,
//! with every atomic listing proved exact by replaying the changes that produced it.
//!
//! A run defines a population of domains, then lets *churners* change part of it (random legal
//! lifecycle operations, plus a few deliberately random ones that the daemon may refuse) while
//! *listers* enumerate it, half with `legacy_list_all`, half with `list_all_domains`. The
//! `Ledger` is the one place everything is recorded:
//!
//! - every acknowledged change, as (generation, uuid, summary after or removed). The daemon's
//!   contract is that each successful mutating call is exactly one generation, so these changes,
//!   applied in generation order to the snapshot the run started from, reproduce the registry at
//!   every generation. A generation nobody acknowledged is a *gap* (a change the run did not make
//!   or did not hear about); a generation acknowledged twice is a *duplicate*. Either makes replay
//!   impossible from there on, and the run fails.
//! - every listing, bracketed by two generations. `lower` is the highest generation acknowledged
//!   to anyone before the request was sent: that change was committed, so the registry was at
//!   least there when the daemon read it. `upper` is the generation of a count-only ListAllDomains
//!   sent after the answer came back: the registry only moves forward, so it was at most there.
//!   Every view a listing's calls read is therefore in `[lower, upper]`.
//!
//! Atomic listings are checked as they arrive (keeping 100,000s of them would take gigabytes):
//! the listing's own generation must lie in its bracket, and its domains, keyed by uuid, must
//! equal the replayed registry at that generation field by field. A listing that arrives after
//! the replay has moved past its generation is checked against the replay rolled back with the
//! before-images of the changes since. Legacy listings are few, so they are kept and classified
//! at the end against the truth over their bracket; see `Anomalies` for the precise definitions.
//!
//! The domains are the test driver's (`RaceGuests::Test`, every lifecycle operation) or real
//! boot-sector guests for a daemon on the qemu driver (`RaceGuests::Qemu`): then every start,
//! destroy, suspend, resume and managed save is a QEMU process started, ended, stopped or
//! migrated to a file, and the ledger proves the registry stays exact while real hypervisor
//! work happens under it. Such a run leaves no QEMU behind: it destroys and undefines its
//! population when the churn is over.

use crate::qemu::TestGuest;
use rand::Rng;
use rand::seq::IndexedRandom;
use rvirt::{
    Change, Connection, DomainId, DomainState, DomainSummary, ErrorKind, LegacyListing, LegacyStep,
    ListFlags, Listing, MomentDeleteFlags, UndefineFlags,
};
use rvirtd::config::DriverKind;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How to run the comparison.
#[derive(Debug, Clone)]
pub struct RaceConfig {
    /// Domains defined before the churn starts.
    pub domains: u32,
    /// Concurrent clients changing domains.
    pub churners: u32,
    /// Concurrent clients listing: half (rounded down) legacy, the rest ListAllDomains.
    pub listers: u32,
    /// Informers following the churn (`Connection::watch_all`), every state each one passes
    /// through checked against the replay; each drops its stream every 100 changes and resumes.
    pub watchers: u32,
    /// How long the churn and the listing go on.
    pub duration: Duration,
    /// The daemon to use; `None` starts one in this process (`crate::start_daemon`, on the
    /// driver `guests` needs).
    pub uri: Option<String>,
    /// What the domains are.
    pub guests: RaceGuests,
}

/// The kind of domains a run churns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RaceGuests {
    /// `<domain type='test'>` for the test driver: every lifecycle operation.
    #[default]
    Test,
    /// The boot-sector guest (`crate::qemu::TestGuest`, its files in this folder) for a daemon
    /// on the qemu driver. Its churners start, destroy, suspend, resume, save, define, undefine
    /// and toggle autostart. They never ask for an ACPI shutdown: the power-off that follows
    /// arrives as an event, one generation no client acknowledges, which the ledger would count
    /// as a gap (a change it cannot replay). Nor PM suspend, which needs a guest agent the
    /// driver does not have, nor snapshots, whose cost (a helper QEMU for each one taken of a
    /// shut-off guest) would leave little time for anything else.
    Qemu(PathBuf),
}

/// Where a run is, for a progress line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Time since the churn started.
    pub elapsed: Duration,
    /// Legacy enumerations completed.
    pub legacy_listings: u64,
    /// ListAllDomains listings completed.
    pub atomic_listings: u64,
    /// Changes acknowledged (the population's included).
    pub changes: u64,
}

/// Anomalies of one kind or another, counted against the truth over a listing's bracket
/// `[lower, upper]` (see the module comment). Every definition is chosen so that a listing read
/// from one consistent view at any generation of its bracket counts zero of each: an anomaly is
/// proof that the listing is not a snapshot, never a guess. The kinds overlap (a domain cut off
/// by a stale count is usually skipped too); each is a count of occurrences, so one listing can
/// add several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Anomalies {
    /// (a) A uuid the listing holds more than once (counted once per extra occurrence). One view
    /// holds each domain once, in exactly one of the active and inactive halves.
    pub listed_twice: u64,
    /// (b) A domain that existed at every generation of the bracket but is not in the listing.
    pub skipped: u64,
    /// (c) A lookup (by id or by name) that found no domain: the domain ListDomains or
    /// ListDefinedDomains named had gone, or changed id, by the time of the lookup. Only the
    /// legacy enumeration looks anything up.
    pub vanished: u64,
    /// (d) ListDomains(max = NumOfDomains' answer) or ListDefinedDomains(max =
    /// NumOfDefinedDomains' answer) returned exactly `max` entries while more domains were in
    /// that half of the view it read. The view is not known, so: consider every generation `g`
    /// from the list call's own lower bound to the listing's `upper` whose first `max` active
    /// ids (ascending), resp. inactive names (by uuid), are exactly what the call returned; the
    /// list counts as cut short only if *every* such `g` has more than `max` of them. Generations
    /// where the answer would have been complete leave the case ambiguous, and it is not counted.
    pub cut_short: u64,
    /// (e) An entry whose (id, state) pair, as the listing reports it, the domain had at no
    /// generation of the bracket. For the legacy enumeration the id comes from the lookup and the
    /// state from GetState, two calls that may read different views: a domain looked up by id
    /// 7 that has stopped before GetState is reported as "id 7, shut off", which it never was.
    /// (GetState's state alone always occurred somewhere in the bracket, since GetState read a
    /// view inside it, so comparing the state alone would never find anything.)
    pub state_never_had: u64,
}

/// `Anomalies` per 1,000 listings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AnomalyRates {
    /// (a) per 1,000 listings.
    pub listed_twice: f64,
    /// (b) per 1,000 listings.
    pub skipped: f64,
    /// (c) per 1,000 listings.
    pub vanished: f64,
    /// (d) per 1,000 listings.
    pub cut_short: f64,
    /// (e) per 1,000 listings.
    pub state_never_had: f64,
}

/// One enumeration method's results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MethodReport {
    /// "legacy" or "ListAllDomains".
    pub method: String,
    /// Listings completed.
    pub listings: u64,
    /// Listings checked against the truth (all of them, unless a gap made that impossible).
    pub checked: u64,
    /// Anomalies found in the checked listings.
    pub anomalies: Anomalies,
    /// The same per 1,000 checked listings.
    pub per_1000: AnomalyRates,
    /// Checked listings with at least one anomaly.
    pub anomalous_listings: u64,
    /// Median time from sending the first request to receiving the last answer, microseconds.
    pub latency_p50_us: u64,
    /// 99th percentile of the same, microseconds.
    pub latency_p99_us: u64,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RaceReport {
    /// Which daemon: "in-process" or the URI.
    pub daemon: String,
    /// What the domains were: "test" (the test driver's) or "qemu" (real boot-sector guests).
    pub guests: String,
    /// CPUs this machine offers.
    pub cpus: usize,
    /// Domains in the population.
    pub domains: u32,
    /// Of those, how many the churners changed.
    pub churned_domains: u32,
    /// Churners.
    pub churners: u32,
    /// Legacy listers.
    pub legacy_listers: u32,
    /// ListAllDomains listers.
    pub atomic_listers: u32,
    /// The configured duration of the churn, seconds.
    pub duration_secs: f64,
    /// How long the churn really ran, seconds.
    pub elapsed_secs: f64,
    /// The generation the run started from (its first listing's).
    pub base_generation: u64,
    /// The last generation the replay reached.
    pub last_generation: u64,
    /// Changes acknowledged, the population's included.
    pub changes: u64,
    /// Of those, defining and starting the population.
    pub population_changes: u64,
    /// Operations the daemon refused (nothing changed, no generation).
    pub refused: u64,
    /// Of those, operations the churner's own model said were legal: each one is suspicious.
    pub refused_legal: u64,
    /// Up to 20 of the legal operations refused, in words.
    pub refused_legal_examples: Vec<String>,
    /// The churners' acknowledged operations by kind ("Start", "Destroy", ...): on the qemu
    /// driver, how many QEMUs were really started, ended, stopped or saved.
    pub operations: BTreeMap<String, u64>,
    /// Generations no acknowledged change produced (up to 100 of them).
    pub gaps: Vec<u64>,
    /// Generations two acknowledged changes claimed (up to 100 of them).
    pub duplicate_generations: Vec<u64>,
    /// The legacy enumeration's results.
    pub legacy: MethodReport,
    /// ListAllDomains' results.
    pub atomic: MethodReport,
    /// Atomic listings compared with the replay.
    pub atomic_replay_checked: u64,
    /// Atomic listings that could not be compared (a gap before their generation).
    pub atomic_unchecked: u64,
    /// Atomic listings outside their bracket or different from the replay.
    pub atomic_mismatches: u64,
    /// Informers that followed the run.
    pub watchers: u32,
    /// States the informers passed through, each compared with the replay at its generation.
    pub watched_checked: u64,
    /// States that could not be compared (a gap before their generation).
    pub watched_unchecked: u64,
    /// States different from the replay.
    pub watched_mismatches: u64,
    /// Times an informer resumed from its generation (after its stream was dropped).
    pub watch_resumes: u64,
    /// Times an informer had to list again.
    pub watch_relists: u64,
    /// The first 20 mismatches in full: expected against got, domain by domain.
    pub mismatches: Vec<String>,
    /// Observations consistent with no generation of their bracket (a daemon or harness bug),
    /// up to 20 of them.
    pub unexplained: Vec<String>,
    /// How many there were.
    pub unexplained_count: u64,
}

impl RaceReport {
    /// Whether ListAllDomains was proved atomic: every listing replayed exactly, none showed an
    /// anomaly, and nothing (gap, duplicate) kept a listing from being checked.
    pub fn atomic_verified(&self) -> bool {
        self.atomic_mismatches == 0
            && self.watched_mismatches == 0
            && self.watched_unchecked == 0
            && self.atomic.anomalies == Anomalies::default()
            && self.atomic_unchecked == 0
            && self.atomic_replay_checked == self.atomic.listings
            && self.gaps.is_empty()
            && self.duplicate_generations.is_empty()
    }

    /// Everything suspicious besides the atomic verdict: legal operations refused, observations
    /// that match no generation.
    pub fn suspicions(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.refused_legal > 0 {
            found.push(format!(
                "{} legal operations refused: {:?}",
                self.refused_legal, self.refused_legal_examples
            ));
        }
        if self.unexplained_count > 0 {
            found
                .push(format!("{} unexplained observations: {:?}", self.unexplained_count, self.unexplained));
        }
        found
    }
}

/// One legacy enumeration with its brackets.
#[derive(Debug, Clone)]
pub struct LegacySample {
    /// Highest generation acknowledged before NumOfDomains was sent.
    pub lower: u64,
    /// Highest generation acknowledged before ListDomains was sent.
    pub list_domains_lower: u64,
    /// Highest generation acknowledged before ListDefinedDomains was sent.
    pub list_defined_lower: u64,
    /// What the enumeration saw.
    pub listing: LegacyListing,
    /// The generation of a count-only ListAllDomains sent after the last answer.
    pub upper: u64,
    /// From the first request to the last answer.
    pub latency: Duration,
}

/// One ListAllDomains listing with its bracket.
#[derive(Debug, Clone)]
pub struct AtomicSample {
    /// Highest generation acknowledged before the request was sent.
    pub lower: u64,
    /// The listing.
    pub listing: Listing,
    /// The generation of a count-only ListAllDomains sent after the answer.
    pub upper: u64,
    /// From the request to the answer.
    pub latency: Duration,
    /// An informer's map at `listing.generation` (bracket: that generation), not a listing.
    pub watched: bool,
}

/// The record of a run: every acknowledged change and every listing. Shared by all tasks.
pub struct Ledger {
    /// The highest generation acknowledged to anyone so far: the next listing's lower bound.
    max_acknowledged: AtomicU64,
    /// For progress lines, without taking the lock.
    changes: AtomicU64,
    legacy_count: AtomicU64,
    atomic_count: AtomicU64,
    /// Everything else. A std mutex: held for a map update or one listing's comparison, never
    /// across an await.
    books: Mutex<Books>,
}

/// A change applied by the replay, with the before-image that rolls it back.
#[derive(Debug, Clone)]
struct Applied {
    generation: u64,
    uuid: Uuid,
    before: Option<DomainSummary>,
    after: Option<DomainSummary>,
}

#[derive(Debug, Default)]
struct Books {
    base_generation: u64,
    /// The registry at `base_generation`, from the run's first listing (empty for a fresh daemon).
    base: HashMap<Uuid, DomainSummary>,
    /// The replayed registry at `applied`.
    state: HashMap<Uuid, DomainSummary>,
    applied: u64,
    /// Acknowledged changes above `applied + 1` waiting for the ones before them.
    pending: BTreeMap<u64, (Uuid, Option<DomainSummary>)>,
    /// Every applied change; `history[i]` produced generation `base_generation + 1 + i`.
    history: Vec<Applied>,
    duplicates: Vec<u64>,
    /// Atomic listings whose generation the replay has not reached yet.
    waiting: BTreeMap<u64, Vec<AtomicSample>>,
    atomic_checked: u64,
    atomic_mismatches: u64,
    watched_checked: u64,
    watched_mismatches: u64,
    atomic_twice: u64,
    mismatch_texts: Vec<String>,
    /// Listings that failed their check, kept to classify their anomalies at the end.
    failed_atomic: Vec<AtomicSample>,
    atomic_latencies: Vec<u32>,
    legacy: Vec<LegacySample>,
    unexplained: Vec<String>,
    unexplained_count: u64,
}

/// How many mismatches, unexplained observations and failed listings are kept in full.
const KEPT: usize = 20;
const KEPT_FAILED: usize = 1000;

impl Ledger {
    /// A ledger starting from the daemon's current registry, as one ListAllDomains shows it (a
    /// fresh daemon: empty, generation 0). That first listing is taken as the truth to replay
    /// from; every change after it must be recorded here.
    pub async fn open(conn: &Connection) -> rvirt::Result<Self> {
        let listing = conn.list_all_domains(ListFlags::empty()).await?;
        let base: HashMap<Uuid, DomainSummary> =
            listing.domains.into_iter().map(|d| (d.domain.uuid, d)).collect();
        let books = Books {
            base_generation: listing.generation,
            state: base.clone(),
            base,
            applied: listing.generation,
            ..Books::default()
        };
        Ok(Ledger {
            max_acknowledged: AtomicU64::new(listing.generation),
            changes: AtomicU64::new(0),
            legacy_count: AtomicU64::new(0),
            atomic_count: AtomicU64::new(0),
            books: Mutex::new(books),
        })
    }

    /// The lower bound for a request about to be sent: the highest generation acknowledged.
    pub fn lower_bound(&self) -> u64 {
        self.max_acknowledged.load(Ordering::SeqCst)
    }

    /// Records an acknowledged change to the domain `uuid`.
    pub fn record(&self, uuid: Uuid, change: &Change) {
        {
            let mut books = self.books();
            books.record(uuid, change);
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        // After the record: a listing that reads this bound finds the change in the books.
        self.max_acknowledged.fetch_max(change.generation, Ordering::SeqCst);
    }

    /// One ListAllDomains listing, bracketed and checked.
    pub async fn atomic_listing(&self, conn: &Connection) -> rvirt::Result<()> {
        let lower = self.lower_bound();
        let started = Instant::now();
        let listing = conn.list_all_domains(ListFlags::empty()).await?;
        let latency = started.elapsed();
        let (_, upper) = conn.count_all_domains(ListFlags::empty()).await?;
        self.atomic(AtomicSample { lower, listing, upper, latency, watched: false });
        Ok(())
    }

    /// Checks an atomic listing (now, or once the replay reaches its generation).
    pub fn atomic(&self, sample: AtomicSample) {
        self.atomic_count.fetch_add(1, Ordering::Relaxed);
        self.books().submit_atomic(sample);
    }

    /// One legacy enumeration, bracketed; `before` runs ahead of each of its calls (as in
    /// `legacy_list_all_with`), and each bound is read after it, so a change the hook makes
    /// counts as acknowledged before the call. Hand the sample to `legacy` to have it classified.
    pub async fn legacy_listing_with<F, Fut>(
        &self,
        conn: &Connection,
        mut before: F,
    ) -> rvirt::Result<LegacySample>
    where
        F: FnMut(LegacyStep) -> Fut,
        Fut: Future<Output = ()>,
    {
        // Atomics rather than cells only so the future stays Send; the hooks run one at a time.
        let bounds = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
        let started = Instant::now();
        let listing = rvirt::legacy_list_all_with(conn, |step| {
            let hook = before(step.clone());
            let (bounds, acknowledged) = (&bounds, &self.max_acknowledged);
            async move {
                hook.await;
                let slot = match step {
                    LegacyStep::NumOfDomains => 0,
                    LegacyStep::ListDomains => 1,
                    LegacyStep::ListDefinedDomains => 2,
                    _ => return,
                };
                bounds[slot].store(acknowledged.load(Ordering::SeqCst), Ordering::Relaxed);
            }
        })
        .await?;
        let latency = started.elapsed();
        let (_, upper) = conn.count_all_domains(ListFlags::empty()).await?;
        Ok(LegacySample {
            lower: bounds[0].load(Ordering::Relaxed),
            list_domains_lower: bounds[1].load(Ordering::Relaxed),
            list_defined_lower: bounds[2].load(Ordering::Relaxed),
            listing,
            upper,
            latency,
        })
    }

    /// Keeps a legacy enumeration, to classify when the run ends.
    pub fn legacy(&self, sample: LegacySample) {
        self.legacy_count.fetch_add(1, Ordering::Relaxed);
        self.books().legacy.push(sample);
    }

    /// Where the run is.
    pub fn progress(&self, elapsed: Duration) -> Progress {
        Progress {
            elapsed,
            legacy_listings: self.legacy_count.load(Ordering::Relaxed),
            atomic_listings: self.atomic_count.load(Ordering::Relaxed),
            changes: self.changes.load(Ordering::Relaxed),
        }
    }

    /// Ends the record: checks what is left, classifies the legacy listings, and reports. Call it
    /// once every change has been acknowledged (no call in flight).
    pub fn finish(&self) -> RaceReport {
        self.books().finish()
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Books {
    fn record(&mut self, uuid: Uuid, change: &Change) {
        let generation = change.generation;
        if let Some(after) = &change.domain
            && after.domain.uuid != uuid
        {
            self.unexplained(format!("change at generation {generation} to {uuid} reports domain {after:?}"));
        }
        if generation <= self.applied || self.pending.contains_key(&generation) {
            if self.duplicates.len() < 100 {
                self.duplicates.push(generation);
            }
            return;
        }
        self.pending.insert(generation, (uuid, change.domain.clone()));
        while let Some(entry) = self.pending.first_entry()
            && *entry.key() == self.applied + 1
        {
            let (uuid, after) = entry.remove();
            let before = match &after {
                Some(summary) => self.state.insert(uuid, summary.clone()),
                None => self.state.remove(&uuid),
            };
            self.applied += 1;
            self.history.push(Applied { generation: self.applied, uuid, before, after });
            if let Some(samples) = self.waiting.remove(&self.applied) {
                for sample in samples {
                    self.check_atomic(sample);
                }
            }
        }
    }

    fn submit_atomic(&mut self, sample: AtomicSample) {
        if !sample.watched {
            self.atomic_latencies.push(micros(sample.latency));
        }
        let generation = sample.listing.generation;
        if generation > self.applied {
            self.waiting.entry(generation).or_default().push(sample);
        } else {
            self.check_atomic(sample);
        }
    }

    /// Compares a listing at or below `applied` with the replay at its generation.
    fn check_atomic(&mut self, sample: AtomicSample) {
        let (twice, problem) = self.compare(&sample);
        if sample.watched {
            self.watched_checked += 1;
            if let Some(text) = problem {
                self.watched_mismatches += 1;
                if self.mismatch_texts.len() < KEPT {
                    self.mismatch_texts.push(format!("an informer's map:\n{text}"));
                }
            }
            return;
        }
        self.atomic_checked += 1;
        self.atomic_twice += twice;
        if let Some(text) = problem {
            self.atomic_mismatches += 1;
            if self.mismatch_texts.len() < KEPT {
                self.mismatch_texts.push(text);
            }
            if self.failed_atomic.len() < KEPT_FAILED {
                self.failed_atomic.push(sample);
            }
        }
    }

    /// (extra occurrences of a uuid, a full description of what is wrong if anything is).
    fn compare(&self, sample: &AtomicSample) -> (u64, Option<String>) {
        let (generation, lower, upper) = (sample.listing.generation, sample.lower, sample.upper);
        let mut problems = Vec::new();
        if generation < lower || generation > upper {
            problems.push(format!("  generation {generation} is outside its bracket [{lower}, {upper}]"));
        }
        if generation < self.base_generation {
            problems.push(format!(
                "  generation {generation} is before the run began ({})",
                self.base_generation
            ));
            return (0, Some(describe(sample, &problems)));
        }
        // The replay at `generation`: the current state with the changes since rolled back. The
        // earliest change to a uuid after `generation` holds its before-image.
        let since = &self.history[(generation - self.base_generation) as usize..];
        let mut rolled_back: HashMap<Uuid, Option<&DomainSummary>> = HashMap::new();
        for applied in since {
            rolled_back.entry(applied.uuid).or_insert(applied.before.as_ref());
        }
        let expected = |uuid: &Uuid| match rolled_back.get(uuid) {
            Some(before) => *before,
            None => self.state.get(uuid),
        };
        let mut expected_len = self.state.len();
        for (uuid, before) in &rolled_back {
            match (self.state.contains_key(uuid), before.is_some()) {
                (true, false) => expected_len -= 1,
                (false, true) => expected_len += 1,
                _ => {}
            }
        }
        let mut seen = HashSet::with_capacity(sample.listing.domains.len());
        let mut twice = 0;
        let mut equal = true;
        for got in &sample.listing.domains {
            if !seen.insert(got.domain.uuid) {
                twice += 1;
                equal = false;
            } else if expected(&got.domain.uuid) != Some(got) {
                equal = false;
            }
        }
        equal &= seen.len() == expected_len;
        if equal && problems.is_empty() {
            return (twice, None);
        }
        // Say exactly what differs, domain by domain.
        let mut truth: BTreeMap<Uuid, &DomainSummary> = self.state.iter().map(|(u, d)| (*u, d)).collect();
        for (uuid, before) in &rolled_back {
            match before {
                Some(summary) => truth.insert(*uuid, summary),
                None => truth.remove(uuid),
            };
        }
        let mut got: BTreeMap<Uuid, Vec<&DomainSummary>> = BTreeMap::new();
        for summary in &sample.listing.domains {
            got.entry(summary.domain.uuid).or_default().push(summary);
        }
        for (uuid, expected) in &truth {
            match got.get(uuid).map(Vec::as_slice) {
                None => problems.push(format!("  missing {uuid}\n    expected {expected:?}")),
                Some([only]) if only == expected => {}
                Some(listed) => {
                    for summary in listed.iter().filter(|s| **s != *expected) {
                        problems.push(format!(
                            "  differs {uuid}\n    expected {expected:?}\n    got      {summary:?}"
                        ));
                    }
                    if listed.len() > 1 {
                        problems.push(format!("  listed {} times: {uuid}", listed.len()));
                    }
                }
            }
        }
        for (uuid, listed) in &got {
            if !truth.contains_key(uuid) {
                for summary in listed {
                    problems.push(format!("  unexpected {uuid}\n    got      {summary:?}"));
                }
            }
        }
        (twice, Some(describe(sample, &problems)))
    }

    fn unexplained(&mut self, text: String) {
        self.unexplained_count += 1;
        if self.unexplained.len() < KEPT {
            self.unexplained.push(text);
        }
    }

    fn finish(&mut self) -> RaceReport {
        let mut report = RaceReport {
            base_generation: self.base_generation,
            last_generation: self.applied,
            changes: self.history.len() as u64 + self.pending.len() as u64,
            duplicate_generations: self.duplicates.clone(),
            ..RaceReport::default()
        };
        // Gaps: every generation between the replay's end and the highest one anyone saw that no
        // acknowledged change produced.
        let highest_seen = [
            self.pending.last_key_value().map(|(g, _)| *g),
            self.waiting.last_key_value().map(|(g, _)| *g),
            self.legacy.iter().map(|s| s.upper).max(),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        for generation in self.applied + 1..=highest_seen {
            if !self.pending.contains_key(&generation) {
                if report.gaps.len() < 100 {
                    report.gaps.push(generation);
                } else {
                    break;
                }
            }
        }
        let unchecked =
            |watched: bool| self.waiting.values().flatten().filter(|s| s.watched == watched).count() as u64;
        (report.atomic_unchecked, report.watched_unchecked) = (unchecked(false), unchecked(true));
        report.watched_checked = self.watched_checked;
        report.watched_mismatches = self.watched_mismatches;
        self.atomic_latencies
            .extend(self.waiting.values().flatten().filter(|s| !s.watched).map(|s| micros(s.latency)));
        report.atomic_replay_checked = self.atomic_checked;
        report.atomic_mismatches = self.atomic_mismatches;
        report.mismatches = self.mismatch_texts.clone();

        // Classify the legacy listings, and the atomic ones that failed their check, against the
        // truth over their brackets, sweeping the replay forward from the base.
        let mut observations: Vec<(bool, Observation)> = self
            .legacy
            .iter()
            .map(|s| (true, Observation::legacy(s)))
            .chain(self.failed_atomic.iter().map(|s| (false, Observation::atomic(s))))
            .collect();
        observations.sort_by_key(|(_, o)| o.lower);
        let mut state = self.base.clone();
        let mut at = self.base_generation;
        let (mut legacy, mut atomic) = (Tally::default(), Tally::default());
        let mut unexplained = Vec::new();
        for (is_legacy, observation) in &observations {
            let tally = if *is_legacy { &mut legacy } else { &mut atomic };
            if observation.lower < self.base_generation
                || observation.upper > self.applied
                || observation.lower > observation.upper
            {
                if observation.lower > observation.upper {
                    unexplained
                        .push(format!("bracket [{}, {}] is empty", observation.lower, observation.upper));
                }
                continue;
            }
            while at < observation.lower {
                let applied = &self.history[(at - self.base_generation) as usize];
                match &applied.after {
                    Some(summary) => state.insert(applied.uuid, summary.clone()),
                    None => state.remove(&applied.uuid),
                };
                at += 1;
            }
            let changes = &self.history[(observation.lower - self.base_generation) as usize
                ..(observation.upper - self.base_generation) as usize];
            let found = observation.classify(&state, changes, &mut unexplained);
            tally.add(&found);
        }
        for text in unexplained {
            self.unexplained(text);
        }
        report.unexplained = self.unexplained.clone();
        report.unexplained_count = self.unexplained_count;

        let mut legacy_latencies: Vec<u32> = self.legacy.iter().map(|s| micros(s.latency)).collect();
        report.legacy = method("legacy", self.legacy.len() as u64, legacy, &mut legacy_latencies);
        // A listing that replayed exactly at a generation inside its bracket has no anomaly of
        // any kind (it *is* the registry at that generation); only the failed ones were
        // classified, and duplicates were counted for all.
        atomic.checked = self.atomic_checked;
        atomic.anomalies.listed_twice = self.atomic_twice;
        let atomic_listings = self.atomic_checked + report.atomic_unchecked;
        report.atomic = method("ListAllDomains", atomic_listings, atomic, &mut self.atomic_latencies);
        report
    }
}

fn describe(sample: &AtomicSample, problems: &[String]) -> String {
    format!(
        "ListAllDomains at generation {} (bracket [{}, {}], {} domains) is not the replayed registry:\n{}",
        sample.listing.generation,
        sample.lower,
        sample.upper,
        sample.listing.domains.len(),
        problems.join("\n")
    )
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

#[derive(Debug, Default)]
struct Tally {
    checked: u64,
    anomalies: Anomalies,
    anomalous: u64,
}

impl Tally {
    fn add(&mut self, found: &Anomalies) {
        self.checked += 1;
        let a = &mut self.anomalies;
        a.listed_twice += found.listed_twice;
        a.skipped += found.skipped;
        a.vanished += found.vanished;
        a.cut_short += found.cut_short;
        a.state_never_had += found.state_never_had;
        if *found != Anomalies::default() {
            self.anomalous += 1;
        }
    }
}

fn method(name: &str, listings: u64, tally: Tally, latencies: &mut [u32]) -> MethodReport {
    latencies.sort_unstable();
    let percentile = |p: usize| {
        if latencies.is_empty() {
            0
        } else {
            u64::from(latencies[(latencies.len() * p / 100).min(latencies.len() - 1)])
        }
    };
    let rate =
        |count: u64| if tally.checked == 0 { 0.0 } else { count as f64 * 1000.0 / tally.checked as f64 };
    let a = tally.anomalies;
    MethodReport {
        method: name.to_owned(),
        listings,
        checked: tally.checked,
        anomalies: a,
        per_1000: AnomalyRates {
            listed_twice: rate(a.listed_twice),
            skipped: rate(a.skipped),
            vanished: rate(a.vanished),
            cut_short: rate(a.cut_short),
            state_never_had: rate(a.state_never_had),
        },
        anomalous_listings: tally.anomalous,
        latency_p50_us: percentile(50),
        latency_p99_us: percentile(99),
    }
}

/// What a listing claims, reduced to what the anomaly definitions need.
#[derive(Debug)]
struct Observation {
    lower: u64,
    upper: u64,
    /// (uuid, id, state) of each entry, as reported.
    entries: Vec<(Uuid, i32, DomainState)>,
    vanished: u64,
    /// ListDomains: its lower bound, NumOfDomains' count, the ids it returned.
    ids: Option<(u64, usize, Vec<i32>)>,
    /// ListDefinedDomains: its lower bound, NumOfDefinedDomains' count, the names it returned.
    names: Option<(u64, usize, Vec<String>)>,
}

/// Whether a list call's answer matched the truth at some generation, and whether at one of
/// those it would have been complete.
#[derive(Debug, Default)]
struct ListVerdict {
    matched: bool,
    complete_somewhere: bool,
}

impl Observation {
    fn legacy(sample: &LegacySample) -> Self {
        let listing = &sample.listing;
        Observation {
            lower: sample.lower,
            upper: sample.upper,
            entries: listing.domains.iter().map(|e| (e.domain.uuid, e.domain.id, e.state)).collect(),
            vanished: listing.vanished.len() as u64,
            ids: Some((sample.list_domains_lower, listing.num_active as usize, listing.ids.clone())),
            names: Some((sample.list_defined_lower, listing.num_inactive as usize, listing.names.clone())),
        }
    }

    fn atomic(sample: &AtomicSample) -> Self {
        Observation {
            lower: sample.lower,
            upper: sample.upper,
            entries: sample.listing.domains.iter().map(|d| (d.domain.uuid, d.domain.id, d.state)).collect(),
            vanished: 0,
            ids: None,
            names: None,
        }
    }

    /// Counts this observation's anomalies against the truth: `start` is the registry at
    /// `self.lower`, `changes` produced the generations `lower + 1 ..= upper`.
    fn classify(
        &self,
        start: &HashMap<Uuid, DomainSummary>,
        changes: &[Applied],
        unexplained: &mut Vec<String>,
    ) -> Anomalies {
        let mut state = start.clone();
        let mut active: BTreeMap<i32, Uuid> =
            state.values().filter(|d| d.domain.id != -1).map(|d| (d.domain.id, d.domain.uuid)).collect();
        let mut inactive: BTreeMap<Uuid, String> = state
            .values()
            .filter(|d| d.domain.id == -1)
            .map(|d| (d.domain.uuid, d.domain.name.clone()))
            .collect();
        let mut throughout: HashSet<Uuid> = state.keys().copied().collect();
        let mut had: HashMap<Uuid, HashSet<(i32, DomainState)>> =
            state.iter().map(|(uuid, d)| (*uuid, HashSet::from([(d.domain.id, d.state)]))).collect();
        let (mut ids_verdict, mut names_verdict) = (ListVerdict::default(), ListVerdict::default());
        let mut generation = self.lower;
        // Whether each list call's answer is still to be compared with the current halves: at
        // the first generation it may have read, and again whenever who is active changes (no
        // other change can alter either answer).
        let (mut ids_due, mut names_due) = (true, true);
        let mut changes = changes.iter();
        loop {
            if let Some((from, count, ids)) = &self.ids
                && ids_due
                && generation >= *from
            {
                ids_due = false;
                if ids.len() == *count && active.keys().take(*count).eq(ids.iter()) {
                    ids_verdict.matched = true;
                    ids_verdict.complete_somewhere |= active.len() <= *count;
                }
            }
            if let Some((from, count, names)) = &self.names
                && names_due
                && generation >= *from
            {
                names_due = false;
                if names.len() == *count && inactive.values().take(*count).eq(names.iter()) {
                    names_verdict.matched = true;
                    names_verdict.complete_somewhere |= inactive.len() <= *count;
                }
            }
            let Some(change) = changes.next() else { break };
            generation = change.generation;
            let old = state.get(&change.uuid);
            if old.map(|d| d.domain.id) != change.after.as_ref().map(|d| d.domain.id) {
                (ids_due, names_due) = (true, true);
            }
            if let Some(old) = old {
                if old.domain.id != -1 {
                    active.remove(&old.domain.id);
                } else {
                    inactive.remove(&change.uuid);
                }
            }
            match &change.after {
                Some(after) => {
                    if after.domain.id != -1 {
                        active.insert(after.domain.id, change.uuid);
                    } else {
                        inactive.insert(change.uuid, after.domain.name.clone());
                    }
                    had.entry(change.uuid).or_default().insert((after.domain.id, after.state));
                    state.insert(change.uuid, after.clone());
                }
                None => {
                    throughout.remove(&change.uuid);
                    state.remove(&change.uuid);
                }
            }
        }

        let mut found = Anomalies { vanished: self.vanished, ..Anomalies::default() };
        let mut listed = HashSet::new();
        for (uuid, id, state) in &self.entries {
            if !listed.insert(*uuid) {
                found.listed_twice += 1;
            }
            match had.get(uuid) {
                Some(pairs) if pairs.contains(&(*id, *state)) => {}
                Some(_) => found.state_never_had += 1,
                None => unexplained.push(format!(
                    "listing bracketed [{}, {}] reports {uuid}, which did not exist then",
                    self.lower, self.upper
                )),
            }
        }
        found.skipped = throughout.iter().filter(|uuid| !listed.contains(uuid)).count() as u64;
        for (what, verdict, call) in [
            ("ListDomains", &ids_verdict, self.ids.as_ref().map(|(_, count, ids)| (*count, ids.len()))),
            (
                "ListDefinedDomains",
                &names_verdict,
                self.names.as_ref().map(|(_, count, n)| (*count, n.len())),
            ),
        ] {
            let Some((count, returned)) = call else { continue };
            if returned > count {
                unexplained.push(format!("{what}({count}) returned {returned} entries"));
            } else if returned == count {
                if !verdict.matched {
                    unexplained.push(format!(
                        "{what}({count}) in a listing bracketed [{}, {}] matches no generation",
                        self.lower, self.upper
                    ));
                } else if !verdict.complete_somewhere {
                    found.cut_short += 1;
                }
            }
        }
        found
    }
}

/// An operation a churner may issue.
#[derive(Debug, Clone)]
enum Op {
    Define,
    CreateTransient,
    Start,
    Shutdown,
    Destroy,
    Suspend,
    Resume,
    PmSuspend,
    PmWakeup,
    ManagedSave,
    ManagedSaveRemove,
    Autostart(bool),
    SnapshotCreate,
    SnapshotDelete(String),
    Undefine(UndefineFlags),
}

/// One domain of the population: fixed name and uuid, and what its churner knows of it.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    uuid: Uuid,
    /// The summary the last acknowledged change left (None: absent).
    current: Option<DomainSummary>,
    /// Snapshots its churner created and has not deleted, oldest first.
    snapshots: Vec<String>,
    /// Its boot-sector guest's files, for a run on the qemu driver.
    guest: Option<TestGuest>,
}

impl Slot {
    fn xml(&self) -> String {
        if let Some(guest) = &self.guest {
            return guest.xml_with_uuid(&self.uuid);
        }
        format!(
            "<domain type='test'><name>{}</name><uuid>{}</uuid><memory unit='MiB'>64</memory>\
             <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
             <source file='/var/lib/rvirt/{}.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
            self.name, self.uuid, self.name
        )
    }

    /// Every operation legal in the state the churner knows.
    fn legal_ops(&self) -> Vec<Op> {
        if self.guest.is_some() {
            return self.legal_qemu_ops();
        }
        let Some(d) = &self.current else {
            return vec![Op::Define, Op::Define, Op::CreateTransient];
        };
        let mut ops = vec![Op::Autostart(!d.autostart), Op::Define];
        if d.checkpoint_count == 0 {
            ops.push(Op::SnapshotCreate);
        }
        if let Some(first) = self.snapshots.first() {
            ops.push(Op::SnapshotDelete(first.clone()));
        }
        if d.has_managed_save {
            ops.push(Op::ManagedSaveRemove);
        }
        if d.domain.id == -1 {
            let mut flags = UndefineFlags::empty();
            if d.has_managed_save {
                flags |= UndefineFlags::MANAGED_SAVE;
            }
            if d.snapshot_count > 0 {
                flags |= UndefineFlags::SNAPSHOTS_METADATA;
            }
            ops.extend([Op::Start, Op::Start, Op::Undefine(flags)]);
        } else {
            ops.extend([Op::Destroy, Op::Shutdown]);
            match d.state {
                DomainState::Paused => ops.push(Op::Resume),
                DomainState::PmSuspended => ops.extend([Op::Suspend, Op::PmWakeup]),
                DomainState::Running => ops.extend([Op::Suspend, Op::PmSuspend]),
                _ => ops.push(Op::Suspend),
            }
            if d.persistent {
                ops.extend([Op::ManagedSave, Op::Undefine(UndefineFlags::empty())]);
            }
        }
        ops
    }
}

impl Slot {
    /// The operations of a qemu run (see `RaceGuests::Qemu`) legal in the state the churner knows.
    fn legal_qemu_ops(&self) -> Vec<Op> {
        let Some(d) = &self.current else {
            return vec![Op::Define, Op::Define, Op::CreateTransient];
        };
        let mut ops = vec![Op::Autostart(!d.autostart), Op::Define];
        if d.has_managed_save {
            ops.push(Op::ManagedSaveRemove);
        }
        if d.domain.id == -1 {
            let flags = match d.has_managed_save {
                true => UndefineFlags::MANAGED_SAVE,
                false => UndefineFlags::empty(),
            };
            ops.extend([Op::Start, Op::Start, Op::Start, Op::Undefine(flags)]);
        } else {
            ops.extend([Op::Destroy, Op::Destroy]);
            match d.state {
                DomainState::Paused => ops.extend([Op::Resume, Op::Resume]),
                _ => ops.extend([Op::Suspend, Op::Suspend]),
            }
            if d.persistent {
                ops.extend([Op::ManagedSave, Op::Undefine(UndefineFlags::empty())]);
            }
        }
        ops
    }
}

/// Any operation of a qemu run, legal or not (see `any_op`).
fn any_qemu_op(rng: &mut impl Rng) -> Op {
    let ops = [
        Op::Define,
        Op::CreateTransient,
        Op::Start,
        Op::Destroy,
        Op::Suspend,
        Op::Resume,
        Op::ManagedSave,
        Op::ManagedSaveRemove,
        Op::Autostart(rng.random_bool(0.5)),
        Op::Undefine(UndefineFlags::from_bits_truncate(rng.random_range(0..2))),
    ];
    ops.choose(rng).expect("operations").clone()
}

/// Any operation at all, legal or not: the daemon must refuse the illegal ones and change nothing
/// (a refused change that still took a generation would show up as a gap).
fn any_op(rng: &mut impl Rng) -> Op {
    let ops = [
        Op::Define,
        Op::CreateTransient,
        Op::Start,
        Op::Shutdown,
        Op::Destroy,
        Op::Suspend,
        Op::Resume,
        Op::PmSuspend,
        Op::PmWakeup,
        Op::ManagedSave,
        Op::ManagedSaveRemove,
        Op::Autostart(rng.random_bool(0.5)),
        Op::SnapshotCreate,
        Op::SnapshotDelete("no-such-snapshot".to_owned()),
        Op::Undefine(UndefineFlags::from_bits_truncate(rng.random_range(0..4))),
    ];
    ops.choose(rng).expect("operations").clone()
}

impl Op {
    /// The operation's name, without its arguments.
    fn kind(&self) -> &'static str {
        match self {
            Op::Define => "Define",
            Op::CreateTransient => "CreateTransient",
            Op::Start => "Start",
            Op::Shutdown => "Shutdown",
            Op::Destroy => "Destroy",
            Op::Suspend => "Suspend",
            Op::Resume => "Resume",
            Op::PmSuspend => "PmSuspend",
            Op::PmWakeup => "PmWakeup",
            Op::ManagedSave => "ManagedSave",
            Op::ManagedSaveRemove => "ManagedSaveRemove",
            Op::Autostart(_) => "Autostart",
            Op::SnapshotCreate => "SnapshotCreate",
            Op::SnapshotDelete(_) => "SnapshotDelete",
            Op::Undefine(_) => "Undefine",
        }
    }
}

/// What one churner did.
#[derive(Debug, Default)]
struct ChurnStats {
    /// Acknowledged operations by kind.
    acknowledged: BTreeMap<String, u64>,
    refused: u64,
    refused_legal: u64,
    /// The first few legal operations refused, in words.
    examples: Vec<String>,
}

/// Changes its slots until `stop`, finishing the call in flight, so every committed change is
/// acknowledged and recorded.
async fn churn(
    conn: Connection,
    churner: usize,
    mut slots: Vec<Slot>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> rvirt::Result<ChurnStats> {
    let mut stats = ChurnStats::default();
    let mut counter = 0u64;
    while !stop.load(Ordering::Relaxed) && !slots.is_empty() {
        let (index, op, legal) = {
            let mut rng = rand::rng();
            let index = rng.random_range(0..slots.len());
            if rng.random_bool(0.05) {
                let op = if slots[index].guest.is_some() { any_qemu_op(&mut rng) } else { any_op(&mut rng) };
                (index, op, false)
            } else {
                let op = slots[index].legal_ops().choose(&mut rng).expect("an operation").clone();
                (index, op, true)
            }
        };
        let slot = &mut slots[index];
        counter += 1;
        let snapshot = format!("c{churner}s{counter}");
        match issue(&conn, slot, &op, &snapshot).await {
            Ok(change) => {
                ledger.record(slot.uuid, &change);
                *stats.acknowledged.entry(op.kind().to_owned()).or_default() += 1;
                match &op {
                    Op::SnapshotCreate => slot.snapshots.push(snapshot),
                    Op::SnapshotDelete(name) => slot.snapshots.retain(|s| s != name),
                    _ => {}
                }
                let count = change.domain.as_ref().map_or(0, |d| d.snapshot_count as usize);
                slot.snapshots.truncate(count);
                slot.current = change.domain;
            }
            Err(error) if refusal(error.kind) => {
                stats.refused += 1;
                if legal {
                    stats.refused_legal += 1;
                    if stats.examples.len() < KEPT {
                        stats.examples.push(format!("{op:?} on {:?}: {error}", slot.current));
                    }
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(stats)
}

/// A refusal: the daemon looked at the request and said no; nothing changed.
fn refusal(kind: ErrorKind) -> bool {
    !matches!(kind, ErrorKind::Connection | ErrorKind::Internal | ErrorKind::OperationDenied)
}

async fn issue(conn: &Connection, slot: &Slot, op: &Op, snapshot: &str) -> rvirt::Result<Change> {
    let id = slot.current.as_ref().map_or(-1, |d| d.domain.id);
    let domain = conn.domain(DomainId { name: slot.name.clone(), uuid: slot.uuid, id });
    match op {
        Op::Define => conn.define_xml(&slot.xml(), 0).await,
        Op::CreateTransient => conn.create_xml(&slot.xml(), 0).await,
        Op::Start => domain.create().await,
        Op::Shutdown => domain.shutdown().await,
        Op::Destroy => domain.destroy().await,
        Op::Suspend => domain.suspend().await,
        Op::Resume => domain.resume().await,
        Op::PmSuspend => domain.pm_suspend_for_duration(0, 0).await,
        Op::PmWakeup => domain.pm_wakeup().await,
        Op::ManagedSave => domain.managed_save().await,
        Op::ManagedSaveRemove => domain.managed_save_remove().await,
        Op::Autostart(on) => domain.set_autostart(*on).await,
        // Named: libvirt names an unnamed snapshot after the current second, so two in one
        // second would collide.
        Op::SnapshotCreate => {
            let xml = format!("<domainsnapshot><name>{snapshot}</name></domainsnapshot>");
            domain.snapshot_create_xml(&xml, 0).await
        }
        Op::SnapshotDelete(name) => domain.snapshot_delete(name, MomentDeleteFlags::empty()).await,
        Op::Undefine(flags) => domain.undefine(*flags).await,
    }
}

/// Runs the comparison. `progress` is called about once a second while the churn goes on.
pub async fn run(config: &RaceConfig, mut progress: impl FnMut(&Progress)) -> anyhow::Result<RaceReport> {
    anyhow::ensure!(config.domains > 0, "the population needs at least one domain");
    let (in_process, uri) = match &config.uri {
        Some(uri) => (None, uri.clone()),
        None => {
            let daemon = match &config.guests {
                RaceGuests::Test => crate::start_daemon().await,
                RaceGuests::Qemu(_) => crate::start_daemon_with(|c| c.driver = DriverKind::Qemu).await,
            };
            let uri = daemon.uri.clone();
            (Some(daemon), uri)
        }
    };
    let conn = Connection::open(&uri).await?;
    let ledger = Arc::new(Ledger::open(&conn).await?);

    // The population: fresh names and uuids, so a daemon given by URI can hold other domains.
    let tag: u32 = rand::rng().random_range(0..0x100_0000);
    let mut slots: Vec<Slot> = (0..config.domains)
        .map(|i| {
            let name = format!("race-{tag:06x}-{i:05}");
            let guest = match &config.guests {
                RaceGuests::Test => None,
                RaceGuests::Qemu(dir) => Some(TestGuest::new(dir, &name)),
            };
            Slot { name, uuid: Uuid::new_v4(), current: None, snapshots: Vec::new(), guest }
        })
        .collect();
    for (i, slot) in slots.iter_mut().enumerate() {
        let change = conn.define_xml(&slot.xml(), 0).await?;
        ledger.record(slot.uuid, &change);
        slot.current = change.domain;
        // A third start running, so both halves of the legacy enumeration have work.
        if i % 3 == 0 {
            let handle = conn.domain(slot.current.as_ref().expect("defined").domain.clone());
            let change = handle.create().await?;
            ledger.record(slot.uuid, &change);
            slot.current = change.domain;
        }
    }
    let population_changes = ledger.progress(Duration::ZERO).changes;

    // Half the population churns, dealt out to the churners; the rest stays put.
    let churned =
        if config.churners == 0 { 0 } else { (config.domains / 2).max(config.churners).min(config.domains) };
    let mut owned: Vec<Vec<Slot>> = vec![Vec::new(); config.churners as usize];
    for (i, slot) in slots.iter().take(churned as usize).enumerate() {
        owned[i % config.churners as usize].push(slot.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut churners = Vec::new();
    for (churner, slots) in owned.into_iter().enumerate() {
        let (conn, ledger, stop) = (Connection::open(&uri).await?, ledger.clone(), stop.clone());
        churners.push(tokio::spawn(churn(conn, churner, slots, ledger, stop)));
    }
    let legacy_listers = config.listers / 2;
    let mut listers = Vec::new();
    for lister in 0..config.listers {
        let (conn, ledger, stop) = (Connection::open(&uri).await?, ledger.clone(), stop.clone());
        let legacy = lister < legacy_listers;
        listers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if legacy {
                    let sample = ledger.legacy_listing_with(&conn, |_| async {}).await?;
                    ledger.legacy(sample);
                } else {
                    ledger.atomic_listing(&conn).await?;
                }
            }
            Ok::<(), rvirt::Error>(())
        }));
    }

    let watched = Arc::new(AtomicBool::new(false));
    let mut watchers = Vec::new();
    for _ in 0..config.watchers {
        let (conn, ledger, done) = (Connection::open(&uri).await?, ledger.clone(), watched.clone());
        watchers.push(tokio::spawn(watch(conn, ledger, done)));
    }

    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    while started.elapsed() < config.duration {
        let left = config.duration.saturating_sub(started.elapsed());
        tokio::select! {
            _ = ticks.tick() => progress(&ledger.progress(started.elapsed())),
            () = tokio::time::sleep(left) => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut stats = ChurnStats::default();
    for churner in churners {
        let done = churner.await??;
        stats.refused += done.refused;
        for (kind, count) in done.acknowledged {
            *stats.acknowledged.entry(kind).or_default() += count;
        }
        stats.refused_legal += done.refused_legal;
        stats.examples.extend(done.examples);
    }
    for lister in listers {
        lister.await??;
    }
    // Every change is acknowledged now: the informers catch up to the last one, then stop.
    watched.store(true, Ordering::Relaxed);
    let (mut resumes, mut relists) = (0, 0);
    for watcher in watchers {
        let informer = watcher.await??;
        (resumes, relists) = (resumes + informer.resumes(), relists + informer.relists());
    }
    progress(&ledger.progress(elapsed));
    let mut report = ledger.finish();
    if let RaceGuests::Qemu(dir) = &config.guests {
        let population: HashSet<Uuid> = slots.iter().map(|slot| slot.uuid).collect();
        end_guests(&conn, &population).await?;
        let left = crate::qemu::qemu_pids_under(dir);
        if !left.is_empty() {
            // Destroyed and undefined, yet running: a QEMU the daemon lost track of.
            report.unexplained_count += 1;
            report.unexplained.push(format!("QEMUs still running after every guest was destroyed: {left:?}"));
            for pid in left {
                let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            }
        }
    }
    if let Some(daemon) = in_process {
        daemon.stop().await;
    }

    report.daemon = if config.uri.is_some() { uri } else { "in-process".to_owned() };
    report.guests = match config.guests {
        RaceGuests::Test => "test",
        RaceGuests::Qemu(_) => "qemu",
    }
    .to_owned();
    report.cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    report.domains = config.domains;
    report.churned_domains = churned;
    report.churners = config.churners;
    report.legacy_listers = legacy_listers;
    report.atomic_listers = config.listers - legacy_listers;
    report.duration_secs = config.duration.as_secs_f64();
    report.watchers = config.watchers;
    report.watch_resumes = resumes;
    report.watch_relists = relists;
    report.elapsed_secs = elapsed.as_secs_f64();
    report.population_changes = population_changes;
    report.refused = stats.refused;
    report.refused_legal = stats.refused_legal;
    report.refused_legal_examples = stats.examples.into_iter().take(KEPT).collect();
    report.operations = stats.acknowledged;
    Ok(report)
}

/// An informer over every domain: each state it passes through goes to the ledger, to be compared
/// with the replay at its generation; its stream is dropped every 100 changes, so resuming is
/// checked too. Once `done`, it catches up to the last acknowledged change and ends.
async fn watch(
    conn: Connection,
    ledger: Arc<Ledger>,
    done: Arc<AtomicBool>,
) -> rvirt::Result<rvirt::Informer> {
    let mut informer = conn.watch_all(ListFlags::empty()).with_bookmark_interval(Duration::from_millis(200));
    let mut applied = 0u64;
    loop {
        if done.load(Ordering::Relaxed) && informer.generation() >= ledger.lower_bound() {
            return Ok(informer);
        }
        match tokio::time::timeout(Duration::from_millis(250), informer.next()).await {
            Err(_) | Ok(Ok(rvirt::Update::Bookmark(_))) => continue,
            Ok(update) => {
                update?;
            }
        }
        let listing = Listing {
            domains: informer.domains().values().cloned().collect(),
            generation: informer.generation(),
            incarnation: informer.incarnation(),
        };
        let generation = listing.generation;
        let sample = AtomicSample {
            lower: generation,
            listing,
            upper: generation,
            latency: Duration::ZERO,
            watched: true,
        };
        ledger.books().submit_atomic(sample);
        applied += 1;
        if applied.is_multiple_of(100) {
            informer.disconnect();
        }
    }
}

/// Destroys and undefines every domain of `population` (the run is over: nothing is recorded),
/// so no QEMU outlives a qemu run and the daemon keeps nothing of it.
async fn end_guests(conn: &Connection, population: &HashSet<Uuid>) -> anyhow::Result<()> {
    let listing = conn.list_all_domains(ListFlags::empty()).await?;
    for summary in listing.domains.into_iter().filter(|d| population.contains(&d.domain.uuid)) {
        let domain = conn.domain(summary.domain.clone());
        if summary.domain.id != -1 {
            domain.destroy().await?;
        }
        if summary.persistent {
            domain.undefine(UndefineFlags::MANAGED_SAVE | UndefineFlags::SNAPSHOTS_METADATA).await?;
        }
    }
    Ok(())
}
