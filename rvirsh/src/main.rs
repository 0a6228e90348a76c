//! rvirsh, a virsh-compatible command-line tool for rvirtd, over the rvirt client library:
//! `rvirsh [-c URI] [-q] COMMAND [ARGS...]`, `rvirsh -c URI "cmd1 args; cmd2 args"`, or
//! `rvirsh [-c URI]` alone, which reads commands from standard input (an interactive shell on
//! a terminal).
//!
//! This file holds `main`, the global options (`-c URI`, `-q`), the command table, the dispatch
//! loop (virsh's `vshCommandRun`: every command is followed by an empty line unless quiet, a
//! failed command reports `error: ...` lines and the next one still runs, `quit`/`exit` end the
//! run, the exit status is the last command's), the connection the commands share and the
//! domain lookup every command shares (`virshLookupDomainBy`). The commands live in one module
//! per group; `parser` reads the command line, `table` lays out tables, `tree` draws `--tree`,
//! `shell` reads commands from standard input when none is given, `help` has `help`, `quit`
//! and `exit`.
//!
//! As in virsh, a connection named with `-c` is opened before any command runs and rvirsh
//! stops if it cannot be; the default one (`$RVIRT_DEFAULT_URI`, else the default socket) is
//! opened by the first command that needs it, and while it cannot be, each such command fails
//! on its own (`help` needs none).
//!
//! Output on stdout is byte-for-byte virsh 9.0's. Deliberate differences:
//! - Error texts on stderr differ (rvirt's errors name more precise kinds); the `error: ` prefix,
//!   the number of error lines and the exit status follow virsh.
//! - Options virsh has but rvirsh does not implement (`--console`, `--xpath`...) are
//!   parsed like virsh parses them and then refused with an error.
//! - `dominfo` prints no `Security model:`/`Security DOI:`/`Security label:` lines: rvirt has
//!   no security driver. `CPU time:` is the daemon's figure.
//! - `event` knows only the lifecycle event, the only one rvirt sends (see `event`).
//! - `dompmsuspend`/`dompmwakeup` work (as with the QEMU driver) where libvirt's test driver
//!   answers "not supported".
//! - `help` lists only the commands rvirsh has, and `help COMMAND` prints no DESCRIPTION or
//!   OPTIONS section.
//! - Commands piped to rvirsh print no banner, prompt or echo (see `shell`); on a terminal the
//!   prompt ends with `$` unless root.
//! - Text is always taken as UTF-8, as virsh does in a UTF-8 locale (in the plain C locale
//!   virsh's tables escape every non-ASCII byte).

mod checkpoint;
mod event;
mod help;
mod info;
mod lifecycle;
mod list;
mod moment;
mod parser;
mod shell;
mod snapshot;
mod table;
mod tree;

use anyhow::Context as _;
use help::Flow;
use parser::{CmdDef, Command, Group};
use rvirt::{Connection, Domain};
use std::io::Write as _;
use std::process::ExitCode;

// Differs from the `main -> anyhow::Result` convention: std prints a returned error as
// `Error: {:?}`, and virsh's users (and scripts) expect `error: ...` lines. `run` returns the
// `anyhow::Result`; this only prints it.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(code) => code,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// What a command prints to, and whether `-q` silenced the informational part.
#[derive(Debug)]
pub(crate) struct Printer {
    quiet: bool,
}

impl Printer {
    /// Output that `-q` keeps (virsh's `vshPrint`).
    pub(crate) fn print(&self, text: &str) {
        // Like printf in virsh, a closed stdout is not an error worth dying for.
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }

    /// Informational output that `-q` drops (virsh's `vshPrintExtra`).
    pub(crate) fn extra(&self, text: &str) {
        if !self.quiet {
            self.print(text);
        }
    }

    /// Whether `-q` was given (tables then print without header).
    pub(crate) fn quiet(&self) -> bool {
        self.quiet
    }
}

/// An open connection and the printer: what every command gets.
#[derive(Debug)]
pub(crate) struct Session {
    /// The daemon.
    pub(crate) conn: Connection,
    /// stdout, honouring `-q`.
    pub(crate) out: Printer,
}

/// Which lookups `Session::domain` tries (virsh's `VIRSH_BYID | VIRSH_BYUUID | VIRSH_BYNAME`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct By {
    id: bool,
    uuid: bool,
    name: bool,
}

impl By {
    /// An id, a UUID or a name: most commands.
    pub(crate) const ANY: By = By { id: true, uuid: true, name: true };
    /// `start`, `domid`: a name or a UUID.
    pub(crate) const NAME_OR_UUID: By = By { id: false, uuid: true, name: true };
    /// `domname`: an id or a UUID.
    pub(crate) const ID_OR_UUID: By = By { id: true, uuid: true, name: false };
    /// `domuuid`: an id or a name.
    pub(crate) const ID_OR_NAME: By = By { id: true, uuid: false, name: true };
}

impl Session {
    /// The domain the command's `--domain` names, and that argument as typed (many virsh
    /// messages quote the argument, not the domain's name). As `virshLookupDomainBy`: a
    /// non-negative integer is tried as an id, a 36-character string as a UUID, then the name.
    pub(crate) async fn domain(&self, command: &Command, by: By) -> anyhow::Result<(Domain, String)> {
        let arg = command.string_req("domain")?.unwrap_or_default();
        let mut found = None;
        if by.id
            && let Some(id) = parse_c_int(arg).filter(|id| *id >= 0)
        {
            found = self.conn.lookup_by_id(id).await.ok();
        }
        if found.is_none() && by.uuid && arg.len() == 36 {
            found = self.conn.lookup_by_uuid_string(arg).await.ok();
        }
        if found.is_none() && by.name {
            found = self.conn.lookup_by_name(arg).await.ok();
        }
        match found {
            Some(domain) => Ok((domain, arg.to_owned())),
            None => anyhow::bail!("failed to get domain '{arg}'"),
        }
    }
}

/// C's `strtol` in base 10 over the whole string, as `virStrToLong_i`: leading blanks and a
/// sign are allowed, nothing may follow the digits, the value must fit an `int`.
fn parse_c_int(text: &str) -> Option<i32> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude: i64 = digits.parse().ok()?;
    i32::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Every command rvirsh knows, by group.
fn all_commands() -> impl Iterator<Item = &'static CmdDef> {
    [
        list::COMMANDS,
        lifecycle::COMMANDS,
        info::COMMANDS,
        snapshot::COMMANDS,
        checkpoint::COMMANDS,
        event::COMMANDS,
        help::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The command of this name.
fn find_command(name: &str) -> Option<&'static CmdDef> {
    all_commands().find(|def| def.name == name)
}

/// Runs commands, and holds the connection they share (virsh's `virshConnectionHandler`).
#[derive(Debug)]
pub(crate) struct Runner {
    /// The daemon's URI.
    uri: String,
    /// `--tls-ca`, `--tls-cert`, `--tls-key`.
    tls: rvirt::TlsFiles,
    /// `-q`.
    quiet: bool,
    /// The connection, once open; a failed attempt leaves `None` and the next command retries.
    session: Option<Session>,
}

impl Runner {
    /// The open connection, opened now if need be.
    async fn session(&mut self) -> anyhow::Result<&Session> {
        let session = match self.session.take() {
            Some(session) => session,
            None => {
                let conn = Connection::open_with(&self.uri, &self.tls)
                    .await
                    .context("failed to connect to the hypervisor")?;
                Session { conn, out: self.printer() }
            }
        };
        Ok(self.session.insert(session))
    }

    fn printer(&self) -> Printer {
        Printer { quiet: self.quiet }
    }

    /// Runs one command; only those that need the daemon open the connection.
    async fn run_command(&mut self, command: &Command) -> anyhow::Result<Flow> {
        match command.def.group {
            Group::Shell => help::run(&self.printer(), command),
            Group::List => list::run(self.session().await?, command).await.map(|()| Flow::Next),
            Group::Lifecycle => lifecycle::run(self.session().await?, command).await.map(|()| Flow::Next),
            Group::Info => info::run(self.session().await?, command).await.map(|()| Flow::Next),
            Group::Snapshot => snapshot::run(self.session().await?, command).await.map(|()| Flow::Next),
            Group::Checkpoint => checkpoint::run(self.session().await?, command).await.map(|()| Flow::Next),
            Group::Event => event::run(self.session().await?, command).await.map(|()| Flow::Next),
        }
    }

    /// Runs parsed commands in order, as `vshCommandRun`: a failure is reported and the next
    /// command still runs; each command but `quit`/`exit` is followed by an empty line unless
    /// quiet; `quit`/`exit` stop the run. Returns whether the last command that ran succeeded,
    /// and whether `quit`/`exit` stopped the run.
    pub(crate) async fn run_commands(&mut self, commands: &[Command]) -> (bool, Flow) {
        let mut last_ok = true;
        for command in commands {
            let flow = match self.run_command(command).await {
                Ok(flow) => {
                    last_ok = true;
                    flow
                }
                Err(error) => {
                    report(&error);
                    last_ok = false;
                    Flow::Next
                }
            };
            if flow == Flow::Quit {
                return (last_ok, Flow::Quit);
            }
            self.printer().extra("\n");
        }
        (last_ok, Flow::Next)
    }
}

/// A command failed and has said why on stdout, or need not say (virsh's command handler
/// returning false with no error set: `event` that saw no event). `report` prints nothing for it.
#[derive(Debug)]
pub(crate) struct Unsuccessful;

impl std::fmt::Display for Unsuccessful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the command was unsuccessful")
    }
}

impl std::error::Error for Unsuccessful {}

/// Prints an error as virsh does: one `error: ` line per link of the chain (virsh prints its
/// own message, then the library's); nothing for `Unsuccessful`.
pub(crate) fn report(error: &anyhow::Error) {
    let _ = std::io::stdout().lock().flush();
    if error.is::<Unsuccessful>() {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    for cause in error.chain() {
        let _ = writeln!(stderr, "error: {cause}");
    }
}

const USAGE: &str = "\
Usage: rvirsh [-c URI] [-q] COMMAND [ARGS...]
       rvirsh [-c URI] [-q] \"COMMAND [ARGS...]; COMMAND [ARGS...]...\"
       rvirsh [-c URI] [-q]    (commands from standard input, one line at a time)

  -c, --connect URI   rvirtd to talk to: unix:///path[?readonly], tcp://host:port or
                      tls://host[:port]; default $RVIRT_DEFAULT_URI, else the default socket
  -r, --readonly      connect read-only (the daemon's read-only socket)
      --tls-ca FILE   CA certificate for tls:// [default: $RVIRT_TLS_CA, else ~/.pki/rvirt/cacert.pem]
      --tls-cert FILE client certificate for tls:// [default: $RVIRT_TLS_CERT, else ~/.pki/rvirt/clientcert.pem]
      --tls-key FILE  its private key [default: $RVIRT_TLS_KEY, else ~/.pki/rvirt/clientkey.pem]
  -q, --quiet         quiet mode: no informational messages, no table headers
  -h, --help          this help
  -v, --version       rvirsh's version

Commands (virsh's names, options and output): list, define, create, start, shutdown,
reboot, reset, destroy, suspend, resume, undefine, managedsave, managedsave-remove,
autostart, dompmsuspend, dompmwakeup, dominfo, domstate, domid, domname, domuuid, dumpxml,
snapshot-create-as, snapshot-list, snapshot-delete, snapshot-revert, snapshot-current,
snapshot-info, snapshot-dumpxml, snapshot-parent, checkpoint-create-as, checkpoint-list,
checkpoint-delete, event (lifecycle events); help, quit, exit.
";

/// The global options.
#[derive(Debug, Default)]
struct Global {
    uri: Option<String>,
    readonly: bool,
    tls: rvirt::TlsFiles,
    quiet: bool,
    help: bool,
    version: bool,
}

/// Reads the global options as virsh's `getopt_long("+:c:d:e:hk:K:l:qrtvV")` does: they stop
/// at the first word that is not one. Returns them and the rest.
fn parse_global(args: &[String]) -> anyhow::Result<(Global, &[String])> {
    let mut global = Global::default();
    let mut index = 0;
    while let Some(arg) = args.get(index) {
        index += 1;
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (long, None),
            };
            let mut value = || -> anyhow::Result<String> {
                if let Some(value) = inline.clone() {
                    return Ok(value);
                }
                let value = args
                    .get(index)
                    .cloned()
                    .with_context(|| format!("option '--{name}' requires an argument"))?;
                index += 1;
                Ok(value)
            };
            match name {
                "connect" => global.uri = Some(value()?),
                "tls-ca" => global.tls.ca = Some(value()?.into()),
                "tls-cert" => global.tls.cert = Some(value()?.into()),
                "tls-key" => global.tls.key = Some(value()?.into()),
                "readonly" => global.readonly = true,
                "quiet" => global.quiet = true,
                "help" => global.help = true,
                "version" => global.version = true,
                _ => anyhow::bail!("unsupported option '--{name}'. See --help."),
            }
            continue;
        }
        let Some(shorts) = arg.strip_prefix('-').filter(|rest| !rest.is_empty()) else {
            index -= 1;
            break;
        };
        for (position, option) in shorts.char_indices() {
            match option {
                'q' => global.quiet = true,
                'r' => global.readonly = true,
                'h' => global.help = true,
                'v' | 'V' => global.version = true,
                'c' => {
                    let rest = &shorts[position + 1..];
                    if rest.is_empty() {
                        let value = args.get(index).cloned().context("option '-c' requires an argument")?;
                        index += 1;
                        global.uri = Some(value);
                    } else {
                        global.uri = Some(rest.to_owned());
                    }
                    break;
                }
                other => anyhow::bail!("unsupported option '-{other}'. See --help."),
            }
        }
    }
    Ok((global, &args[index..]))
}

/// Runs rvirsh with these arguments (without the program name). Errors of individual commands
/// are reported as they happen; an `Err` is a failure before any command ran.
pub(crate) async fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let (global, rest) = parse_global(args)?;
    if global.help {
        print!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    if global.version {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    // As virsh: a command given as arguments is parsed whole before anything connects or runs.
    let commands = match rest {
        [] => None,
        [single] => Some(parser::parse_string(single, find_command)),
        several => Some(parser::parse_argv(several, find_command)),
    }
    .transpose()
    .map_err(anyhow::Error::msg)?;

    let named = global.uri.is_some();
    let mut uri = global.uri.unwrap_or_else(Connection::default_uri);
    if global.readonly && !uri.contains("?readonly") {
        uri.push_str("?readonly");
    }
    let mut runner = Runner { uri, tls: global.tls, quiet: global.quiet, session: None };
    if named {
        // As virsh: a connection named with -c opens before any command runs or is read.
        runner.session().await?;
    }
    let code = match commands {
        Some(commands) => {
            let (last_ok, _) = runner.run_commands(&commands).await;
            if last_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        None => shell::run(&mut runner, global.quiet).await?,
    };
    let _ = std::io::stdout().lock().flush();
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn global_options_stop_at_the_command() {
        let args = strings(&["-q", "-c", "tcp://x:1", "list", "-q"]);
        let (global, rest) = parse_global(&args).unwrap();
        assert!(global.quiet);
        assert_eq!(global.uri.as_deref(), Some("tcp://x:1"));
        assert_eq!(rest, &args[3..]);

        let args = strings(&["--connect=unix:///s", "-qcunix:///t", "list"]);
        let (global, rest) = parse_global(&args).unwrap();
        assert_eq!(global.uri.as_deref(), Some("unix:///t"));
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn ids_parse_like_strtol() {
        assert_eq!(parse_c_int("12"), Some(12));
        assert_eq!(parse_c_int(" +3"), Some(3));
        assert_eq!(parse_c_int("-1"), Some(-1));
        assert_eq!(parse_c_int("1a"), None);
        assert_eq!(parse_c_int(""), None);
        assert_eq!(parse_c_int("99999999999"), None);
    }

    #[test]
    fn every_command_has_a_unique_name_and_valid_options() {
        let all: Vec<&CmdDef> = all_commands().collect();
        for def in &all {
            assert_eq!(all.iter().filter(|other| other.name == def.name).count(), 1, "{}", def.name);
            assert!(std::ptr::eq(find_command(def.name).unwrap(), *def));
        }
    }
}
