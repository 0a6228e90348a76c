//! Crash safety, bounded for CI: a real rvirtd under churn from several clients, killed with
//! SIGKILL at random moments and restarted, checked after every restart (see
//! `rvirt_tests::crash`). `cargo xtask crash --kills 200` runs the long form.

use rvirt_tests::crash::{CrashConfig, run};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_churn_loses_nothing_acknowledged_and_leaves_nothing_half_done() {
    let root = tempfile::tempdir().unwrap();
    let config =
        CrashConfig { kills: 12, clients: 3, domains_per_client: 4, max_churn: Duration::from_millis(300) };
    let report = run(root.path(), &config, |_| {}).await;
    assert!(report.losses.is_empty(), "{:#?}", report.losses);
    assert_eq!(report.kills, config.kills);
    assert!(report.acknowledged > 50, "too little churn to mean anything: {report:?}");
    assert_eq!(report.checks, u64::from(config.kills * config.clients * config.domains_per_client));
}
