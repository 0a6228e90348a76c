//! `snapshot-create-as`, `snapshot-list`, `snapshot-delete`, as virsh 9.0's
//! tools/virsh-snapshot.c prints them.

use super::moment::{create_xml, creation_time, sort_by_name};
use super::parser::{CmdDef, Command, Group, argv, data, flag, named_string, string};
use super::table::Table;
use super::{By, Session};
use anyhow::Context as _;
use rvirt::{Domain, MomentDeleteFlags, Snapshot};

/// The commands, with their options in virsh 9.0's order.
pub(super) static COMMANDS: &[CmdDef] = &[
    CmdDef {
        name: "snapshot-create-as",
        opts: &[
            data("domain"),
            string("name"),
            string("description"),
            flag("print-xml"),
            flag("no-metadata"),
            flag("halt"),
            flag("disk-only"),
            flag("reuse-external"),
            flag("quiesce"),
            flag("atomic"),
            flag("live"),
            flag("validate"),
            named_string("memspec"),
            argv("diskspec"),
        ],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-list",
        opts: &[
            data("domain"),
            flag("parent"),
            flag("roots"),
            flag("leaves"),
            flag("no-leaves"),
            flag("metadata"),
            flag("no-metadata"),
            flag("inactive"),
            flag("active"),
            flag("disk-only"),
            flag("internal"),
            flag("external"),
            flag("tree"),
            string("from"),
            flag("current"),
            flag("descendants"),
            flag("name"),
            flag("topological"),
        ],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-delete",
        opts: &[
            data("domain"),
            string("snapshotname"),
            flag("current"),
            flag("children"),
            flag("children-only"),
            flag("metadata"),
        ],
        group: Group::Snapshot,
    },
];

/// VIR_DOMAIN_SNAPSHOT_CREATE_* bits `snapshot-create-as` passes on.
const CREATE_FLAGS: &[(&str, u32)] = &[
    ("no-metadata", 4),
    ("halt", 8),
    ("disk-only", 16),
    ("reuse-external", 32),
    ("quiesce", 64),
    ("atomic", 128),
    ("live", 256),
    ("validate", 512),
];

/// Runs one of this module's commands.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    match command.def.name {
        "snapshot-create-as" => create_as(session, command).await,
        "snapshot-list" => list(session, command).await,
        "snapshot-delete" => delete(session, command).await,
        other => unreachable!("snapshot has no command {other}"),
    }
}

async fn create_as(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    command.reject(&["memspec"])?;
    if !command.argv("diskspec").is_empty() {
        command.reject(&["diskspec"])?;
    }
    let print_xml = command.has("print-xml");
    if print_xml && command.has("no-metadata") {
        anyhow::bail!("--print-xml is incompatible with --no-metadata");
    }
    let flags =
        CREATE_FLAGS.iter().filter(|(option, _)| command.has(option)).fold(0, |flags, (_, bit)| flags | bit);
    let name = command.string_req("name")?;
    let description = command.string_req("description")?;
    let xml = create_xml("domainsnapshot", name, description);
    if print_xml {
        session.out.print(&format!("{xml}\n"));
        return Ok(());
    }
    domain.snapshot_create_xml(&xml, flags).await?;
    let name = match name {
        Some(name) => name.to_owned(),
        // The daemon named it; the newest snapshot is the last in creation order.
        None => domain
            .list_all_snapshots()
            .await?
            .pop()
            .map(|snapshot| snapshot.name)
            .context("the new snapshot is not listed")?,
    };
    session.out.extra(&format!("Domain snapshot {name} created"));
    Ok(())
}

async fn list(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    command.reject(&[
        "roots",
        "leaves",
        "no-leaves",
        "metadata",
        "no-metadata",
        "inactive",
        "active",
        "disk-only",
        "internal",
        "external",
        "tree",
        "from",
        "current",
        "descendants",
        "topological",
    ])?;
    let mut snapshots = domain.list_all_snapshots().await?;
    sort_by_name(&mut snapshots, |snapshot| &snapshot.name);
    if command.has("name") {
        let names: String = snapshots.iter().map(|snapshot| format!("{}\n", snapshot.name)).collect();
        session.out.print(&names);
        return Ok(());
    }
    let parent = command.has("parent");
    let mut table = if parent {
        Table::new(&["Name", "Creation Time", "State", "Parent"])
    } else {
        Table::new(&["Name", "Creation Time", "State"])
    };
    for snapshot in &snapshots {
        let time = creation_time(snapshot.creation_time);
        if parent {
            table.row(&[&snapshot.name, &time, &snapshot.state, &snapshot.parent]);
        } else {
            table.row(&[&snapshot.name, &time, &snapshot.state]);
        }
    }
    session.out.print(&table.render(!session.out.quiet()));
    Ok(())
}

/// `virshLookupSnapshot`: the snapshot named by `--snapshotname`, or the current one.
async fn lookup(domain: &Domain, command: &Command) -> anyhow::Result<Snapshot> {
    let name = command.string_req("snapshotname")?;
    let current = command.has("current");
    if current && name.is_some() {
        anyhow::bail!("--snapshotname and --current are mutually exclusive");
    }
    let snapshots = domain.list_all_snapshots().await?;
    match name {
        Some(name) => snapshots.into_iter().find(|snapshot| snapshot.name == name).with_context(|| {
            format!("Domain snapshot not found: no domain snapshot with matching name '{name}'")
        }),
        None if current => snapshots
            .into_iter()
            .find(|snapshot| snapshot.current)
            .context("Domain snapshot not found: the domain does not have a current snapshot"),
        None => anyhow::bail!("--snapshotname or --current is required"),
    }
}

async fn delete(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    let snapshot = lookup(&domain, command).await?;
    let mut flags = MomentDeleteFlags::empty();
    for (option, bit) in [
        ("children", MomentDeleteFlags::CHILDREN),
        ("children-only", MomentDeleteFlags::CHILDREN_ONLY),
        ("metadata", MomentDeleteFlags::METADATA_ONLY),
    ] {
        if command.has(option) {
            flags |= bit;
        }
    }
    let name = snapshot.name;
    domain
        .snapshot_delete(&name, flags)
        .await
        .with_context(|| format!("Failed to delete snapshot {name}"))?;
    if flags.contains(MomentDeleteFlags::CHILDREN_ONLY) {
        session.out.extra(&format!("Domain snapshot {name} children deleted\n"));
    } else {
        session.out.extra(&format!("Domain snapshot {name} deleted\n"));
    }
    Ok(())
}
