//! rvirsh against virsh (libvirt 9.0 test driver), and virsh against rvirtd: the same command
//! sequences, the same output, three ways.
//!
//! Each scenario writes its domain XML files to a temporary folder, runs
//! `virsh -c test:///<folder>/node.xml "<sequence>"` (libvirt's in-process test driver on an
//! empty node), `rvirsh -c <fresh in-process rvirtd> "<sequence>"` and
//! `virsh -c 'test+unix:///default?socket=<another fresh rvirtd's libvirt socket>' "<sequence>"`
//! (unmodified virsh over libvirt's own protocol) from that folder, and requires byte-identical
//! stdout, the same number of `error:` lines on stderr and the same exit status of all three. Normalised on both sides, as documented deliberate differences: `dominfo`'s
//! `CPU time:` and `Security *:` lines (rvirt has no security driver) and the creation-time
//! values of snapshot/checkpoint tables and of snapshot XML's `<creationTime>` (masked; the
//! columns' layout is still compared: the two runs happen in different seconds).
//! Both run in the C.UTF-8 locale and UTC. Without virsh installed (Debian: libvirt-clients)
//! these tests fail, they never skip.
//!
//! virsh 9.0's `managedsave` races with its own progress loop (`virshWatchJob`) and hangs
//! about one run in three against the instant test driver; with `--verbose` a periodic check
//! ends the loop, so the sequences say `managedsave --verbose` (rvirsh prints virsh's final
//! progress line on stderr) and avoid failing managed saves, which can still hang. virsh runs
//! under a time limit and is rerun if it hangs: each run starts from the same empty node, so a
//! rerun is the same experiment.
//!
//! `flags_match_virsh` covers the flags where rvirtd once answered differently from the test
//! driver (dumpxml --update-cpu/--migratable, snapshot-delete --metadata, --children with
//! --children-only, checkpoint --quiesce, snapshot --live/--quiesce/--validate).

use rvirt_tests::{domain_xml, start_daemon, uuid_for, workspace_binary};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

/// How long one virsh run may take before it counts as hung (a run takes well under a second).
const VIRSH_LIMIT: Duration = Duration::from_secs(5);
/// How many times a hung virsh run is tried.
const VIRSH_ATTEMPTS: usize = 6;
/// How long one rvirsh run may take: a hang there is a bug, reported as a failure.
const RVIRSH_LIMIT: Duration = Duration::from_secs(60);

/// How the command line is given.
enum Args {
    /// One argument holding `;`-separated commands.
    Sequence(&'static str),
    /// One command, one word per argument.
    Argv(&'static [&'static str]),
}

/// One comparison.
struct Scenario {
    args: Args,
    /// `-q` before the command.
    quiet: bool,
}

impl Scenario {
    fn sequence(sequence: &'static str) -> Self {
        Scenario { args: Args::Sequence(sequence), quiet: false }
    }

    fn quiet(sequence: &'static str) -> Self {
        Scenario { args: Args::Sequence(sequence), quiet: true }
    }
}

/// What one run produced, normalised.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    error_lines: usize,
    success: bool,
}

/// The XML files every scenario can use, by file name. Fixed UUIDs, `type='test'`.
fn fixtures() -> Vec<(&'static str, String)> {
    let titled = format!(
        "<domain type='test'>\n  <name>gamma</name>\n  <uuid>{}</uuid>\n  \
         <title>The gamma domain</title>\n  <description>Third &amp; last</description>\n  \
         <memory unit='MiB'>128</memory>\n  <currentMemory unit='MiB'>96</currentMemory>\n  \
         <vcpu>2</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n  \
         <devices>\n    <disk type='file' device='disk'>\n      \
         <source file='/var/lib/rvirt/gamma.img'/>\n      \
         <target dev='vdb' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>\n",
        uuid_for(5)
    );
    let wide = format!(
        "<domain type='test'><name>ünï-名前</name><uuid>{}</uuid>\
         <title>Tïtle 日本 &amp; co</title><memory unit='KiB'>100000</memory><vcpu>3</vcpu>\
         <os><type>hvm</type></os></domain>",
        uuid_for(7)
    );
    vec![
        ("node.xml", "<node/>\n".to_owned()),
        ("alpha.xml", domain_xml("alpha", 1)),
        ("beta.xml", domain_xml("Beta", 2)),
        ("charlie.xml", domain_xml("charlie", 3)),
        ("zeta.xml", domain_xml("zeta", 4)),
        ("gamma.xml", titled),
        ("tran.xml", domain_xml("tran", 6)),
        // alpha again, with another memory size: a new definition for the same domain.
        ("alpha2.xml", domain_xml("alpha", 1).replace(">64</memory>", ">96</memory>")),
        // The name alpha with another UUID: a conflict.
        ("alphadup.xml", domain_xml("alpha", 9)),
        // Characters two cells wide and non-ASCII text, in the name and the title.
        ("wide.xml", wide),
        // <on_reboot> destroy and preserve stop the domain on reboot (trb is created transient).
        ("rb.xml", on_reboot("rb", 11, "destroy")),
        ("rp.xml", on_reboot("rp", 12, "preserve")),
        ("trb.xml", on_reboot("trb", 13, "destroy")),
    ]
}

/// `domain_xml(name, n)` with `<on_reboot>action</on_reboot>`.
fn on_reboot(name: &str, n: u32, action: &str) -> String {
    domain_xml(name, n).replace("<devices>", &format!("<on_reboot>{action}</on_reboot><devices>"))
}

/// The virsh binary, or a failure saying how to get it: these tests never skip.
fn virsh() -> &'static str {
    match std::process::Command::new("virsh").arg("--version").output() {
        Ok(output) if output.status.success() => "virsh",
        Ok(output) => panic!(
            "`virsh --version` failed ({}): the rvirsh differential tests need libvirt's virsh 9.0",
            output.status
        ),
        Err(error) => panic!(
            "virsh is not installed ({error}): the rvirsh differential tests compare against it; \
             install libvirt-clients (apt-get install libvirt-clients)"
        ),
    }
}

/// Drops the lines that differ by design and masks creation times (same width, so table
/// layout is still compared).
fn normalise(stdout: &str) -> String {
    let kept: String = stdout
        .split_inclusive('\n')
        .filter(|line| {
            !["CPU time:", "Security model:", "Security DOI:", "Security label:"]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .collect();
    mask_creation_times(&mask_times(&kept))
}

/// Replaces the seconds in every `<creationTime>…</creationTime>` with `T`.
fn mask_creation_times(text: &str) -> String {
    const OPEN: &str = "<creationTime>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let (before, after) = rest.split_at(start + OPEN.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with("</creationTime>") {
            out.push('T');
            rest = &after[digits..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every `YYYY-MM-DD HH:MM:SS +ZZZZ` with a placeholder of the same length.
fn mask_times(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd sdddd";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let candidate = bytes.get(index..index + SHAPE.len());
        let matches = candidate.is_some_and(|window| {
            window.iter().zip(SHAPE).all(|(byte, shape)| match shape {
                b'd' => byte.is_ascii_digit(),
                b's' => *byte == b'+' || *byte == b'-',
                other => byte == other,
            })
        });
        if matches {
            out.push_str("YYYY-MM-DD HH:MM:SS +ZZZZ");
            index += SHAPE.len();
        } else {
            let c = text[index..].chars().next().expect("char boundary");
            out.push(c);
            index += c.len_utf8();
        }
    }
    out
}

fn outcome(output: Output) -> Outcome {
    let stderr = String::from_utf8_lossy(&output.stderr);
    Outcome {
        stdout: normalise(&String::from_utf8_lossy(&output.stdout)),
        error_lines: stderr.lines().filter(|line| line.starts_with("error:")).count(),
        success: output.status.success(),
    }
}

/// Runs a program with the scenario's arguments from `dir`, in a fixed locale and time zone;
/// `None` if it did not finish within `limit` (it is killed then).
async fn run(
    program: &Path,
    uri: &str,
    dir: &Path,
    scenario: &Scenario,
    limit: Duration,
) -> Option<(Outcome, String)> {
    let mut command = Command::new(program);
    command
        .kill_on_drop(true)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("VIRSH_DEFAULT_CONNECT_URI")
        .arg("-c")
        .arg(uri);
    if scenario.quiet {
        command.arg("-q");
    }
    match scenario.args {
        Args::Sequence(sequence) => command.arg(sequence),
        Args::Argv(words) => command.args(words),
    };
    // tokio's process keeps the in-process daemon served while the child runs.
    let output = tokio::time::timeout(limit, command.output())
        .await
        .ok()?
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", program.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Some((outcome(output), stderr))
}

/// virsh's outcome on libvirt's test driver, rerun if it hangs (see the module comment).
async fn run_virsh(dir: &Path, scenario: &Scenario) -> (Outcome, String) {
    let virsh = virsh();
    let test_uri = format!("test://{}/node.xml", dir.display());
    for _ in 0..VIRSH_ATTEMPTS {
        if let Some(result) = run(Path::new(virsh), &test_uri, dir, scenario, VIRSH_LIMIT).await {
            return result;
        }
        eprintln!("virsh hung for {VIRSH_LIMIT:?}; running it again");
    }
    panic!("virsh hung {VIRSH_ATTEMPTS} times in a row on this sequence")
}

/// virsh's outcome on a fresh rvirtd's libvirt-protocol socket, rerun (on another fresh daemon)
/// if virsh hangs in its own managedsave race.
async fn run_virsh_on_rvirtd(dir: &Path, scenario: &Scenario) -> (Outcome, String) {
    let virsh = virsh();
    for _ in 0..VIRSH_ATTEMPTS {
        let daemon = start_daemon().await;
        let result = run(Path::new(virsh), &daemon.native_uri(false), dir, scenario, VIRSH_LIMIT).await;
        daemon.stop().await;
        if let Some(result) = result {
            return result;
        }
        eprintln!("virsh on rvirtd hung for {VIRSH_LIMIT:?}; running it again");
    }
    panic!("virsh on rvirtd hung {VIRSH_ATTEMPTS} times in a row on this sequence")
}

/// rvirsh's outcome against `uri`.
async fn run_rvirsh(uri: &str, dir: &Path, scenario: &Scenario) -> (Outcome, String) {
    run(&workspace_binary("rvirsh"), uri, dir, scenario, RVIRSH_LIMIT)
        .await
        .unwrap_or_else(|| panic!("rvirsh did not finish within {RVIRSH_LIMIT:?}"))
}

/// A line diff (longest common subsequence), `-` for virsh's lines, `+` for rvirsh's.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (expected.split_inclusive('\n').collect(), actual.split_inclusive('\n').collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let show = |line: &str| format!("{:?}", line);
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", show(a[i])));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", show(a[i])));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", show(b[j])));
            j += 1;
        }
    }
    out
}

/// Runs the scenario on both and compares.
async fn check(scenario: Scenario) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let dir = folder.path();
    for (name, content) in fixtures() {
        std::fs::write(dir.join(name), content).expect("write fixture");
    }
    let (expected, virsh_stderr) = run_virsh(dir, &scenario).await;

    let daemon = start_daemon().await;
    let (actual, rvirsh_stderr) = run_rvirsh(&daemon.uri, dir, &scenario).await;
    daemon.stop().await;
    let (native, native_stderr) = run_virsh_on_rvirtd(dir, &scenario).await;

    assert!(
        expected == native,
        "virsh on rvirtd differs from virsh on libvirt's test driver\n\
         --- stdout (- on libvirt, + on rvirtd)\n{}\
         --- error lines: {} and {}; success: {} and {}\n\
         --- virsh on libvirt stderr\n{virsh_stderr}--- virsh on rvirtd stderr\n{native_stderr}",
        diff(&expected.stdout, &native.stdout),
        expected.error_lines,
        native.error_lines,
        expected.success,
        native.success,
    );
    assert!(
        expected == actual,
        "rvirsh differs from virsh\n--- stdout (- virsh, + rvirsh)\n{}\
         --- error lines: virsh {} rvirsh {}; success: virsh {} rvirsh {}\n\
         --- virsh stderr\n{virsh_stderr}--- rvirsh stderr\n{rvirsh_stderr}",
        diff(&expected.stdout, &actual.stdout),
        expected.error_lines,
        actual.error_lines,
        expected.success,
        actual.success,
    );
}

#[tokio::test]
async fn list_filters_and_layouts_match_virsh() {
    check(Scenario::sequence(
        "list; list --all; define alpha.xml; define beta.xml; define charlie.xml; \
         define zeta.xml; start charlie; start alpha; suspend charlie; start zeta; \
         list; list --all; list --inactive; list --persistent; list --transient; \
         list --all --persistent; list --all --transient; list --inactive --transient; \
         list --state-running; list --state-paused; list --state-shutoff; list --state-other; \
         list --state-running --state-paused; list --state-running --state-shutoff; \
         list --all --state-running --state-shutoff; list --all --state-other; \
         list --inactive --all; list --state-shutoff --all; \
         list --all --autostart; list --all --no-autostart; \
         list --all --with-snapshot; list --all --without-snapshot; \
         list --all --with-checkpoint; list --all --without-checkpoint; \
         list --all --with-managed-save; list --all --without-managed-save; \
         list --all --managed-save; list --all --title; list --title; \
         list --all --name; list --all --uuid; list --all --id; list --id; list --name; \
         list --all --uuid --name; list --all --name --id; list --all --uuid --id; \
         list --all --uuid --name --id; list --inactive --id; list --all --name --title; \
         list --all --table; list --table --title",
    ))
    .await;
}

#[tokio::test]
async fn list_option_conflicts_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; list --table --name; list --table --uuid; list --table --id; \
         list --table --uuid --name --id; list --all",
    ))
    .await;
}

#[tokio::test]
async fn lifecycle_and_queries_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; define beta.xml; domstate alpha; domstate alpha --reason; \
         dominfo alpha; domid alpha; domuuid alpha; start alpha; domstate alpha --reason; \
         domid alpha; domname 1; domuuid 1; domid 52540000-0000-4000-8000-000000000001; \
         domname 52540000-0000-4000-8000-000000000001; dominfo 1; \
         suspend alpha; domstate alpha --reason; list; resume 1; domstate alpha --reason; \
         shutdown alpha; domstate alpha --reason; \
         start 52540000-0000-4000-8000-000000000001; domstate --domain alpha --reason; \
         destroy 2; domstate alpha --reason; start alpha; suspend alpha; shutdown alpha; \
         domstate alpha --reason; start --domain alpha; destroy --domain=alpha; \
         dominfo Beta; dominfo 52540000-0000-4000-8000-000000000002; list --all",
    ))
    .await;
}

#[tokio::test]
async fn failing_commands_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; start alpha; start alpha; suspend alpha; suspend alpha; \
         resume alpha; resume alpha; destroy alpha; destroy alpha; shutdown alpha; \
         suspend alpha; resume alpha; dominfo nope; domstate 7; \
         domid 1; domname alpha; domuuid 52540000-0000-4000-8000-000000000001; \
         define missing.xml; undefine nope; snapshot-delete alpha nope; \
         snapshot-delete alpha; checkpoint-delete alpha nope; checkpoint-delete alpha; \
         dompmsuspend alpha sideways; snapshot-create-as alpha ''; \
         checkpoint-create-as alpha c1; list --all",
    ))
    .await;
}

#[tokio::test]
async fn failure_as_last_command_fails_the_run() {
    check(Scenario::sequence("define alpha.xml; start alpha; start alpha")).await;
}

#[tokio::test]
async fn parse_errors_run_nothing() {
    for sequence in [
        "define alpha.xml; lst",
        "define alpha.xml; start",
        "define alpha.xml; list --all --all",
        "define alpha.xml; list --all=yes",
        "define alpha.xml; dominfo alpha extra",
        "define alpha.xml; dominfo --domain",
        "define alpha.xml; dompmsuspend alpha mem 10",
        "define alpha.xml; list --nosuch",
        "define alpha.xml; snapshot-create-as alpha \"unterminated",
        "define alpha.xml; snapshot-dumpxml alpha",
        "define alpha.xml; snapshot-dumpxml alpha s1 //name",
        "define alpha.xml; reset alpha extra",
        "define alpha.xml; reboot alpha acpi extra",
        "define alpha.xml; snapshot-revert alpha s1 --nosuch",
    ] {
        check(Scenario::sequence(sequence)).await;
    }
}

#[tokio::test]
async fn quoting_comments_and_double_dash_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml;;define 'beta.xml' # a comment; list\n\
         list --all; snapshot-create-as alpha 's one' \"say \\\"hi\\\" & <bye>\"; \
         snapshot-list alpha --name; snapshot-create-as -- alpha --odd; \
         snapshot-list alpha --name",
    ))
    .await;
}

#[tokio::test]
async fn managed_save_matches_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; define beta.xml; start alpha; start Beta; managedsave alpha --verbose; \
         list; list --all; list --all --managed-save; list --all --with-managed-save; \
         list --with-managed-save; list --all --without-managed-save; \
         list --inactive --with-managed-save --managed-save; \
         domstate alpha --reason; dominfo alpha; \
         managedsave-remove alpha; managedsave-remove alpha; dominfo alpha; \
         list --all --managed-save; managedsave 2 --verbose; list --all --managed-save; \
         undefine Beta; list --all; undefine Beta --managed-save; list --all; \
         start alpha; managedsave --domain alpha --verbose; start alpha; domstate alpha --reason; \
         list --all --with-managed-save; managedsave alpha --verbose; start --force-boot alpha; \
         domstate alpha --reason; suspend alpha; managedsave alpha --verbose; \
         domstate alpha --reason; list --all --managed-save",
    ))
    .await;
}

#[tokio::test]
async fn autostart_matches_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; define beta.xml; autostart alpha; list --all --autostart; \
         list --all --no-autostart; list --autostart; start alpha; list --autostart; \
         list --no-autostart; dominfo alpha; autostart --disable alpha; \
         list --all --autostart; autostart --domain Beta; dominfo Beta; \
         list --all --autostart --state-shutoff",
    ))
    .await;
}

#[tokio::test]
async fn snapshots_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; define beta.xml; snapshot-list alpha; snapshot-list alpha --name; \
         snapshot-create-as alpha s1 --description 'first <one> & \"quoted\"'; \
         snapshot-create-as alpha S2; snapshot-create-as --domain Beta --name b1; \
         snapshot-list alpha --name; snapshot-list alpha; snapshot-list alpha --parent; \
         snapshot-list alpha --name --parent; \
         list --all --with-snapshot; list --all --without-snapshot; list --with-snapshot; \
         start alpha; list --with-snapshot; snapshot-create-as alpha s3 --halt; \
         domstate alpha --reason; snapshot-list alpha --parent; \
         snapshot-create-as alpha s1; snapshot-delete alpha S2; snapshot-list alpha --parent; \
         snapshot-delete alpha --current; snapshot-list alpha --parent; \
         snapshot-create-as alpha s4; snapshot-create-as alpha s5; \
         snapshot-delete alpha s4 --children-only; snapshot-list alpha --name; \
         snapshot-delete alpha s1 --children; snapshot-list alpha --name; \
         snapshot-create-as alpha --print-xml x 'y & z'; snapshot-create-as alpha --print-xml; \
         snapshot-create-as Beta b2; undefine Beta; list --all; \
         undefine Beta --snapshots-metadata; list --all",
    ))
    .await;
}

#[tokio::test]
async fn checkpoints_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; checkpoint-create-as alpha c0; checkpoint-list alpha; \
         start alpha; checkpoint-create-as alpha c1 'first one'; checkpoint-create-as alpha c2; \
         checkpoint-create-as --domain alpha --name c3 --description '<3>'; \
         checkpoint-list alpha; checkpoint-list alpha --parent; checkpoint-list alpha --name; \
         checkpoint-list alpha --name --parent; list --with-checkpoint; \
         list --all --without-checkpoint; snapshot-create-as alpha s1; \
         checkpoint-create-as alpha c1; checkpoint-delete alpha c2; \
         checkpoint-list alpha --parent; checkpoint-delete alpha c1 --children-only; \
         checkpoint-list alpha --name; checkpoint-delete alpha c1 --children; \
         checkpoint-list alpha; checkpoint-list alpha --name; list --with-checkpoint; \
         checkpoint-create-as alpha --print-xml c9 'x&y'; \
         snapshot-create-as alpha s1; list --with-snapshot",
    ))
    .await;
}

#[tokio::test]
async fn flags_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; dumpxml alpha --update-cpu; dumpxml alpha --migratable; \
         snapshot-create-as alpha a --live; snapshot-create-as alpha b --quiesce; \
         snapshot-create-as alpha c --validate; snapshot-list alpha --name --parent; \
         snapshot-delete alpha b --metadata; snapshot-delete alpha a --children --children-only; \
         snapshot-list alpha --name; snapshot-delete alpha a --children; \
         start alpha; checkpoint-create-as alpha k --quiesce; checkpoint-list alpha --name; \
         checkpoint-delete alpha k --children --children-only; checkpoint-list alpha --name",
    ))
    .await;
}

#[tokio::test]
async fn transient_domains_match_virsh() {
    check(Scenario::sequence(
        "create tran.xml; list; list --transient; list --persistent; list --all --transient; \
         list --inactive --transient; dominfo tran; domstate tran --reason; \
         snapshot-create-as tran s1 --halt; list --all --with-snapshot; suspend tran; \
         list --transient --state-paused; destroy tran; list --all; domstate tran; \
         create tran.xml; shutdown tran; list --all; \
         define alpha.xml; start alpha; undefine alpha; list --transient; list --all; \
         dominfo alpha; list --all --persistent; destroy alpha; list --all; domstate alpha",
    ))
    .await;
}

#[tokio::test]
async fn dumpxml_and_titles_match_virsh() {
    check(Scenario::sequence(
        "define gamma.xml; define alpha.xml; dumpxml gamma; dumpxml --inactive gamma; \
         dumpxml alpha; dominfo gamma; start gamma; dumpxml gamma; dumpxml gamma --inactive; \
         list --title; list --all --title; list --title --uuid; list --title --name",
    ))
    .await;
}

#[tokio::test]
async fn quiet_mode_matches_virsh() {
    check(Scenario::quiet(
        "define alpha.xml; define beta.xml; start alpha; list; list --all; list --all --title; \
         suspend alpha; resume alpha; managedsave alpha --verbose; managedsave-remove alpha; \
         autostart alpha; dominfo alpha; domstate alpha --reason; domid alpha; \
         snapshot-create-as alpha s1; snapshot-list alpha; snapshot-list alpha --name; \
         snapshot-delete alpha s1; start Beta; checkpoint-create-as Beta c1; \
         checkpoint-list Beta --parent; checkpoint-delete Beta c1; list --inactive; \
         undefine alpha; destroy Beta; list --all",
    ))
    .await;
}

#[tokio::test]
async fn argv_form_matches_virsh() {
    for words in
        [&["list", "--all"][..], &["define", "alpha.xml"], &["dominfo", "nope"], &["list", "--all;", "list"]]
    {
        check(Scenario { args: Args::Argv(words), quiet: false }).await;
    }
}

/// dompmsuspend/dompmwakeup cannot be compared: libvirt's test driver does not implement them.
/// rvirt implements them as the QEMU driver does; virsh's messages are checked here alone.
#[tokio::test]
async fn pm_suspend_and_wakeup_print_virsh_messages() {
    let folder = tempfile::tempdir().expect("temporary folder");
    for (name, content) in fixtures() {
        std::fs::write(folder.path().join(name), content).expect("write fixture");
    }
    let daemon = start_daemon().await;
    let scenario = Scenario::sequence(
        "define alpha.xml; start alpha; dompmsuspend alpha mem --duration 0; \
         domstate alpha; list --state-other; dompmwakeup alpha; domstate alpha",
    );
    let (actual, stderr) = run_rvirsh(&daemon.uri, folder.path(), &scenario).await;
    daemon.stop().await;
    assert_eq!(
        actual,
        Outcome {
            stdout: "Domain 'alpha' defined from alpha.xml\n\n\
                     Domain 'alpha' started\n\n\
                     Domain 'alpha' successfully suspended\n\
                     pmsuspended\n\n \
                     Id   Name    State\n---------------------------\n \
                     1    alpha   pmsuspended\n\n\
                     Domain 'alpha' successfully woken up\n\
                     running\n\n"
                .to_owned(),
            error_lines: 0,
            success: true,
        },
        "rvirsh stderr: {stderr}"
    );
}

#[test]
fn times_are_masked_and_fixed_lines_dropped() {
    assert_eq!(
        normalise(" s1   2026-11-27 02:45:54 +0000   shutoff\nCPU time:  1.0s\nx\n"),
        " s1   YYYY-MM-DD HH:MM:SS +ZZZZ   shutoff\nx\n"
    );
    assert_eq!(
        normalise("  <creationTime>1796172102</creationTime>\n<creationTime>x</creationTime>\n"),
        "  <creationTime>T</creationTime>\n<creationTime>x</creationTime>\n"
    );
    assert_eq!(diff("a\nb\n", "a\nc\n"), "  \"a\\n\"\n- \"b\\n\"\n+ \"c\\n\"\n");
}

#[tokio::test]
async fn undefine_flags_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; undefine alpha --nvram; undefine alpha --keep-nvram --tpm; \
         define alpha.xml; undefine alpha --checkpoints-metadata; define alpha.xml; \
         undefine alpha --keep-tpm; define alpha.xml; undefine alpha --nvram --keep-nvram; \
         list --all; start alpha; checkpoint-create-as alpha c1; \
         undefine alpha --checkpoints-metadata; list --all; list --all --with-checkpoint; \
         destroy alpha; list --all; create tran.xml; undefine tran; undefine tran; list --all",
    ))
    .await;
}

#[tokio::test]
async fn redefinition_and_conflicts_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; define alpha.xml; start alpha; define alpha2.xml; dumpxml alpha; \
         dumpxml alpha --inactive; dominfo alpha; destroy alpha; dumpxml alpha; dominfo alpha; \
         define alphadup.xml; create alphadup.xml; create alpha.xml; list --all; \
         dominfo alpha; create alpha.xml; destroy alpha; list --all; dominfo alpha",
    ))
    .await;
}

#[tokio::test]
async fn wide_characters_match_virsh() {
    check(Scenario::sequence(
        "define wide.xml; define alpha.xml; list --all --title; list --all --name; \
         dominfo ünï-名前; start ünï-名前; list --title; domname 1; dumpxml ünï-名前; \
         snapshot-create-as ünï-名前 'snäp 名'; snapshot-list ünï-名前; \
         snapshot-list ünï-名前 --name",
    ))
    .await;
}

/// A tree of six snapshots: r -> (a -> (a1, a2), b -> bp), taken shut off but for b (running)
/// and bp (paused); a2's parent set by making a current again (`snapshot-current
/// --snapshotname`), b's by reverting to r. bp is current.
const SNAPSHOT_TREE: &str = "define alpha.xml; snapshot-create-as alpha r; snapshot-create-as alpha a; \
     snapshot-create-as alpha a1; snapshot-current alpha --snapshotname a; snapshot-create-as alpha a2; \
     snapshot-revert alpha r; start alpha; snapshot-create-as alpha b; suspend alpha; \
     snapshot-create-as alpha bp";

/// `SNAPSHOT_TREE` and then `commands`.
fn on_snapshot_tree(commands: &str) -> &'static str {
    Box::leak(format!("{SNAPSHOT_TREE}; {commands}").into_boxed_str())
}

#[tokio::test]
async fn reboot_and_reset_match_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; reboot alpha; reset alpha; start alpha; reboot alpha; \
         domstate alpha --reason; domid alpha; suspend alpha; reboot alpha; domstate alpha --reason; \
         suspend alpha; reset alpha; domstate alpha --reason; domid alpha; resume alpha; reset 1; \
         domstate alpha --reason; reboot alpha --mode acpi; reboot alpha --mode agent; \
         reboot alpha --mode initctl,signal; reboot alpha --mode paravirt; \
         reboot --domain alpha --mode=acpi,agent; reboot alpha acpi; reboot 1; \
         reboot 52540000-0000-4000-8000-000000000001; reboot alpha --mode bogus; \
         reboot alpha --mode acpi,; reboot alpha --mode ''; reboot alpha --mode ,; \
         define rb.xml; start rb; reboot rb; domstate rb --reason; list --all; \
         define rp.xml; start rp; suspend rp; reboot rp; domstate rp --reason; \
         create trb.xml; list --all; reboot trb; list --all; domstate trb; \
         reboot nope; reset nope; destroy alpha; reboot alpha; reset alpha; list --all",
    ))
    .await;
}

#[tokio::test]
async fn snapshot_revert_matches_virsh() {
    check(Scenario::sequence(
        "define alpha.xml; snapshot-create-as alpha off1; start alpha; snapshot-create-as alpha run1; \
         suspend alpha; snapshot-create-as alpha pau1; \
         snapshot-revert alpha off1; domstate alpha --reason; domid alpha; snapshot-current alpha --name; \
         snapshot-revert alpha off1 --running; domstate alpha --reason; \
         snapshot-revert alpha off1 --paused; domstate alpha --reason; \
         snapshot-revert alpha run1; domstate alpha --reason; domid alpha; \
         snapshot-revert alpha run1; domstate alpha --reason; domid alpha; \
         snapshot-revert alpha run1 --paused; domstate alpha --reason; domid alpha; \
         snapshot-revert alpha pau1 --running; domstate alpha --reason; \
         snapshot-revert alpha pau1; domstate alpha --reason; domid alpha; \
         snapshot-revert alpha run1 --force; domstate alpha --reason; snapshot-current alpha --name; \
         snapshot-revert --current alpha; domid alpha; \
         snapshot-revert --domain alpha --snapshotname off1 --paused --force; domstate alpha --reason; \
         list --all; snapshot-revert alpha pau1 --running --force; domstate alpha --reason; \
         snapshot-revert alpha nope; snapshot-revert alpha; snapshot-revert alpha off1 --current; \
         snapshot-revert alpha run1 --running --paused; snapshot-revert alpha run1 --reset-nvram; \
         snapshot-revert nope off1; domstate alpha --reason; snapshot-current alpha --name; \
         snapshot-list alpha --parent; undefine alpha; list --all --transient; \
         snapshot-revert alpha off1; domstate alpha --reason; snapshot-revert alpha run1 --paused; \
         domstate alpha --reason; domid alpha; snapshot-current alpha --name; list --all",
    ))
    .await;
}

#[tokio::test]
async fn snapshot_info_current_parent_and_dumpxml_match_virsh() {
    check(Scenario::sequence(on_snapshot_tree(
        "snapshot-info alpha r; snapshot-info alpha --current; snapshot-info alpha a; \
         snapshot-info --domain alpha --snapshotname bp; snapshot-info alpha nope; snapshot-info alpha; \
         snapshot-info alpha r --current; snapshot-info nope r; \
         snapshot-parent alpha a1; snapshot-parent alpha r; snapshot-parent alpha --current; \
         snapshot-parent alpha nope; snapshot-parent alpha; snapshot-parent alpha b --current; \
         snapshot-current alpha; snapshot-current alpha --name; snapshot-current alpha --security-info; \
         snapshot-current alpha --snapshotname a1; snapshot-current alpha --name; snapshot-list alpha --tree; \
         snapshot-current alpha a; snapshot-info alpha a1; snapshot-current alpha --snapshotname nope; \
         snapshot-current alpha --name --snapshotname a; snapshot-current alpha --snapshotname ''; \
         snapshot-dumpxml alpha a1; snapshot-dumpxml alpha bp --security-info; snapshot-dumpxml alpha b --wrap; \
         snapshot-dumpxml --domain alpha --snapshotname r; snapshot-dumpxml alpha nope; snapshot-dumpxml nope r; \
         snapshot-delete alpha a; snapshot-parent alpha a1; snapshot-info alpha r; snapshot-list alpha --tree; \
         snapshot-delete alpha --current; snapshot-current alpha --name; snapshot-info alpha r; \
         define beta.xml; snapshot-current Beta; snapshot-current Beta --name; snapshot-info Beta --current; \
         snapshot-parent Beta --current; snapshot-list Beta --current; snapshot-list Beta --tree; \
         snapshot-create-as Beta only; snapshot-current Beta --name; snapshot-delete Beta only; \
         snapshot-current Beta; define gamma.xml; snapshot-create-as gamma g1 --description 'one & <two>'; \
         start gamma; snapshot-create-as gamma g2; snapshot-dumpxml gamma g1; snapshot-dumpxml gamma g2; \
         snapshot-current gamma",
    )))
    .await;
}

#[tokio::test]
async fn snapshot_list_options_match_virsh() {
    check(Scenario::sequence(on_snapshot_tree(
        "snapshot-list alpha; snapshot-list alpha --parent; snapshot-list alpha --roots; \
         snapshot-list alpha --leaves; snapshot-list alpha --no-leaves; snapshot-list alpha --leaves --no-leaves; \
         snapshot-list alpha --metadata; snapshot-list alpha --no-metadata; \
         snapshot-list alpha --metadata --no-metadata; snapshot-list alpha --inactive; \
         snapshot-list alpha --active; snapshot-list alpha --disk-only; snapshot-list alpha --inactive --active; \
         snapshot-list alpha --active --disk-only; snapshot-list alpha --internal; snapshot-list alpha --external; \
         snapshot-list alpha --internal --external; snapshot-list alpha --tree; snapshot-list alpha --name; \
         snapshot-list alpha --from a; snapshot-list alpha --from r; snapshot-list alpha --from r --descendants; \
         snapshot-list alpha --current; snapshot-list alpha --current --descendants; \
         snapshot-list alpha --topological; snapshot-list alpha --topological --name; \
         snapshot-list alpha --tree --from r; snapshot-list alpha --tree --from a; snapshot-list alpha --tree --current; \
         snapshot-list alpha --tree --from r --descendants; snapshot-list alpha --tree --topological; \
         snapshot-list alpha --tree --metadata; snapshot-list alpha --tree --no-metadata; \
         snapshot-list alpha --roots --name; snapshot-list alpha --roots --topological; \
         snapshot-list alpha --roots --leaves; snapshot-list alpha --roots --no-leaves; \
         snapshot-list alpha --from r --name --parent; snapshot-list alpha --inactive --parent; \
         snapshot-list alpha --from r --descendants --topological; snapshot-list alpha --from bp; \
         snapshot-list alpha --from bp --tree; snapshot-list alpha --leaves --inactive --name; \
         snapshot-list alpha --from a --leaves --topological --parent; snapshot-list alpha --from r --leaves; \
         snapshot-list alpha --from r --descendants --leaves; snapshot-list --domain alpha --from=a --name; \
         snapshot-list alpha --descendants; snapshot-list alpha --tree --name; snapshot-list alpha --parent --roots; \
         snapshot-list alpha --parent --tree; snapshot-list alpha --roots --tree; snapshot-list alpha --roots --from r; \
         snapshot-list alpha --roots --current; snapshot-list alpha --tree --leaves; \
         snapshot-list alpha --tree --external; snapshot-list alpha --from nope; snapshot-list alpha --from r --current; \
         snapshot-list alpha --from ''; snapshot-list nope; \
         snapshot-delete alpha a; snapshot-list alpha --tree; snapshot-list alpha --parent; \
         snapshot-delete alpha r --children-only; snapshot-list alpha --tree; snapshot-list alpha --roots",
    )))
    .await;
}

#[tokio::test]
async fn quiet_snapshot_commands_match_virsh() {
    check(Scenario::quiet(on_snapshot_tree(
        "snapshot-list alpha; snapshot-list alpha --parent; snapshot-list alpha --tree; \
         snapshot-list alpha --tree --current; snapshot-list alpha --from r; snapshot-list alpha --topological; \
         snapshot-list alpha --name; snapshot-info alpha r; snapshot-parent alpha a1; snapshot-current alpha --name; \
         snapshot-current alpha --snapshotname a1; snapshot-current alpha; snapshot-revert alpha a; \
         snapshot-dumpxml alpha a2; reboot alpha; reset alpha; list --all",
    )))
    .await;
}
