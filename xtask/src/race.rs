//! `cargo xtask race [--driver test|qemu] [--domains N] [--churners C] [--listers L] [--watchers W]
//! [--duration S] [--json FILE] [--uri URI]`: the legacy enumeration against ListAllDomains under
//! churn, with informers (WatchDomainEvents) following it (engine: `rvirt_tests::race`). It runs in
//! release (a debug `cargo xtask` runs itself again in release). Defaults: 50 domains, 4 churners,
//! 16 listers, 2 watchers, 10 s. Without `--uri` it builds rvirtd in xtask's
//! own profile and spawns that binary on a unix socket in a temporary folder, so client and daemon
//! are separate processes as in production. `--driver qemu` spawns it with `--driver qemu` and
//! churns real boot-sector guests (24 by default: each running one is a QEMU), their files in a
//! temporary folder; with `--uri` the daemon given must run the qemu driver. Prints a progress
//! line every second, then a table per method and the replay verdict; fails if any ListAllDomains
//! listing did not replay exactly or showed an anomaly, or if anything was unexplained.

use anyhow::{Context, bail};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use rvirt_tests::race::{MethodReport, Progress, RaceConfig, RaceGuests, RaceReport, run};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    if let Some(result) = crate::rerun_in_release("race", args) {
        return result;
    }
    // A small population and many listers: every listing is replay-checked, so the more listings
    // a run makes, the stronger its verdict (about 3,000 atomic listings a second on 2 cores).
    let mut config = RaceConfig {
        domains: 50,
        churners: 4,
        listers: 16,
        watchers: 2,
        duration: Duration::from_secs(10),
        uri: None,
        guests: RaceGuests::Test,
    };
    let mut json = None;
    let mut domains = None;
    let mut qemu = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--driver" => {
                qemu = match value()?.as_str() {
                    "test" => false,
                    "qemu" => true,
                    other => bail!("unknown driver {other}: test or qemu"),
                }
            }
            "--domains" => domains = Some(value()?.parse()?),
            "--churners" => config.churners = value()?.parse()?,
            "--listers" => config.listers = value()?.parse()?,
            "--watchers" => config.watchers = value()?.parse()?,
            "--duration" => config.duration = Duration::from_secs_f64(value()?.parse()?),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--uri" => config.uri = Some(value()?.clone()),
            other => bail!("unknown option {other}; see the module comment of xtask/src/race.rs"),
        }
    }
    // A few dozen real guests: each running one is a QEMU of about 32 MiB and half a percent of
    // a core, and each start boots SeaBIOS, so 2 cores run 24 of them with room for the listers.
    config.domains = domains.unwrap_or(if qemu { 24 } else { 50 });
    let guest_dir = match qemu {
        true => {
            rvirt_tests::qemu::require_qemu();
            let dir = tempfile::tempdir()?;
            config.guests = RaceGuests::Qemu(dir.path().to_owned());
            Some(dir)
        }
        false => None,
    };
    let tty = std::io::stdout().is_terminal();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (result, spawned_name) = runtime.block_on(async {
        let spawned = match &config.uri {
            Some(_) => None,
            None => {
                crate::build_rvirtd()?;
                let dir = tempfile::tempdir()?;
                let flags: &[&str] = match qemu {
                    true => &["--log-filter", "warn", "--driver", "qemu"],
                    false => &["--log-filter", "warn"],
                };
                let daemon = DaemonProcess::start_with(&DaemonDirs::under(dir.path()), flags).await.map_err(
                    |(status, logs)| anyhow::anyhow!("rvirtd failed ({status}):\n{}", logs.join("\n")),
                )?;
                config.uri = Some(daemon.uri.clone());
                Some((daemon, dir))
            }
        };
        let legacy_listers = config.listers / 2;
        println!(
            "race: {} domains{}, {} churners, {} legacy + {} ListAllDomains listers, {} watchers, {:.0} s",
            config.domains,
            match &guest_dir {
                Some(dir) => format!(" (qemu: boot-sector guests, files in {})", dir.path().display()),
                None => String::new(),
            },
            config.churners,
            legacy_listers,
            config.listers - legacy_listers,
            config.watchers,
            config.duration.as_secs_f64()
        );
        let spawned_name = spawned.as_ref().map(|(daemon, _)| match qemu {
            true => format!("rvirtd --driver qemu (spawned, pid {})", daemon.pid()),
            false => format!("rvirtd (spawned, pid {})", daemon.pid()),
        });
        println!(
            "daemon: {} {}",
            spawned_name.as_deref().unwrap_or("given"),
            config.uri.as_deref().unwrap_or_default()
        );
        let result = run(&config, |progress| show_progress(progress, tty)).await;
        if tty {
            println!();
        }
        if let Some((daemon, _dir)) = spawned {
            let logged = daemon.logs();
            let status = daemon.terminate().await;
            // The run destroyed its guests; anything still running under their folder is ended
            // here, by pid, and said (rvirt_tests::race reports it as unexplained too).
            if let Some(dir) = &guest_dir {
                for pid in rvirt_tests::qemu::qemu_pids_under(dir.path()) {
                    println!("killing QEMU pid {pid}, still running after the run");
                    let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
                }
            }
            if !status.success() || !logged.is_empty() {
                println!("rvirtd exited with {status}; it logged:\n{}", condensed(&logged));
            }
            if !status.success() {
                bail!("rvirtd did not stop cleanly");
            }
        }
        anyhow::Ok((result, spawned_name))
    })?;
    let mut report = result?;
    if let Some(daemon) = &spawned_name {
        report.daemon = daemon.clone();
    }
    println!();
    print_table(&report);
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("json: {}", path.display());
    }
    let suspicions = report.suspicions();
    for suspicion in &suspicions {
        println!("SUSPICIOUS: {suspicion}");
    }
    if !report.atomic_verified() {
        bail!("ListAllDomains failed its replay check");
    }
    if !suspicions.is_empty() {
        bail!("the run saw something it cannot explain");
    }
    Ok(())
}

/// Log lines with repeats of one message (timestamps aside) folded into "N x message".
fn condensed(logged: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in logged {
        let text = match line.trim().split_once(' ') {
            Some((time, rest)) if time.starts_with("20") => rest.trim(),
            _ => line.trim(),
        };
        match counts.iter_mut().find(|(seen, _)| seen == text) {
            Some((_, count)) => *count += 1,
            None => counts.push((text.to_owned(), 1)),
        }
    }
    let lines: Vec<String> = counts
        .into_iter()
        .map(|(text, count)| if count == 1 { text } else { format!("{count} x {text}") })
        .collect();
    lines.join("\n")
}

fn show_progress(progress: &Progress, tty: bool) {
    let line = format!(
        "  {:>4.0} s  legacy {:>7}  ListAllDomains {:>9}  changes {:>9}",
        progress.elapsed.as_secs_f64(),
        thousands(progress.legacy_listings),
        thousands(progress.atomic_listings),
        thousands(progress.changes)
    );
    if tty {
        print!("\r{line}");
        let _ = std::io::stdout().flush();
    } else {
        println!("{line}");
    }
}

fn print_table(report: &RaceReport) {
    println!(
        "{:<15} {:>9} {:>9} {:>10} {:>11} {:>12} {:>12} {:>9} {:>9} {:>9}",
        "method",
        "listings",
        "twice/1k",
        "skipped/1k",
        "vanished/1k",
        "cut-short/1k",
        "bad-state/1k",
        "anomalous",
        "p50 ms",
        "p99 ms"
    );
    for method in [&report.legacy, &report.atomic] {
        print_row(method);
    }
    println!();
    let gaps = match report.gaps.len() {
        0 => "no gaps".to_owned(),
        n => format!("{n} GAPS (first {:?})", report.gaps.first()),
    };
    println!(
        "changes: {} acknowledged ({} defining and starting the population), {} refused; generations {}..{}, {gaps}{}",
        thousands(report.changes),
        thousands(report.population_changes),
        thousands(report.refused),
        report.base_generation,
        report.last_generation,
        if report.duplicate_generations.is_empty() {
            String::new()
        } else {
            ", DUPLICATE GENERATIONS".to_owned()
        }
    );
    if report.guests == "qemu" {
        let operations: Vec<String> =
            report.operations.iter().map(|(kind, count)| format!("{kind} {}", thousands(*count))).collect();
        println!("operations acknowledged: {}", operations.join(", "));
    }
    println!(
        "replay: {} atomic listings replay-checked, {} mismatches{}",
        thousands(report.atomic_replay_checked),
        report.atomic_mismatches,
        if report.atomic_unchecked > 0 {
            format!(", {} NOT CHECKABLE", report.atomic_unchecked)
        } else {
            String::new()
        }
    );
    println!(
        "watch: {} informers, {} states replay-checked (every generation each passed through), {} mismatches{}; {} streams dropped and resumed, {} relists",
        report.watchers,
        thousands(report.watched_checked),
        report.watched_mismatches,
        if report.watched_unchecked > 0 {
            format!(", {} NOT CHECKABLE", report.watched_unchecked)
        } else {
            String::new()
        },
        thousands(report.watch_resumes),
        report.watch_relists
    );
    for mismatch in &report.mismatches {
        println!("{mismatch}");
    }
    println!(
        "machine: {} CPUs; daemon: {}; {} {}domains ({} churned), {} churners, {} legacy + {} ListAllDomains listers, {:.1} s",
        report.cpus,
        report.daemon,
        report.domains,
        if report.guests == "qemu" { "qemu " } else { "" },
        report.churned_domains,
        report.churners,
        report.legacy_listers,
        report.atomic_listers,
        report.elapsed_secs
    );
}

fn print_row(method: &MethodReport) {
    let rates = &method.per_1000;
    let anomalous = if method.checked == 0 {
        0.0
    } else {
        method.anomalous_listings as f64 * 100.0 / method.checked as f64
    };
    println!(
        "{:<15} {:>9} {:>9.2} {:>10.2} {:>11.2} {:>12.2} {:>12.2} {:>8.1}% {:>9.2} {:>9.2}",
        method.method,
        thousands(method.listings),
        rates.listed_twice,
        rates.skipped,
        rates.vanished,
        rates.cut_short,
        rates.state_never_had,
        anomalous,
        method.latency_p50_us as f64 / 1000.0,
        method.latency_p99_us as f64 / 1000.0
    );
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
