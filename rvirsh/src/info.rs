//! Read-only domain queries: `dominfo`, `domstate`, `domid`, `domname`, `domuuid`, `dumpxml`,
//! laid out as virsh 9.0 prints them.

use super::parser::{CmdDef, Command, Group, data, flag, named_string};
use super::{By, Session};

/// The commands, with their options in virsh 9.0's order.
pub(super) static COMMANDS: &[CmdDef] = &[
    CmdDef { name: "dominfo", opts: &[data("domain")], group: Group::Info },
    CmdDef { name: "domstate", opts: &[data("domain"), flag("reason")], group: Group::Info },
    CmdDef { name: "domid", opts: &[data("domain")], group: Group::Info },
    CmdDef { name: "domname", opts: &[data("domain")], group: Group::Info },
    CmdDef { name: "domuuid", opts: &[data("domain")], group: Group::Info },
    CmdDef {
        name: "dumpxml",
        opts: &[
            data("domain"),
            flag("inactive"),
            flag("security-info"),
            flag("update-cpu"),
            flag("migratable"),
            named_string("xpath"),
            flag("wrap"),
        ],
        group: Group::Info,
    },
];

/// VIR_DOMAIN_XML_* bits `dumpxml` passes on.
const XML_FLAGS: &[(&str, u32)] =
    &[("security-info", 1), ("inactive", 2), ("update-cpu", 4), ("migratable", 8)];

/// Runs one of this module's commands.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    let out = &session.out;
    match command.def.name {
        "dominfo" => dominfo(session, command).await,
        "domstate" => {
            let (domain, _) = session.domain(command, By::ANY).await?;
            let (state, reason) = domain.get_state().await?;
            if command.has("reason") {
                out.print(&format!("{state} ({})\n", state.reason_name(reason)));
            } else {
                out.print(&format!("{state}\n"));
            }
            Ok(())
        }
        "domid" => {
            let (domain, _) = session.domain(command, By::NAME_OR_UUID).await?;
            match domain.id.id {
                -1 => out.print("-\n"),
                id => out.print(&format!("{id}\n")),
            }
            Ok(())
        }
        "domname" => {
            let (domain, _) = session.domain(command, By::ID_OR_UUID).await?;
            out.print(&format!("{}\n", domain.name()));
            Ok(())
        }
        "domuuid" => {
            let (domain, _) = session.domain(command, By::ID_OR_NAME).await?;
            out.print(&format!("{}\n", domain.id.uuid));
            Ok(())
        }
        "dumpxml" => {
            command.reject(&["xpath", "wrap"])?;
            let (domain, _) = session.domain(command, By::ANY).await?;
            let flags = XML_FLAGS
                .iter()
                .filter(|(option, _)| command.has(option))
                .fold(0, |flags, (_, bit)| flags | bit);
            out.print(&domain.get_xml_desc(flags).await?);
            Ok(())
        }
        other => unreachable!("info has no command {other}"),
    }
}

/// `cmdDominfo`: identity from the handle, the rest from one `get_info` call.
///
/// Differs from virsh: no `Security model:`/`Security DOI:`/`Security label:` lines, because
/// rvirt has no security driver; `CPU time:` shows the daemon's figure (printed, as by virsh,
/// only when it is not zero).
async fn dominfo(session: &Session, command: &Command) -> anyhow::Result<()> {
    let out = &session.out;
    let (domain, _) = session.domain(command, By::ANY).await?;
    let line = |label: &str, value: &str| out.print(&format!("{label:<15} {value}\n"));
    match domain.id.id {
        -1 => line("Id:", "-"),
        id => line("Id:", &id.to_string()),
    }
    line("Name:", domain.name());
    line("UUID:", &domain.id.uuid.to_string());
    let info = domain.get_info().await?;
    line("OS Type:", &info.os_type);
    line("State:", info.state.virsh_name());
    line("CPU(s):", &info.vcpus.to_string());
    if info.cpu_time_ns != 0 {
        line("CPU time:", &format!("{:.1}s", info.cpu_time_ns as f64 / 1_000_000_000.0));
    }
    if info.max_memory_kib == u64::from(u32::MAX) {
        line("Max memory:", "no limit");
    } else {
        line("Max memory:", &format!("{} KiB", info.max_memory_kib));
    }
    line("Used memory:", &format!("{} KiB", info.memory_kib));
    line("Persistent:", if info.persistent { "yes" } else { "no" });
    line("Autostart:", if info.autostart { "enable" } else { "disable" });
    line("Managed save:", if info.has_managed_save { "yes" } else { "no" });
    Ok(())
}
