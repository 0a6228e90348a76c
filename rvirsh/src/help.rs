//! virsh's "Virsh itself" commands that rvirsh has: `help`, `quit`, `exit`, which need no
//! connection; and what `help` prints: virsh 9.0's command groups and one-line descriptions,
//! for the commands rvirsh has. Knows nothing of domains or of where commands come from.

use super::parser::{CmdDef, Command, Group, OptDef, string};
use super::{Printer, find_command};

/// What running a command asks of the loop that runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next command.
    Next,
    /// `quit` or `exit`: run nothing more.
    Quit,
}

pub(super) static COMMANDS: &[CmdDef] = &[
    CmdDef { name: "help", opts: &[string("command")], group: Group::Shell },
    CmdDef { name: "quit", opts: &[], group: Group::Shell },
    CmdDef { name: "exit", opts: &[], group: Group::Shell },
];

/// A group of `help`'s listing: its title, the keyword `help KEYWORD` takes, and its commands
/// with their descriptions.
struct HelpGroup {
    title: &'static str,
    keyword: &'static str,
    commands: &'static [(&'static str, &'static str)],
}

/// virsh 9.0's groups that hold rvirsh commands, in virsh's order, and in each the commands
/// rvirsh has, in virsh's order, with virsh's descriptions.
static GROUPS: &[HelpGroup] = &[
    HelpGroup {
        title: "Domain Management",
        keyword: "domain",
        commands: &[
            ("autostart", "autostart a domain"),
            ("create", "create a domain from an XML file"),
            ("define", "define (but don't start) a domain from an XML file"),
            ("destroy", "destroy (stop) a domain"),
            ("domid", "convert a domain name or UUID to domain id"),
            ("domname", "convert a domain id or UUID to domain name"),
            ("dompmsuspend", "suspend a domain gracefully using power management functions"),
            ("dompmwakeup", "wakeup a domain from pmsuspended state"),
            ("domuuid", "convert a domain name or id to domain UUID"),
            ("dumpxml", "domain information in XML"),
            ("managedsave", "managed save of a domain state"),
            ("managedsave-remove", "Remove managed save of a domain"),
            ("reboot", "reboot a domain"),
            ("reset", "reset a domain"),
            ("resume", "resume a domain"),
            ("shutdown", "gracefully shutdown a domain"),
            ("start", "start a (previously defined) inactive domain"),
            ("suspend", "suspend a domain"),
            ("undefine", "undefine a domain"),
        ],
    },
    HelpGroup {
        title: "Domain Monitoring",
        keyword: "monitor",
        commands: &[
            ("dominfo", "domain information"),
            ("domstate", "domain state"),
            ("list", "list domains"),
        ],
    },
    HelpGroup { title: "Domain Events", keyword: "events", commands: &[("event", "Domain Events")] },
    HelpGroup {
        title: "Checkpoint",
        keyword: "checkpoint",
        commands: &[
            ("checkpoint-create-as", "Create a checkpoint from a set of args"),
            ("checkpoint-delete", "Delete a domain checkpoint"),
            ("checkpoint-list", "List checkpoints for a domain"),
        ],
    },
    HelpGroup {
        title: "Snapshot",
        keyword: "snapshot",
        commands: &[
            ("snapshot-create-as", "Create a snapshot from a set of args"),
            ("snapshot-current", "Get or set the current snapshot"),
            ("snapshot-delete", "Delete a domain snapshot"),
            ("snapshot-dumpxml", "Dump XML for a domain snapshot"),
            ("snapshot-info", "snapshot information"),
            ("snapshot-list", "List snapshots for a domain"),
            ("snapshot-parent", "Get the name of the parent of a snapshot"),
            ("snapshot-revert", "Revert a domain to a snapshot"),
        ],
    },
    HelpGroup {
        title: "Virsh itself",
        keyword: "virsh",
        commands: &[
            ("exit", "quit this interactive terminal"),
            ("help", "print help"),
            ("quit", "quit this interactive terminal"),
        ],
    },
];

/// Runs `help`, `quit` or `exit` (virsh's `cmdHelp`, `cmdQuit`).
pub(super) fn run(out: &Printer, command: &Command) -> anyhow::Result<Flow> {
    match command.def.name {
        "help" => {
            help(out, command.string("command").filter(|name| !name.is_empty()))?;
            Ok(Flow::Next)
        }
        _ => Ok(Flow::Quit),
    }
}

/// `help`: every group; `help KEYWORD`: one group; `help COMMAND`: one command.
fn help(out: &Printer, name: Option<&str>) -> anyhow::Result<()> {
    let Some(name) = name else {
        let mut text = String::from("Grouped commands:\n\n");
        for group in GROUPS {
            text.push_str(&group_text(group));
            text.push('\n');
        }
        out.print(&text);
        return Ok(());
    };
    if let Some(def) = find_command(name) {
        out.print(&command_text(def));
    } else if let Some(group) = GROUPS.iter().find(|group| group.keyword == name) {
        out.print(&group_text(group));
    } else {
        anyhow::bail!("command or command group '{name}' doesn't exist");
    }
    Ok(())
}

fn group_text(group: &HelpGroup) -> String {
    let mut text = format!(" {} (help keyword '{}'):\n", group.title, group.keyword);
    for (name, description) in group.commands {
        text.push_str(&format!("    {name:<30} {description}\n"));
    }
    text
}

/// virsh's `vshCmddefHelp`: the NAME and SYNOPSIS sections.
///
/// Differs from libvirt: no DESCRIPTION and OPTIONS sections, because rvirsh does not carry
/// virsh's long help texts; virsh's manual page has them.
fn command_text(def: &CmdDef) -> String {
    let description = GROUPS
        .iter()
        .flat_map(|group| group.commands)
        .find(|(name, _)| *name == def.name)
        .map_or("", |(_, description)| description);
    format!("  NAME\n    {} - {description}\n\n  SYNOPSIS\n    {}\n\n", def.name, synopsis(def))
}

/// A command's usage line, as `vshCmddefHelp` builds it from the option table.
fn synopsis(def: &CmdDef) -> String {
    use super::parser::Kind;
    let mut line = def.name.to_owned();
    // Whether an earlier option took a bare word, which lets an argv option's name be omitted.
    let mut positional_before = false;
    for OptDef { name, kind, required, positional } in def.opts {
        let word = match kind {
            Kind::Bool => format!("[--{name}]"),
            Kind::Int if *required => format!("<{name}>"),
            Kind::Int => format!("[--{name} <number>]"),
            Kind::String => format!("[--{name} <string>]"),
            Kind::Data if *required => format!("<{name}>"),
            Kind::Data => format!("[<{name}>]"),
            Kind::Argv => match (positional_before, required) {
                (true, true) => format!("{{[--{name}] <string>}}..."),
                (true, false) => format!("[[--{name}] <string>]..."),
                (false, true) => format!("<{name}>..."),
                (false, false) => format!("[<{name}>]..."),
            },
        };
        if *kind != Kind::Bool && *positional {
            positional_before = true;
        }
        line.push(' ');
        line.push_str(&word);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_listed_once_and_every_listed_command_exists() {
        let listed: Vec<&str> =
            GROUPS.iter().flat_map(|group| group.commands).map(|(name, _)| *name).collect();
        for name in &listed {
            assert_eq!(listed.iter().filter(|other| *other == name).count(), 1, "{name}");
            assert!(find_command(name).is_some(), "{name}");
        }
        for def in super::super::all_commands() {
            assert!(listed.contains(&def.name), "{}", def.name);
        }
    }

    /// What `virsh help COMMAND` prints under SYNOPSIS (virsh 9.0), for every command rvirsh has.
    #[test]
    fn synopses_match_virsh() {
        let virsh = [
            "list [--inactive] [--all] [--transient] [--persistent] [--with-snapshot] [--without-snapshot] \
             [--with-checkpoint] [--without-checkpoint] [--state-running] [--state-paused] [--state-shutoff] \
             [--state-other] [--autostart] [--no-autostart] [--with-managed-save] [--without-managed-save] \
             [--uuid] [--name] [--id] [--table] [--managed-save] [--title]",
            "define <file> [--validate]",
            "create <file> [--console] [--paused] [--autodestroy] [--pass-fds <string>] [--validate] [--reset-nvram]",
            "start <domain> [--console] [--paused] [--autodestroy] [--bypass-cache] [--force-boot] \
             [--pass-fds <string>] [--reset-nvram]",
            "shutdown <domain> [--mode <string>]",
            "reboot <domain> [--mode <string>]",
            "reset <domain>",
            "destroy <domain> [--graceful] [--remove-logs]",
            "suspend <domain>",
            "resume <domain>",
            "undefine <domain> [--managed-save] [--storage <string>] [--remove-all-storage] \
             [--delete-storage-volume-snapshots] [--wipe-storage] [--snapshots-metadata] [--checkpoints-metadata] \
             [--nvram] [--keep-nvram] [--tpm] [--keep-tpm]",
            "managedsave <domain> [--bypass-cache] [--running] [--paused] [--verbose]",
            "managedsave-remove <domain>",
            "autostart <domain> [--disable]",
            "dompmsuspend <domain> <target> [--duration <number>]",
            "dompmwakeup <domain>",
            "dominfo <domain>",
            "domstate <domain> [--reason]",
            "domid <domain>",
            "domname <domain>",
            "domuuid <domain>",
            "dumpxml <domain> [--inactive] [--security-info] [--update-cpu] [--migratable] [--xpath <string>] [--wrap]",
            "snapshot-create-as <domain> [--name <string>] [--description <string>] [--print-xml] [--no-metadata] \
             [--halt] [--disk-only] [--reuse-external] [--quiesce] [--atomic] [--live] [--validate] \
             [--memspec <string>] [[--diskspec] <string>]...",
            "snapshot-list <domain> [--parent] [--roots] [--leaves] [--no-leaves] [--metadata] [--no-metadata] \
             [--inactive] [--active] [--disk-only] [--internal] [--external] [--tree] [--from <string>] [--current] \
             [--descendants] [--name] [--topological]",
            "snapshot-delete <domain> [--snapshotname <string>] [--current] [--children] [--children-only] [--metadata]",
            "snapshot-revert <domain> [--snapshotname <string>] [--current] [--running] [--paused] [--force] \
             [--reset-nvram]",
            "snapshot-current <domain> [--name] [--security-info] [--snapshotname <string>]",
            "snapshot-info <domain> [--snapshotname <string>] [--current]",
            "snapshot-dumpxml <domain> <snapshotname> [--security-info] [--xpath <string>] [--wrap]",
            "snapshot-parent <domain> [--snapshotname <string>] [--current]",
            "checkpoint-create-as <domain> [--name <string>] [--description <string>] [--print-xml] [--quiesce] \
             [[--diskspec] <string>]...",
            "checkpoint-list <domain> [--parent] [--roots] [--leaves] [--no-leaves] [--tree] [--from <string>] \
             [--descendants] [--name] [--topological]",
            "checkpoint-delete <domain> [--checkpointname <string>] [--children] [--children-only] [--metadata]",
            "event [--domain <string>] [--event <string>] [--all] [--loop] [--timeout <number>] [--list] \
             [--timestamp]",
            "help [--command <string>]",
            "quit",
            "exit",
        ];
        for line in virsh {
            let name = line.split(' ').next().unwrap();
            assert_eq!(synopsis(find_command(name).unwrap()), line);
        }
        assert_eq!(virsh.len(), super::super::all_commands().count());
    }

    #[test]
    fn command_help_is_virsh_name_and_synopsis() {
        assert_eq!(
            command_text(find_command("quit").unwrap()),
            "  NAME\n    quit - quit this interactive terminal\n\n  SYNOPSIS\n    quit\n\n"
        );
    }
}
