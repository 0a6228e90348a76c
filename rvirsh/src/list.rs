//! `list`: virsh 9.0's `cmdList` over one atomic `list_all_domains` call (never the legacy
//! enumeration): the same option-to-flag mapping, sort order, table and plain layouts.

use super::Session;
use super::parser::{CmdDef, Command, Group, flag};
use super::table::Table;
use anyhow::Context as _;
use rvirt::{DomainState, DomainSummary, ListFlags};

/// The command.
pub(super) static COMMANDS: &[CmdDef] = &[CmdDef {
    name: "list",
    opts: &[
        flag("inactive"),
        flag("all"),
        flag("transient"),
        flag("persistent"),
        flag("with-snapshot"),
        flag("without-snapshot"),
        flag("with-checkpoint"),
        flag("without-checkpoint"),
        flag("state-running"),
        flag("state-paused"),
        flag("state-shutoff"),
        flag("state-other"),
        flag("autostart"),
        flag("no-autostart"),
        flag("with-managed-save"),
        flag("without-managed-save"),
        flag("uuid"),
        flag("name"),
        flag("id"),
        flag("table"),
        flag("managed-save"),
        flag("title"),
    ],
    group: Group::List,
}];

/// The filter flags for the options given, exactly as `cmdList` builds them.
fn flags(command: &Command) -> ListFlags {
    let mut flags = ListFlags::ACTIVE;
    if command.has("inactive") || command.has("state-shutoff") {
        flags = ListFlags::INACTIVE;
    }
    if command.has("all") {
        flags = ListFlags::ACTIVE | ListFlags::INACTIVE;
    }
    let filters = [
        ("persistent", ListFlags::PERSISTENT),
        ("transient", ListFlags::TRANSIENT),
        ("with-managed-save", ListFlags::MANAGEDSAVE),
        ("without-managed-save", ListFlags::NO_MANAGEDSAVE),
        ("autostart", ListFlags::AUTOSTART),
        ("no-autostart", ListFlags::NO_AUTOSTART),
        ("with-snapshot", ListFlags::HAS_SNAPSHOT),
        ("without-snapshot", ListFlags::NO_SNAPSHOT),
        ("with-checkpoint", ListFlags::HAS_CHECKPOINT),
        ("without-checkpoint", ListFlags::NO_CHECKPOINT),
        ("state-running", ListFlags::RUNNING),
        ("state-paused", ListFlags::PAUSED),
        ("state-shutoff", ListFlags::SHUTOFF),
        ("state-other", ListFlags::OTHER),
    ];
    for (option, bit) in filters {
        if command.has(option) {
            flags |= bit;
        }
    }
    flags
}

/// `virshDomainSorter`: active domains by id, then inactive ones by case-insensitive name.
fn sort(domains: &mut [DomainSummary]) {
    domains.sort_by(|a, b| {
        let (a_active, b_active) = (a.domain.id != -1, b.domain.id != -1);
        match (a_active, b_active) {
            (true, true) => a.domain.id.cmp(&b.domain.id),
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            (false, false) => a
                .domain
                .name
                .chars()
                .flat_map(char::to_lowercase)
                .cmp(b.domain.name.chars().flat_map(char::to_lowercase)),
        }
    });
}

/// Runs `list`.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    let flags = flags(command);
    let (uuid, name, id) = (command.has("uuid"), command.has("name"), command.has("id"));
    // virsh 9.0 checks these in this order (VSH_EXCLUSIVE_OPTIONS).
    if command.has("table") {
        for (given, option) in [(name, "name"), (uuid, "uuid"), (id, "id")] {
            if given {
                anyhow::bail!("Options --table and --{option} are mutually exclusive");
            }
        }
    }
    let table_mode = !uuid && !name && !id;

    let mut domains = session.conn.list_all_domains(flags).await.context("Failed to list domains")?.domains;
    sort(&mut domains);

    if table_mode {
        let title = command.has("title");
        let mut table = if title {
            Table::new(&["Id", "Name", "State", "Title"])
        } else {
            Table::new(&["Id", "Name", "State"])
        };
        for domain in &domains {
            let id = id_text(domain);
            let state = if command.has("managed-save")
                && domain.state == DomainState::Shutoff
                && domain.has_managed_save
            {
                "saved"
            } else {
                domain.state.virsh_name()
            };
            if title {
                table.row(&[&id, &domain.domain.name, state, &domain.title]);
            } else {
                table.row(&[&id, &domain.domain.name, state]);
            }
        }
        session.out.print(&table.render(!session.out.quiet()));
        return Ok(());
    }

    let mut text = String::new();
    for domain in &domains {
        // Fields in virsh's fixed order: uuid, id, name.
        let mut fields = Vec::new();
        if uuid {
            fields.push(domain.domain.uuid.to_string());
        }
        if id {
            // With --id alone, inactive domains (no id) are skipped.
            if domain.domain.id == -1 && !uuid && !name {
                continue;
            }
            fields.push(id_text(domain));
        }
        if name {
            fields.push(domain.domain.name.clone());
        }
        text.push_str(&fields.join(" "));
        text.push('\n');
    }
    session.out.print(&text);
    Ok(())
}

fn id_text(domain: &DomainSummary) -> String {
    if domain.domain.id == -1 { "-".to_owned() } else { domain.domain.id.to_string() }
}
