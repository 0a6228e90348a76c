//! `cargo xtask race [--domains N] [--churners C] [--listers L] [--duration S] [--json FILE]
//! [--uri URI]`: the legacy enumeration against ListAllDomains under churn (engine:
//! `rvirt_tests::race`). It runs in release (a debug `cargo xtask` runs itself again in release).
//! Defaults: 50 domains, 4 churners, 16 listers, 10 s. Without `--uri` it builds rvirtd in xtask's own profile and spawns that
//! binary on a unix socket in a temporary folder, so client and daemon are separate processes as
//! in production. Prints a progress line every second, then a table per method and the replay
//! verdict; fails if any ListAllDomains listing did not replay exactly or showed an anomaly, or if
//! anything was unexplained.

use anyhow::{Context, bail};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use rvirt_tests::race::{MethodReport, Progress, RaceConfig, RaceReport, run};
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
    let mut config =
        RaceConfig { domains: 50, churners: 4, listers: 16, duration: Duration::from_secs(10), uri: None };
    let mut json = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--domains" => config.domains = value()?.parse()?,
            "--churners" => config.churners = value()?.parse()?,
            "--listers" => config.listers = value()?.parse()?,
            "--duration" => config.duration = Duration::from_secs_f64(value()?.parse()?),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--uri" => config.uri = Some(value()?.clone()),
            other => bail!("unknown option {other}; see the module comment of xtask/src/race.rs"),
        }
    }
    let tty = std::io::stdout().is_terminal();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (result, spawned_name) = runtime.block_on(async {
        let spawned = match &config.uri {
            Some(_) => None,
            None => {
                crate::build_rvirtd()?;
                let dir = tempfile::tempdir()?;
                let daemon =
                    DaemonProcess::start_with(&DaemonDirs::under(dir.path()), &["--log-filter", "warn"])
                        .await
                        .map_err(|(status, logs)| {
                            anyhow::anyhow!("rvirtd failed ({status}):\n{}", logs.join("\n"))
                        })?;
                config.uri = Some(daemon.uri.clone());
                Some((daemon, dir))
            }
        };
        let legacy_listers = config.listers / 2;
        println!(
            "race: {} domains, {} churners, {} legacy + {} ListAllDomains listers, {:.0} s",
            config.domains,
            config.churners,
            legacy_listers,
            config.listers - legacy_listers,
            config.duration.as_secs_f64()
        );
        let spawned_name =
            spawned.as_ref().map(|(daemon, _)| format!("rvirtd (spawned, pid {})", daemon.pid()));
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
            if !status.success() || !logged.is_empty() {
                println!("rvirtd exited with {status}; it logged:\n{}", logged.join("\n"));
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
    for mismatch in &report.mismatches {
        println!("{mismatch}");
    }
    println!(
        "machine: {} CPUs; daemon: {}; {} domains ({} churned), {} churners, {} legacy + {} ListAllDomains listers, {:.1} s",
        report.cpus,
        report.daemon,
        report.domains,
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
