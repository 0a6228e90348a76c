//! `rvirsh event` against an in-process rvirtd: the built binary watches while the library makes
//! the changes, and its lines are checked exactly (virsh's lines for the same changes, from
//! `virsh event` against libvirtd's test driver, are the expected ones).
//!
//! rvirsh prints nothing when its watch begins, as virsh prints nothing when it registers, so a
//! test cannot see when it is watching. It *probes*: it repeats a change whose line is known
//! (`define` of a changed definition: `Defined Updated`) until every watcher printed one, then
//! makes a first change with another line (the *fence*); each watcher's lines before the fence
//! are probe lines, and everything from it on is the scenario.

use rvirt::{Connection, Domain, SnapshotRevertFlags, UndefineFlags};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long one line may take to arrive: a hang is a bug, reported as a failure.
const LINE_LIMIT: Duration = Duration::from_secs(20);

/// How long probing may take in all.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// A running `rvirsh -c URI event ...`, its stdout read line by line.
struct Watcher {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Probe lines read (they count in `events received`).
    probes: usize,
}

impl Watcher {
    fn spawn(uri: &str, args: &[&str]) -> Watcher {
        let mut child = Command::new(rvirt_tests::workspace_binary("rvirsh"))
            .arg("-c")
            .arg(uri)
            .arg("event")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run rvirsh");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Watcher { child, lines, probes: 0 }
    }

    /// The next line, if one comes within `limit`.
    async fn line_within(&mut self, limit: Duration) -> Option<String> {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(line) => Some(line.expect("read rvirsh's stdout").expect("rvirsh ended early")),
            Err(_) => None,
        }
    }

    async fn line(&mut self) -> String {
        self.line_within(LINE_LIMIT)
            .await
            .unwrap_or_else(|| panic!("no line from rvirsh within {LINE_LIMIT:?}"))
    }

    /// The first line that is not a probe line (`probe`), counting the probe lines skipped.
    async fn after_probes(&mut self, probe: &str) -> String {
        loop {
            let line = self.line().await;
            if !line.ends_with(probe) {
                return line;
            }
            self.probes += 1;
        }
    }

    /// SIGINT, then the rest of stdout, stderr and the exit status.
    async fn interrupt(self) -> (String, String, ExitStatus) {
        let pid = self.child.id().expect("rvirsh still running").to_string();
        let status = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -INT {pid}: {status}");
        self.finish().await
    }

    /// The rest of stdout, stderr and the exit status, once rvirsh exits.
    async fn finish(mut self) -> (String, String, ExitStatus) {
        let finished = async {
            let mut rest = String::new();
            while let Some(line) = self.lines.next_line().await.expect("read rvirsh's stdout") {
                rest.push_str(&line);
                rest.push('\n');
            }
            let mut stderr = String::new();
            self.child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).await.unwrap();
            (rest, stderr, self.child.wait().await.expect("wait for rvirsh"))
        };
        tokio::time::timeout(LINE_LIMIT, finished).await.expect("rvirsh did not exit")
    }
}

/// virsh's line for one lifecycle event.
fn event(name: &str, what: &str) -> String {
    format!("event 'lifecycle' for domain '{name}': {what}")
}

/// Redefines `domain` (n as `rvirt_tests::domain_xml` numbers it), with a new description each
/// time, until every watcher printed a line.
///
/// Differs from libvirt: a new description each time, because rvirtd sends no event for a
/// definition that did not change, where libvirt sends DEFINED/UPDATED for any redefinition.
async fn probe(conn: &Connection, domain: &str, n: u32, watchers: &mut [&mut Watcher]) {
    let xml = rvirt_tests::domain_xml(domain, n);
    let probe = event(domain, "Defined Updated");
    let mut seen = vec![false; watchers.len()];
    let started = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(20);
    for round in 0.. {
        if !seen.contains(&false) {
            break;
        }
        assert!(started.elapsed() < PROBE_LIMIT, "rvirsh printed no event within {PROBE_LIMIT:?}");
        let described =
            xml.replacen("<memory", &format!("<description>probe {round}</description><memory"), 1);
        conn.define_xml(&described, 0).await.unwrap();
        for (watcher, seen) in watchers.iter_mut().zip(&mut seen) {
            if !*seen && let Some(line) = watcher.line_within(wait).await {
                assert!(line.ends_with(&probe), "a probe line: {line}");
                watcher.probes += 1;
                *seen = true;
            }
        }
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

async fn define(conn: &Connection, name: &str, n: u32) -> Domain {
    let change = conn.define_xml(&rvirt_tests::domain_xml(name, n), 0).await.unwrap();
    conn.domain(change.domain.expect("defined").domain)
}

/// `YYYY-MM-DD HH:MM:SS.mmm+0000: ` (virTimeStringNowRaw), stripped; panics on any other shape.
fn strip_timestamp(line: &str) -> (&str, &str) {
    let (stamp, rest) = line.split_at_checked(30).unwrap_or_else(|| panic!("no timestamp: {line:?}"));
    let shape = stamp.bytes().zip("dddd-dd-dd dd:dd:dd.ddd+0000: ".bytes());
    for (byte, want) in shape {
        let ok = if want == b'd' { byte.is_ascii_digit() } else { byte == want };
        assert!(ok, "not a virsh timestamp: {line:?}");
    }
    (&stamp[..28], rest)
}

/// `event --loop --all` (with `--timestamp`) and `event --loop --domain g --event lifecycle` at once: every
/// lifecycle line, in order, one per entry of a change with several; the second only `g`'s; SIGINT
/// ends both with virsh's last lines and success.
#[tokio::test]
async fn rvirsh_event_loop_prints_virsh_lines_for_every_change_until_interrupted() {
    let daemon = rvirt_tests::start_daemon().await;
    let conn = &daemon.client;
    let g = define(conn, "g", 1).await;
    let other = define(conn, "other", 2).await;
    let mut all = Watcher::spawn(&daemon.uri, &["--loop", "--all", "--timestamp"]);
    let mut only_g = Watcher::spawn(&daemon.uri, &["--loop", "--domain", "g", "--event", "lifecycle"]);
    probe(conn, "g", 1, &mut [&mut all, &mut only_g]).await;

    g.create().await.unwrap();
    other.create().await.unwrap();
    g.suspend().await.unwrap();
    g.resume().await.unwrap();
    g.snapshot_create_xml("<domainsnapshot><name>s1</name></domainsnapshot>", 0).await.unwrap();
    g.revert_to_snapshot("s1", SnapshotRevertFlags::PAUSED).await.unwrap();
    g.resume().await.unwrap();
    let late = define(conn, "late", 3).await;
    late.undefine(UndefineFlags::empty()).await.unwrap();
    other.destroy().await.unwrap();
    g.destroy().await.unwrap();
    g.undefine(UndefineFlags::SNAPSHOTS_METADATA).await.unwrap();
    other.undefine(UndefineFlags::empty()).await.unwrap();

    let g_lines = [
        event("g", "Started Booted"),
        event("g", "Suspended Paused"),
        event("g", "Resumed Unpaused"),
        event("g", "Stopped Snapshot"),
        event("g", "Started Snapshot"),
        event("g", "Suspended Snapshot"),
        event("g", "Resumed Unpaused"),
        event("g", "Stopped Destroyed"),
        event("g", "Undefined Removed"),
    ];
    let all_lines = [
        event("g", "Started Booted"),
        event("other", "Started Booted"),
        event("g", "Suspended Paused"),
        event("g", "Resumed Unpaused"),
        event("g", "Stopped Snapshot"),
        event("g", "Started Snapshot"),
        event("g", "Suspended Snapshot"),
        event("g", "Resumed Unpaused"),
        event("late", "Defined Added"),
        event("late", "Undefined Removed"),
        event("other", "Stopped Destroyed"),
        event("g", "Stopped Destroyed"),
        event("g", "Undefined Removed"),
        event("other", "Undefined Removed"),
    ];

    let probe = event("g", "Defined Updated");
    let mut lines = vec![all.after_probes(&probe).await];
    while lines.len() < all_lines.len() {
        lines.push(all.line().await);
    }
    let (stamps, got): (Vec<&str>, Vec<&str>) = lines.iter().map(|line| strip_timestamp(line)).unzip();
    assert_eq!(got, all_lines);
    assert!(stamps.is_sorted(), "timestamps go forward: {stamps:#?}");
    let probes = all.probes;
    let (rest, stderr, status) = all.interrupt().await;
    let received = probes + all_lines.len();
    assert_eq!(rest, format!("event loop interrupted\nevents received: {received}\n\n"), "stderr: {stderr}");
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stderr, "");

    let mut got = vec![only_g.after_probes(&probe).await];
    while got.len() < g_lines.len() {
        got.push(only_g.line().await);
    }
    assert_eq!(got, g_lines);
    let received = only_g.probes + g_lines.len();
    let (rest, stderr, status) = only_g.interrupt().await;
    assert_eq!(rest, format!("event loop interrupted\nevents received: {received}\n\n"), "stderr: {stderr}");
    assert!(status.success(), "{status}; stderr: {stderr}");
    daemon.stop().await;
}

/// Without `--loop`, `event` prints the first event and ends: of a change with three
/// lifecycle entries (a revert to a running snapshot, paused) only the first.
#[tokio::test]
async fn rvirsh_event_without_loop_prints_one_line_and_ends() {
    let daemon = rvirt_tests::start_daemon().await;
    let conn = &daemon.client;
    let g = define(conn, "g", 1).await;
    g.create().await.unwrap();
    g.snapshot_create_xml("<domainsnapshot><name>s1</name></domainsnapshot>", 0).await.unwrap();
    let uuid = g.id.uuid.to_string();
    let mut watcher = Watcher::spawn(&daemon.uri, &["--domain", &uuid, "--event", "lifecycle"]);
    let started = tokio::time::Instant::now();
    // Until it has printed its one line: revert (three entries), resume (one).
    let line = loop {
        assert!(started.elapsed() < PROBE_LIMIT, "rvirsh printed no event within {PROBE_LIMIT:?}");
        g.revert_to_snapshot("s1", SnapshotRevertFlags::PAUSED).await.unwrap();
        g.resume().await.unwrap();
        if let Some(line) = watcher.line_within(Duration::from_millis(200)).await {
            break line;
        }
    };
    assert!(
        [event("g", "Stopped Snapshot"), event("g", "Resumed Unpaused")].contains(&line),
        "the first entry of a change: {line}"
    );
    let (rest, stderr, status) = watcher.finish().await;
    assert_eq!(rest, "events received: 1\n\n", "stderr: {stderr}");
    assert!(status.success(), "{status}; stderr: {stderr}");
    daemon.stop().await;
}

/// `--timeout` with no event: virsh's last lines, failure, no error line.
#[tokio::test]
async fn rvirsh_event_timeout_without_events_fails_silently() {
    let daemon = rvirt_tests::start_daemon().await;
    let watcher = Watcher::spawn(&daemon.uri, &["--all", "--loop", "--timeout", "1"]);
    let (rest, stderr, status) = watcher.finish().await;
    assert_eq!(rest, "event loop timed out\nevents received: 0\n\n");
    assert_eq!(stderr, "");
    assert_eq!(status.code(), Some(1));
    daemon.stop().await;
}

/// `--list` (virsh 9.0's names), and the refusals, each one `error:` line and failure.
#[tokio::test]
async fn rvirsh_event_list_and_refusals() {
    let daemon = rvirt_tests::start_daemon().await;
    let (rest, stderr, status) = Watcher::spawn(&daemon.uri, &["--list"]).finish().await;
    assert!(status.success(), "{status}; stderr: {stderr}");
    let names: Vec<&str> = rest.lines().collect();
    assert_eq!(names.len(), 28, "27 names and virsh's empty line: {rest}");
    assert_eq!(&names[..3], ["lifecycle", "reboot", "rtc-change"]);
    assert_eq!(&names[25..], ["memory-failure", "memory-device-size-change", ""]);

    for (args, error) in [
        (&["--list", "--all"][..], "error: Options --list and --all are mutually exclusive\n"),
        (&["--all", "--event", "lifecycle"], "error: Options --all and --event are mutually exclusive\n"),
        (&[], "error: one of --list, --all, or --event <type> is required\n"),
        (&["--event", "nosuch"], "error: unknown event type nosuch\n"),
        (
            &["--all", "--timeout", "0"],
            "error: Numeric value '0' for <timeout> option is malformed or out of range\n",
        ),
        (&["--all", "--domain", "nosuch"], "error: failed to get domain 'nosuch'\n"),
        (
            &["--event", "reboot", "--timeout", "1"],
            "error: event type 'reboot' is not supported by rvirt: its daemon sends only lifecycle events\n",
        ),
    ] {
        let (rest, stderr, status) = Watcher::spawn(&daemon.uri, args).finish().await;
        assert_eq!((rest.as_str(), stderr.as_str()), ("\n", error), "{args:?}");
        assert_eq!(status.code(), Some(1), "{args:?}");
    }
    daemon.stop().await;
}
