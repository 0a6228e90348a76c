//! `event`: virsh 9.0's `cmdEvent` (tools/virsh-domain-event.c) for the lifecycle event, over
//! the client library's `Informer`: `event --list`, and `event [--domain DOM] [--event
//! lifecycle] [--all] [--loop] [--timeout SECS] [--timestamp]`, which waits for lifecycle
//! events and prints one line per event as virsh does, then `events received: N`.
//!
//! The informer follows the daemon from the state it had when the watch began: it prints
//! nothing for that state (virsh prints only what happens after it registers), and it resumes
//! from its last generation after a dropped connection, so no event is printed twice or lost.
//! SIGINT ends the wait as virsh's does (`event loop interrupted`); see `Interrupts`.
//!
//! Differs from libvirt: rvirt's daemon sends only lifecycle events, so `--all` waits for those
//! alone, and `--event` with any other of virsh's event names fails (after the checks virsh
//! makes before it registers), where libvirt would register and wait.
//!
//! Differs from libvirt: virsh ends with an error when its connection breaks; rvirsh reconnects
//! and goes on. Only when the daemon's history no longer reaches back (or the daemon restarted)
//! does the informer list again, and the events in between are not printed.

use super::parser::{CmdDef, Command, Group, flag, int, string};
use super::{By, Session, Unsuccessful, parse_c_int};
use anyhow::Context as _;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rvirt::{EventType, ListFlags, Update};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::signal::unix::SignalKind;
use tokio::sync::watch;
use uuid::Uuid;

/// The command, with its options in virsh 9.0's order.
pub(super) static COMMANDS: &[CmdDef] = &[CmdDef {
    name: "event",
    opts: &[
        string("domain"),
        string("event"),
        flag("all"),
        flag("loop"),
        int("timeout"),
        flag("list"),
        flag("timestamp"),
    ],
    group: Group::Event,
}];

/// virsh 9.0's domain event names (`virshDomainEventCallbacks`), in its order: what
/// `event --list` prints and what `--event` accepts.
const EVENT_NAMES: &[&str] = &[
    "lifecycle",
    "reboot",
    "rtc-change",
    "watchdog",
    "io-error",
    "graphics",
    "io-error-reason",
    "control-error",
    "block-job",
    "disk-change",
    "tray-change",
    "pm-wakeup",
    "pm-suspend",
    "balloon-change",
    "pm-suspend-disk",
    "device-removed",
    "block-job-2",
    "tunable",
    "agent-lifecycle",
    "device-added",
    "migration-iteration",
    "job-completed",
    "device-removal-failed",
    "metadata-change",
    "block-threshold",
    "memory-failure",
    "memory-device-size-change",
];

/// The longest `--timeout`: seconds that still fit an `int` of milliseconds, as
/// `vshCommandOptTimeoutToMs` allows.
const MAX_TIMEOUT_SECONDS: i32 = i32::MAX / 1000;

/// Why the wait ended (virsh's `vshEventWait` results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The first event, without `--loop`.
    Done,
    /// SIGINT.
    Interrupted,
    /// `--timeout` passed.
    TimedOut,
}

/// Runs `event`.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    let out = &session.out;
    for (first, second) in [("all", "event"), ("list", "all"), ("list", "event")] {
        if command.has(first) && command.has(second) {
            anyhow::bail!("Options --{first} and --{second} are mutually exclusive");
        }
    }
    if command.has("list") {
        out.print(&EVENT_NAMES.iter().map(|name| format!("{name}\n")).collect::<String>());
        return Ok(());
    }
    let event_name = command.string_req("event")?;
    if event_name.is_none() && !command.has("all") {
        anyhow::bail!("one of --list, --all, or --event <type> is required");
    }
    if let Some(name) = event_name
        && !EVENT_NAMES.contains(&name)
    {
        anyhow::bail!("unknown event type {name}");
    }
    let timeout = timeout(command.string("timeout"))?;
    let only =
        if command.has("domain") { Some(session.domain(command, By::ANY).await?.0.id.uuid) } else { None };
    if let Some(name) = event_name.filter(|name| *name != "lifecycle") {
        // Where virsh's registration would fail.
        anyhow::bail!(
            "event type '{name}' is not supported by rvirt: its daemon sends only lifecycle events"
        );
    }
    let options = Options { only, repeat: command.has("loop"), timestamp: command.has("timestamp") };
    let (end, count) = wait(session, &options, timeout).await?;
    match end {
        End::Interrupted => out.print("event loop interrupted\n"),
        End::TimedOut => out.print("event loop timed out\n"),
        End::Done => {}
    }
    out.print(&format!("events received: {count}\n"));
    // As virsh: a wait that saw no event is a failure, with no error message.
    if count == 0 { Err(Unsuccessful.into()) } else { Ok(()) }
}

/// `--timeout`, as `vshCommandOptTimeoutToMs` reads it: a base-10 `int` of seconds, at least 1.
fn timeout(text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    let Some(text) = text else {
        return Ok(None);
    };
    match parse_c_int(text) {
        Some(seconds @ 1..=MAX_TIMEOUT_SECONDS) => Ok(Some(Duration::from_secs(seconds as u64))),
        _ => anyhow::bail!("Numeric value '{text}' for <timeout> option is malformed or out of range"),
    }
}

/// What `wait` prints.
#[derive(Debug)]
struct Options {
    /// `--domain`: only this domain's events.
    only: Option<Uuid>,
    /// `--loop`: every event, not only the first.
    repeat: bool,
    /// `--timestamp`.
    timestamp: bool,
}

/// Prints lifecycle events as they come until the first (or, with `--loop`, until `timeout`
/// or SIGINT). Returns why it ended and how many events it printed.
async fn wait(session: &Session, options: &Options, timeout: Option<Duration>) -> anyhow::Result<(End, u64)> {
    let interrupts = Interrupts::get()?;
    let mut interrupted = interrupts.count.subscribe();
    let _waiting = interrupts.waiting();
    let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
    let timed_out = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timed_out);
    let mut informer = session.conn.watch_all(ListFlags::empty());
    let mut count = 0;
    loop {
        let update = tokio::select! {
            update = informer.next() => update.context("failed to watch domain events")?,
            () = &mut timed_out => return Ok((End::TimedOut, count)),
            _ = interrupted.changed() => return Ok((End::Interrupted, count)),
        };
        // The initial state (and a relist's) is what was, not what happened; bookmarks say
        // nothing happened.
        let Update::Changed(event) = update else {
            continue;
        };
        let Some(domain) = &event.domain else {
            continue;
        };
        if options.only.is_some_and(|uuid| uuid != domain.domain.uuid) {
            continue;
        }
        for &(event_type, detail) in &event.lifecycle {
            let stamp = options.timestamp.then(|| timestamp(Timestamp::now()));
            session.out.print(&line(stamp.as_deref(), &domain.domain.name, event_type, detail));
            count += 1;
            if !options.repeat {
                return Ok((End::Done, count));
            }
        }
    }
}

/// One event as `virshEventLifecyclePrint` prints it, after the `--timestamp` stamp if any.
fn line(stamp: Option<&str>, name: &str, event_type: EventType, detail: i32) -> String {
    let prefix = stamp.map(|stamp| format!("{stamp}: ")).unwrap_or_default();
    format!(
        "{prefix}event 'lifecycle' for domain '{name}': {} {}\n",
        event_type.virsh_name(),
        event_type.detail_name(detail)
    )
}

/// `virTimeStringNowRaw`: UTC to the millisecond (truncated), `2024-05-01 12:34:56.789+0000`.
fn timestamp(now: Timestamp) -> String {
    let time = TimeZone::UTC.to_datetime(now);
    format!(
        "{:4}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}+0000",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    )
}

/// SIGINT, caught from the first `event` to the end of the run (tokio cannot give the signal
/// back its default action): while an `event` waits, a SIGINT ends the wait, as virsh's
/// `vshEventStart` handler does; at any other time it ends rvirsh, as the default action would.
///
/// Differs from libvirt: a SIGINT outside `event`, once an `event` ran, makes rvirsh exit with
/// status 130 (what a shell reports for a process SIGINT killed) instead of dying of the signal,
/// because giving the signal back its default action needs `sigaction`, which is unsafe code.
struct Interrupts {
    /// An `event` is waiting (see `Waiting`).
    waiting: AtomicBool,
    /// SIGINTs received while one was; a wait ends when this changes.
    count: watch::Sender<u64>,
}

/// `Interrupts` once the first `event` has caught SIGINT.
static INTERRUPTS: OnceLock<Interrupts> = OnceLock::new();

impl Interrupts {
    /// Catches SIGINT if not yet, and gives the counter.
    fn get() -> anyhow::Result<&'static Interrupts> {
        if let Some(interrupts) = INTERRUPTS.get() {
            return Ok(interrupts);
        }
        // Registered before this returns, so no SIGINT after it is lost.
        let mut signals =
            tokio::signal::unix::signal(SignalKind::interrupt()).context("failed to catch SIGINT")?;
        let interrupts = INTERRUPTS
            .get_or_init(|| Interrupts { waiting: AtomicBool::new(false), count: watch::Sender::new(0) });
        tokio::spawn(async move {
            while signals.recv().await.is_some() {
                if interrupts.waiting.load(Ordering::SeqCst) {
                    interrupts.count.send_modify(|count| *count += 1);
                } else {
                    use std::io::Write as _;
                    let _ = std::io::stdout().lock().flush();
                    std::process::exit(130);
                }
            }
        });
        Ok(interrupts)
    }

    /// Marks an `event` as waiting until the guard is dropped.
    fn waiting(&'static self) -> Waiting {
        self.waiting.store(true, Ordering::SeqCst);
        Waiting(self)
    }
}

/// While it lives, SIGINT ends the wait instead of rvirsh.
struct Waiting(&'static Interrupts);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvirt::detail;

    #[test]
    fn bare_words_are_domain_event_and_timeout() {
        let parsed = crate::parser::parse_string("event g lifecycle 5 --loop", crate::find_command).unwrap();
        let command = &parsed[0];
        assert_eq!(
            (command.string("domain"), command.string("event"), command.string("timeout")),
            (Some("g"), Some("lifecycle"), Some("5"))
        );
        assert!(command.has("loop") && !command.has("all"));
    }

    #[test]
    fn lines_are_virsh_lines() {
        assert_eq!(
            line(None, "g", EventType::Started, detail::STARTED_BOOTED),
            "event 'lifecycle' for domain 'g': Started Booted\n"
        );
        assert_eq!(
            line(
                Some("2026-12-02 04:42:04.254+0000"),
                "a b",
                EventType::Stopped,
                detail::STOPPED_FROM_SNAPSHOT
            ),
            "2026-12-02 04:42:04.254+0000: event 'lifecycle' for domain 'a b': Stopped Snapshot\n"
        );
        assert_eq!(
            line(None, "g", EventType::Shutdown, 7),
            "event 'lifecycle' for domain 'g': Shutdown unknown\n"
        );
    }

    #[test]
    fn timestamps_are_utc_milliseconds_truncated() {
        let time: Timestamp = "2026-12-02T04:42:04.2549999Z".parse().unwrap();
        assert_eq!(timestamp(time), "2026-12-02 04:42:04.254+0000");
        let time: Timestamp = "1999-01-09T23:05:06+02:00".parse().unwrap();
        assert_eq!(timestamp(time), "1999-01-09 21:05:06.000+0000");
    }

    #[test]
    fn timeouts_parse_like_virsh() {
        assert_eq!(timeout(None).unwrap(), None);
        assert_eq!(timeout(Some("5")).unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(timeout(Some(" +010")).unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(timeout(Some("2147483")).unwrap(), Some(Duration::from_secs(2_147_483)));
        for bad in ["0", "-1", "", " 1 ", "1.5", "0x10", "abc", "2147484", "99999999999"] {
            assert_eq!(
                timeout(Some(bad)).unwrap_err().to_string(),
                format!("Numeric value '{bad}' for <timeout> option is malformed or out of range")
            );
        }
    }

    #[test]
    fn the_event_list_is_virsh_9_0s() {
        assert_eq!(EVENT_NAMES.len(), 27);
        assert_eq!(EVENT_NAMES.first(), Some(&"lifecycle"));
        assert_eq!(EVENT_NAMES.last(), Some(&"memory-device-size-change"));
    }
}
