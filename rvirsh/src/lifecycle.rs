//! State changes: `define`, `create`, `start`, `shutdown`, `reboot`, `reset`, `destroy`,
//! `suspend`, `resume`, `undefine`, `managedsave`, `managedsave-remove`, `autostart`,
//! `dompmsuspend`, `dompmwakeup`, with virsh 9.0's messages (some quote the domain's name, some the argument
//! as typed, as virsh does) and error lines.

use super::parser::{CmdDef, Command, Group, data, flag, named_int, string};
use super::{By, Session};
use anyhow::Context as _;
use rvirt::{ErrorKind, RebootFlags, UndefineFlags};

/// The commands, with their options in virsh 9.0's order.
pub(super) static COMMANDS: &[CmdDef] = &[
    CmdDef { name: "define", opts: &[data("file"), flag("validate")], group: Group::Lifecycle },
    CmdDef {
        name: "create",
        opts: &[
            data("file"),
            flag("console"),
            flag("paused"),
            flag("autodestroy"),
            string("pass-fds"),
            flag("validate"),
            flag("reset-nvram"),
        ],
        group: Group::Lifecycle,
    },
    CmdDef {
        name: "start",
        opts: &[
            data("domain"),
            flag("console"),
            flag("paused"),
            flag("autodestroy"),
            flag("bypass-cache"),
            flag("force-boot"),
            string("pass-fds"),
            flag("reset-nvram"),
        ],
        group: Group::Lifecycle,
    },
    CmdDef { name: "shutdown", opts: &[data("domain"), string("mode")], group: Group::Lifecycle },
    CmdDef { name: "reboot", opts: &[data("domain"), string("mode")], group: Group::Lifecycle },
    CmdDef { name: "reset", opts: &[data("domain")], group: Group::Lifecycle },
    CmdDef {
        name: "destroy",
        opts: &[data("domain"), flag("graceful"), flag("remove-logs")],
        group: Group::Lifecycle,
    },
    CmdDef { name: "suspend", opts: &[data("domain")], group: Group::Lifecycle },
    CmdDef { name: "resume", opts: &[data("domain")], group: Group::Lifecycle },
    CmdDef {
        name: "undefine",
        opts: &[
            data("domain"),
            flag("managed-save"),
            string("storage"),
            flag("remove-all-storage"),
            flag("delete-storage-volume-snapshots"),
            flag("wipe-storage"),
            flag("snapshots-metadata"),
            flag("checkpoints-metadata"),
            flag("nvram"),
            flag("keep-nvram"),
            flag("tpm"),
            flag("keep-tpm"),
        ],
        group: Group::Lifecycle,
    },
    CmdDef {
        name: "managedsave",
        opts: &[data("domain"), flag("bypass-cache"), flag("running"), flag("paused"), flag("verbose")],
        group: Group::Lifecycle,
    },
    CmdDef { name: "managedsave-remove", opts: &[data("domain")], group: Group::Lifecycle },
    CmdDef { name: "autostart", opts: &[data("domain"), flag("disable")], group: Group::Lifecycle },
    CmdDef {
        name: "dompmsuspend",
        opts: &[data("domain"), data("target"), named_int("duration")],
        group: Group::Lifecycle,
    },
    CmdDef { name: "dompmwakeup", opts: &[data("domain")], group: Group::Lifecycle },
];

/// VIR_DOMAIN_START_* bits `create` passes on.
const START_FLAGS: &[(&str, u32)] =
    &[("paused", 1), ("autodestroy", 2), ("validate", 16), ("reset-nvram", 32)];

/// VIR_DOMAIN_UNDEFINE_* bits beyond the two `UndefineFlags` names; passed on as they are so
/// the daemon answers for them.
const UNDEFINE_NVRAM: u32 = 4;
const UNDEFINE_KEEP_NVRAM: u32 = 8;
const UNDEFINE_CHECKPOINTS_METADATA: u32 = 16;
const UNDEFINE_TPM: u32 = 32;
const UNDEFINE_KEEP_TPM: u32 = 64;

/// Runs one of this module's commands.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    match command.def.name {
        "define" => define(session, command).await,
        "create" => create(session, command).await,
        "start" => start(session, command).await,
        "shutdown" => {
            command.reject(&["mode"])?;
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.shutdown().await.with_context(|| format!("Failed to shutdown domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' is being shutdown\n"));
            Ok(())
        }
        "reboot" => {
            let flags = reboot_flags(command.string_req("mode")?)?;
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.reboot(flags).await.with_context(|| format!("Failed to reboot domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' is being rebooted\n"));
            Ok(())
        }
        "reset" => {
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.reset().await.with_context(|| format!("Failed to reset domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' was reset\n"));
            Ok(())
        }
        "destroy" => {
            command.reject(&["graceful", "remove-logs"])?;
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.destroy().await.with_context(|| format!("Failed to destroy domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' destroyed\n"));
            Ok(())
        }
        "suspend" => {
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.suspend().await.with_context(|| format!("Failed to suspend domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' suspended\n"));
            Ok(())
        }
        "resume" => {
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.resume().await.with_context(|| format!("Failed to resume domain '{arg}'"))?;
            session.out.extra(&format!("Domain '{arg}' resumed\n"));
            Ok(())
        }
        "undefine" => undefine(session, command).await,
        "managedsave" => {
            command.reject(&["bypass-cache", "running", "paused"])?;
            let (domain, arg) = session.domain(command, By::ANY).await?;
            domain.managed_save().await.with_context(|| format!("Failed to save domain '{arg}' state"))?;
            if command.has("verbose") {
                // rvirt's save is complete when the call returns: of the progress virsh shows on
                // stderr, only the last step is left.
                eprint!("\rManagedsave: [100 %]");
            }
            session.out.extra(&format!("\nDomain '{arg}' state saved by libvirt\n"));
            Ok(())
        }
        "managedsave-remove" => {
            let (domain, arg) = session.domain(command, By::ANY).await?;
            let has_image = domain
                .has_managed_save_image()
                .await
                .context("Failed to check for domain managed save image")?;
            if has_image {
                domain
                    .managed_save_remove()
                    .await
                    .with_context(|| format!("Failed to remove managed save image for domain '{arg}'"))?;
                session.out.extra(&format!("Removed managedsave image for domain '{arg}'"));
            } else {
                session.out.extra(&format!("Domain '{arg}' has no manage save image; removal skipped"));
            }
            Ok(())
        }
        "autostart" => {
            let (domain, arg) = session.domain(command, By::ANY).await?;
            let enable = !command.has("disable");
            let verb = if enable { "mark" } else { "unmark" };
            domain
                .set_autostart(enable)
                .await
                .with_context(|| format!("Failed to {verb} domain '{arg}' as autostarted"))?;
            session.out.extra(&format!("Domain '{arg}' {verb}ed as autostarted\n"));
            Ok(())
        }
        "dompmsuspend" => {
            let (domain, _) = session.domain(command, By::ANY).await?;
            let duration = command.u64("duration")?.unwrap_or(0);
            let target = match command.string_req("target")?.unwrap_or_default() {
                "mem" => 0,
                "disk" => 1,
                "hybrid" => 2,
                _ => anyhow::bail!("Invalid target"),
            };
            let name = domain.name().to_owned();
            domain
                .pm_suspend_for_duration(target, duration)
                .await
                .with_context(|| format!("Domain '{name}' could not be suspended"))?;
            session.out.extra(&format!("Domain '{name}' successfully suspended"));
            Ok(())
        }
        "dompmwakeup" => {
            let (domain, _) = session.domain(command, By::ANY).await?;
            let name = domain.name().to_owned();
            domain.pm_wakeup().await.with_context(|| format!("Domain '{name}' could not be woken up"))?;
            session.out.extra(&format!("Domain '{name}' successfully woken up"));
            Ok(())
        }
        other => unreachable!("lifecycle has no command {other}"),
    }
}

/// `reboot --mode`'s comma-separated methods as virDomainRebootFlagValues, checked before the
/// domain is looked up, as virsh does (an empty method between commas is unknown too).
fn reboot_flags(mode: Option<&str>) -> anyhow::Result<RebootFlags> {
    let mut flags = RebootFlags::empty();
    for method in mode.into_iter().flat_map(|mode| mode.split(',')) {
        flags |= match method {
            "acpi" => RebootFlags::ACPI_POWER_BTN,
            "agent" => RebootFlags::GUEST_AGENT,
            "initctl" => RebootFlags::INITCTL,
            "signal" => RebootFlags::SIGNAL,
            "paravirt" => RebootFlags::PARAVIRT,
            _ => anyhow::bail!(
                "Unknown mode {method} value, expecting 'acpi', 'agent', 'initctl', 'signal' or 'paravirt'"
            ),
        };
    }
    Ok(flags)
}

/// virsh's `virFileReadAll` for a domain XML file.
fn read_xml(file: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(file).map_err(|error| anyhow::anyhow!("Failed to open file '{file}': {error}"))
}

async fn define(session: &Session, command: &Command) -> anyhow::Result<()> {
    let file = command.string_req("file")?.unwrap_or_default();
    let xml = read_xml(file)?;
    let flags = u32::from(command.has("validate"));
    let change = session
        .conn
        .define_xml(&xml, flags)
        .await
        .with_context(|| format!("Failed to define domain from {file}"))?;
    let name = change
        .domain
        .map(|summary| summary.domain.name)
        .context("the daemon did not return the defined domain")?;
    session.out.extra(&format!("Domain '{name}' defined from {file}\n"));
    Ok(())
}

async fn create(session: &Session, command: &Command) -> anyhow::Result<()> {
    let file = command.string_req("file")?.unwrap_or_default();
    command.reject(&["console", "pass-fds"])?;
    let xml = read_xml(file)?;
    let flags =
        START_FLAGS.iter().filter(|(option, _)| command.has(option)).fold(0, |flags, (_, bit)| flags | bit);
    let change = session
        .conn
        .create_xml(&xml, flags)
        .await
        .with_context(|| format!("Failed to create domain from {file}"))?;
    let name = change
        .domain
        .map(|summary| summary.domain.name)
        .context("the daemon did not return the created domain")?;
    session.out.extra(&format!("Domain '{name}' created from {file}\n"));
    Ok(())
}

async fn start(session: &Session, command: &Command) -> anyhow::Result<()> {
    // rvirt's DomainCreate takes no flags: only --force-boot, which virsh itself emulates
    // for servers without it, is available.
    command.reject(&["console", "paused", "autodestroy", "bypass-cache", "pass-fds", "reset-nvram"])?;
    let (domain, _) = session.domain(command, By::NAME_OR_UUID).await?;
    if domain.id.id != -1 {
        anyhow::bail!("Domain is already active");
    }
    if command.has("force-boot") && domain.has_managed_save_image().await? {
        domain.managed_save_remove().await?;
    }
    let name = domain.name().to_owned();
    domain.create().await.with_context(|| format!("Failed to start domain '{name}'"))?;
    session.out.extra(&format!("Domain '{name}' started\n"));
    Ok(())
}

/// `cmdUndefine`: UndefineFlags when it is known to be safe, else virsh's piecewise fallback
/// (which is also what runs when the daemon rejects a flag as invalid).
async fn undefine(session: &Session, command: &Command) -> anyhow::Result<()> {
    command.reject(&["storage", "remove-all-storage", "delete-storage-volume-snapshots", "wipe-storage"])?;
    for (a, b) in [("nvram", "keep-nvram"), ("tpm", "keep-tpm")] {
        if command.has(a) && command.has(b) {
            anyhow::bail!("Options --{a} and --{b} are mutually exclusive");
        }
    }
    let (domain, arg) = session.domain(command, By::ANY).await?;
    let managed_save = command.has("managed-save");
    let snapshots_metadata = command.has("snapshots-metadata");
    let mut flags = UndefineFlags::empty();
    for (option, bits) in [
        ("managed-save", UndefineFlags::MANAGED_SAVE.bits()),
        ("snapshots-metadata", UndefineFlags::SNAPSHOTS_METADATA.bits()),
        ("nvram", UNDEFINE_NVRAM),
        ("keep-nvram", UNDEFINE_KEEP_NVRAM),
        ("checkpoints-metadata", UNDEFINE_CHECKPOINTS_METADATA),
        ("tpm", UNDEFINE_TPM),
        ("keep-tpm", UNDEFINE_KEEP_TPM),
    ] {
        if command.has(option) {
            flags |= UndefineFlags::from_bits_retain(bits);
        }
    }
    let has_managed_save = domain.has_managed_save_image().await?;
    let snapshots = domain.snapshot_num().await?;
    // A server that counts snapshot metadata knows every undefine flag; no managed save or no
    // snapshot makes the matching flag moot.
    let mut managed_save_safe = managed_save || snapshots > 0;
    if !has_managed_save {
        flags.remove(UndefineFlags::MANAGED_SAVE);
        managed_save_safe = true;
    }
    if snapshots == 0 {
        flags.remove(UndefineFlags::SNAPSHOTS_METADATA);
    }
    let context = || format!("Failed to undefine domain '{arg}'");
    let mut done = false;
    if managed_save_safe {
        match domain.undefine(flags).await {
            Ok(_) => done = true,
            // virsh cannot emulate removing the NVRAM, so it does not fall back then.
            Err(error) if error.kind != ErrorKind::InvalidArg || command.has("nvram") => {
                return Err(anyhow::Error::new(error).context(context()));
            }
            Err(_) => {}
        }
    }
    if !done {
        if has_managed_save {
            if !managed_save {
                anyhow::bail!("Refusing to undefine while domain managed save image exists");
            }
            domain.managed_save_remove().await?;
        }
        if snapshots > 0 {
            if snapshots_metadata {
                anyhow::bail!("Unable to remove metadata of {snapshots} snapshots");
            }
            anyhow::bail!("Refusing to undefine while {snapshots} snapshots exist");
        }
        domain.undefine(UndefineFlags::empty()).await.with_context(context)?;
    }
    session.out.extra(&format!("Domain '{arg}' has been undefined\n"));
    Ok(())
}
