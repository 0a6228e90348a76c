//! `cargo xtask crash [--kills N] [--clients C] [--domains D] [--max-churn-ms MS] [--json FILE]`:
//! the crash test's long form. Builds rvirtd, then kills it with SIGKILL under churn N times,
//! checking after every restart that nothing acknowledged was lost and nothing is half done.

use anyhow::{Context, bail};
use rvirt_tests::crash::{CrashConfig, CrashReport, run};
use std::time::{Duration, Instant};

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    let mut config =
        CrashConfig { kills: 200, clients: 4, domains_per_client: 6, max_churn: Duration::from_millis(400) };
    let mut json = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--kills" => config.kills = value()?.parse()?,
            "--clients" => config.clients = value()?.parse()?,
            "--domains" => config.domains_per_client = value()?.parse()?,
            "--max-churn-ms" => config.max_churn = Duration::from_millis(value()?.parse()?),
            "--json" => json = Some(value()?.clone()),
            other => bail!("unknown option {other}; see the module comment of xtask/src/crash.rs"),
        }
    }
    crate::build_rvirtd()?;
    let root = tempfile::tempdir()?;
    let started = Instant::now();
    println!(
        "crash test: {} kills, {} clients x {} domains, churn up to {:?} between kills",
        config.kills, config.clients, config.domains_per_client, config.max_churn
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report: CrashReport = runtime.block_on(run(root.path(), &config, |report| {
        if report.kills % 10 == 0 || !report.losses.is_empty() {
            println!(
                "  {:>4} kills survived, {:>6} changes acknowledged, {:>4} in flight at a kill ({} landed), {:.0} s",
                report.kills,
                report.acknowledged,
                report.in_flight_at_kill,
                report.in_flight_landed,
                started.elapsed().as_secs_f64()
            );
        }
    }));
    println!();
    println!("kills survived            {}", report.kills);
    println!("changes acknowledged      {}", report.acknowledged);
    println!(
        "in flight at a kill       {} ({} landed whole, the rest not at all)",
        report.in_flight_at_kill, report.in_flight_landed
    );
    println!("domain checks             {}", report.checks);
    println!("losses                    {}", report.losses.len());
    println!("elapsed                   {:.1} s", started.elapsed().as_secs_f64());
    for loss in &report.losses {
        println!("  LOSS: {loss}");
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path}"))?;
    }
    if !report.losses.is_empty() || report.kills < config.kills {
        bail!("the crash test failed");
    }
    Ok(())
}
