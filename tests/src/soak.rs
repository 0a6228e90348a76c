//! The watch soak: an informer (`Connection::watch_all`) follows a real rvirtd process under churn
//! from several clients, and its map is compared with ListAllDomains at the very same generation,
//! again and again, across deliberately dropped streams and daemon restarts.
//!
//! Each round: the churners run; a lister takes a listing (generation g, incarnation i); the
//! informer applies its changes one at a time until it stands at (i, g) and its map must equal the
//! listing, domain by domain (a *divergence* otherwise). An unfiltered watch has an event for every
//! generation, so each change must follow the one before by exactly one generation and the
//! informer must stand at g exactly (a *gap* otherwise), unless a restart made it list again past
//! g (then the round is not comparable, and counted as such). Every `drop_every` listings the
//! informer drops its stream, as a lost connection would, and resumes from its generation. A
//! restart (SIGTERM, start again on the same folders) gives the daemon a new incarnation: the
//! informer's resume is refused and it lists again.

use crate::domain_xml;
use crate::process::{DaemonDirs, DaemonProcess};
use rand::Rng;
use rvirt::{Connection, DomainSummary, ErrorKind, ListFlags, UndefineFlags, Update};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Stop once the informer has followed this many changes...
    pub events: u64,
    /// ...and restarted the daemon this many times, evenly spread.
    pub restarts: u32,
    /// Churning clients, each on its own 10 domains.
    pub churners: u32,
    /// Drop the informer's stream every this many listings.
    pub drop_every: u64,
}

/// What a soak found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SoakReport {
    /// Changes the informer applied (after its initial states).
    pub events: u64,
    /// Listings compared with the informer's map at the same generation.
    pub compared: u64,
    /// Listings the informer's map differed from.
    pub divergences: u64,
    /// The first few, in full.
    pub divergence_texts: Vec<String>,
    /// Listings a relist carried the informer past (after a restart), not comparable.
    pub passed_by_relist: u64,
    /// Changes that did not follow the one before by exactly one generation (outside a relist):
    /// a gap or a duplicate in the stream.
    pub gaps: u64,
    /// Streams dropped and resumed from their generation.
    pub resumes: u64,
    /// Maps rebuilt after the daemon's history stopped reaching back (after each restart).
    pub relists: u64,
    /// Daemon restarts.
    pub restarts: u32,
    /// Changes the churners had acknowledged.
    pub acknowledged: u64,
    /// Seconds the soak took.
    pub seconds: f64,
}

/// Random operations on domains `first..first + 10` until `stop`; how many were acknowledged.
/// Refusals (what the state does not allow) are expected; a lost daemon (restart) is waited out.
async fn churn(conn: Connection, first: u32, stop: Arc<AtomicBool>) -> u64 {
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let (n, op, on) = {
            let mut rng = rand::rng();
            (first + rng.random_range(0..10), rng.random_range(0..10), rng.random())
        };
        let name = format!("soak{n}");
        let result = match op {
            0 => conn.define_xml(&domain_xml(&name, n), 0).await,
            1 => conn.create_xml(&domain_xml(&name, n), 0).await,
            _ => match conn.lookup_by_name(&name).await {
                Ok(dom) => match op {
                    2 | 3 => dom.create().await,
                    4 => dom.suspend().await,
                    5 => dom.resume().await,
                    6 => dom.destroy().await,
                    7 => dom.set_autostart(on).await,
                    8 => dom.managed_save().await,
                    _ => dom.undefine(UndefineFlags::MANAGED_SAVE).await,
                },
                Err(error) => Err(error),
            },
        };
        match result {
            Ok(_) => done += 1,
            Err(error) if error.kind == ErrorKind::Connection => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(_) => {}
        }
    }
    done
}

fn by_uuid(domains: Vec<DomainSummary>) -> BTreeMap<Uuid, DomainSummary> {
    domains.into_iter().map(|d| (d.domain.uuid, d)).collect()
}

/// Runs a soak against a fresh rvirtd process under `root`; `progress` hears about every 10,000
/// changes followed.
pub async fn run(
    root: &std::path::Path,
    config: &SoakConfig,
    mut progress: impl FnMut(&SoakReport),
) -> anyhow::Result<SoakReport> {
    let started = Instant::now();
    let dirs = DaemonDirs::under(root);
    let mut daemon = DaemonProcess::start_with(&dirs, &["--log-filter", "warn"])
        .await
        .map_err(|(status, logs)| anyhow::anyhow!("rvirtd failed ({status}):\n{}", logs.join("\n")))?;
    let conn = daemon.connect().await;
    let mut informer = conn.watch_all(ListFlags::empty());
    informer.next().await?;
    let mut report = SoakReport::default();
    let mut listings = 0u64;
    let mut next_progress = 10_000;
    let restart_every = config.events / (u64::from(config.restarts) + 1);
    loop {
        let stop = Arc::new(AtomicBool::new(false));
        let mut churners = Vec::new();
        for c in 0..config.churners {
            churners.push(tokio::spawn(churn(daemon.connect().await, c * 10, stop.clone())));
        }
        let restart_at = (u64::from(report.restarts) + 1) * restart_every;
        while report.events < config.events
            && (report.restarts >= config.restarts || report.events < restart_at)
        {
            let listing = conn.list_all_domains(ListFlags::empty()).await?;
            let (incarnation, generation) = (listing.incarnation, listing.generation);
            // Apply changes until the informer stands at the listing's generation.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut relisted = false;
            let comparable = loop {
                if informer.incarnation() == incarnation && informer.generation() >= generation {
                    break informer.generation() == generation;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let before = informer.generation();
                let update = tokio::time::timeout(left, informer.next()).await.map_err(|_| {
                    anyhow::anyhow!("the informer did not reach generation {generation} within 30 s")
                })??;
                match update {
                    Update::Changed(event) => {
                        report.events += 1;
                        if event.generation != before + 1 {
                            report.gaps += 1;
                        }
                    }
                    Update::Synced { .. } => relisted = true,
                    Update::Bookmark(_) => {}
                }
            };
            if !comparable && !relisted {
                // Passed over the listing's generation without a relist: a change went missing.
                report.gaps += 1;
            }
            if comparable {
                report.compared += 1;
                let expected = by_uuid(listing.domains);
                if informer.domains() != &expected {
                    report.divergences += 1;
                    if report.divergence_texts.len() < 5 {
                        report.divergence_texts.push(format!(
                            "at generation {generation}: listing {expected:?}\ninformer {:?}",
                            informer.domains()
                        ));
                    }
                }
            } else {
                report.passed_by_relist += 1;
            }
            listings += 1;
            if listings.is_multiple_of(config.drop_every) {
                informer.disconnect();
            }
            if report.events >= next_progress {
                next_progress += 10_000;
                (report.resumes, report.relists) = (informer.resumes(), informer.relists());
                report.seconds = started.elapsed().as_secs_f64();
                progress(&report);
            }
        }
        stop.store(true, Ordering::Relaxed);
        for churner in churners {
            report.acknowledged += churner.await?;
        }
        if report.events >= config.events || report.restarts >= config.restarts {
            break;
        }
        let status = daemon.terminate().await;
        anyhow::ensure!(status.success(), "rvirtd did not stop cleanly: {status}");
        daemon =
            DaemonProcess::start_with(&dirs, &["--log-filter", "warn"]).await.map_err(|(status, logs)| {
                anyhow::anyhow!("rvirtd failed to restart ({status}):\n{}", logs.join("\n"))
            })?;
        report.restarts += 1;
    }
    // Quiet now: one last listing, which the map must equal.
    let listing = conn.list_all_domains(ListFlags::empty()).await?;
    while informer.incarnation() != listing.incarnation || informer.generation() < listing.generation {
        let before = informer.generation();
        if let Update::Changed(event) = informer.next().await? {
            report.events += 1;
            if event.generation != before + 1 {
                report.gaps += 1;
            }
        }
    }
    report.compared += 1;
    if informer.domains() != &by_uuid(listing.domains) {
        report.divergences += 1;
    }
    (report.resumes, report.relists) = (informer.resumes(), informer.relists());
    report.seconds = started.elapsed().as_secs_f64();
    let _ = daemon.terminate().await;
    Ok(report)
}
