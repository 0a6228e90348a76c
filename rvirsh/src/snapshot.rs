//! `snapshot-create-as`, `snapshot-list`, `snapshot-delete`, `snapshot-revert`,
//! `snapshot-current`, `snapshot-info`, `snapshot-dumpxml`, `snapshot-parent`, as virsh 9.0's
//! tools/virsh-snapshot.c prints them.

use super::moment::{create_xml, creation_time, sort_by_name};
use super::parser::{CmdDef, Command, Group, argv, data, flag, named_string, string};
use super::table::Table;
use super::tree::tree;
use super::{By, Session};
use anyhow::Context as _;
use rvirt::flags::{SNAPSHOT_CREATE_CURRENT, SNAPSHOT_CREATE_REDEFINE, SNAPSHOT_XML_SECURE};
use rvirt::{Domain, ErrorKind, MomentDeleteFlags, Snapshot, SnapshotListFlags, SnapshotRevertFlags};

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
    CmdDef {
        name: "snapshot-revert",
        opts: &[
            data("domain"),
            string("snapshotname"),
            flag("current"),
            flag("running"),
            flag("paused"),
            flag("force"),
            flag("reset-nvram"),
        ],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-current",
        opts: &[data("domain"), flag("name"), flag("security-info"), string("snapshotname")],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-info",
        opts: &[data("domain"), string("snapshotname"), flag("current")],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-dumpxml",
        opts: &[
            data("domain"),
            data("snapshotname"),
            flag("security-info"),
            named_string("xpath"),
            flag("wrap"),
        ],
        group: Group::Snapshot,
    },
    CmdDef {
        name: "snapshot-parent",
        opts: &[data("domain"), string("snapshotname"), flag("current")],
        group: Group::Snapshot,
    },
];

/// The `snapshot-list` options that become VIR_DOMAIN_SNAPSHOT_LIST_* filter bits, each refused
/// with `--tree`, in the order virsh checks them.
const LIST_FILTERS: &[(&str, SnapshotListFlags)] = &[
    ("leaves", SnapshotListFlags::LEAVES),
    ("no-leaves", SnapshotListFlags::NO_LEAVES),
    ("inactive", SnapshotListFlags::INACTIVE),
    ("active", SnapshotListFlags::ACTIVE),
    ("disk-only", SnapshotListFlags::DISK_ONLY),
    ("internal", SnapshotListFlags::INTERNAL),
    ("external", SnapshotListFlags::EXTERNAL),
];

/// The `snapshot-list` options virsh refuses together (`VSH_EXCLUSIVE_OPTIONS_VAR`), in its
/// order.
const LIST_EXCLUSIVE: &[(&str, &str)] = &[
    ("tree", "name"),
    ("parent", "roots"),
    ("parent", "tree"),
    ("roots", "tree"),
    ("roots", "from"),
    ("roots", "current"),
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
        "snapshot-revert" => revert(session, command).await,
        "snapshot-current" => current(session, command).await,
        "snapshot-info" => info(session, command).await,
        "snapshot-dumpxml" => dumpxml(session, command).await,
        "snapshot-parent" => parent(session, command).await,
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

/// `cmdSnapshotList`: the options checked before anything is asked, then
/// `virshSnapshotListCollect` (ListAllSnapshots, or SnapshotListAllChildren of `--from` or
/// `--current`; with `--tree` and one of those, that snapshot joins the list as its one root),
/// sorted by name unless `--topological`, printed as a tree, names or a table.
async fn list(session: &Session, command: &Command) -> anyhow::Result<()> {
    for (a, b) in LIST_EXCLUSIVE {
        if command.has(a) && command.has(b) {
            anyhow::bail!("Options --{a} and --{b} are mutually exclusive");
        }
    }
    let tree_view = command.has("tree");
    let mut flags = SnapshotListFlags::empty();
    for (option, bit) in LIST_FILTERS {
        if command.has(option) {
            if tree_view {
                anyhow::bail!("--{option} and --tree are mutually exclusive");
            }
            flags |= *bit;
        }
    }
    for (option, bit) in [
        ("roots", SnapshotListFlags::ROOTS),
        ("metadata", SnapshotListFlags::METADATA),
        ("no-metadata", SnapshotListFlags::NO_METADATA),
        ("topological", SnapshotListFlags::TOPOLOGICAL),
    ] {
        if command.has(option) {
            flags |= bit;
        }
    }
    let (from, current) = (command.has("from"), command.has("current"));
    if command.has("descendants") {
        if !from && !current {
            anyhow::bail!("--descendants requires either --from or --current");
        }
        flags |= SnapshotListFlags::DESCENDANTS;
    }
    let (domain, _) = session.domain(command, By::ANY).await?;
    let start = if from || current { Some(lookup(&domain, command, "from").await?) } else { None };
    let mut snapshots = match &start {
        Some(start) => domain.snapshot_list_all_children(&start.name, flags).await?,
        None => domain.list_all_snapshots_with(flags).await?,
    };
    if tree_view && let Some(start) = start {
        // The one entry without a parent, so the tree grows from it.
        snapshots.push(Snapshot { parent: String::new(), ..start });
    }
    if !flags.contains(SnapshotListFlags::TOPOLOGICAL) {
        sort_by_name(&mut snapshots, |snapshot| &snapshot.name);
    }
    if tree_view {
        let items: Vec<(&str, Option<&str>)> = snapshots
            .iter()
            .map(|snapshot| {
                (snapshot.name.as_str(), Some(snapshot.parent.as_str()).filter(|p| !p.is_empty()))
            })
            .collect();
        let text: String =
            (0..items.len()).filter(|&i| items[i].1.is_none()).map(|i| tree(&items, i)).collect();
        session.out.print(&text);
        return Ok(());
    }
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

/// `virshLookupSnapshot`: the snapshot named by the `arg` option, or with `--current` the
/// current one (the two are exclusive).
async fn lookup(domain: &Domain, command: &Command, arg: &str) -> anyhow::Result<Snapshot> {
    let name = command.string_req(arg)?;
    let current = command.has("current");
    if current && name.is_some() {
        anyhow::bail!("--{arg} and --current are mutually exclusive");
    }
    match name {
        Some(name) => Ok(domain.snapshot_lookup_by_name(name).await?),
        None if current => Ok(domain.snapshot_current().await?),
        None => anyhow::bail!("--{arg} or --current is required"),
    }
}

/// `cmdDomainSnapshotRevert`. virsh asks without FORCE and retries with it only when the
/// answer is "revert risky", which rvirtd never gives: so `--force` is never sent.
async fn revert(session: &Session, command: &Command) -> anyhow::Result<()> {
    let mut flags = SnapshotRevertFlags::empty();
    for (option, bit) in [
        ("running", SnapshotRevertFlags::RUNNING),
        ("paused", SnapshotRevertFlags::PAUSED),
        ("reset-nvram", SnapshotRevertFlags::RESET_NVRAM),
    ] {
        if command.has(option) {
            flags |= bit;
        }
    }
    let (domain, _) = session.domain(command, By::ANY).await?;
    let name = lookup(&domain, command, "snapshotname").await?.name;
    domain
        .revert_to_snapshot(&name, flags)
        .await
        .with_context(|| format!("Failed to revert snapshot {name}"))?;
    session.out.extra(&format!("Domain snapshot {name} reverted\n"));
    Ok(())
}

/// `cmdSnapshotCurrent`: the current snapshot's XML or name; with `--snapshotname`, makes that
/// snapshot current by redefining it from its own XML with REDEFINE|CURRENT, as virsh does.
async fn current(session: &Session, command: &Command) -> anyhow::Result<()> {
    if command.has("name") && command.has("snapshotname") {
        anyhow::bail!("Options --name and --snapshotname are mutually exclusive");
    }
    let xml_flags = if command.has("security-info") { SNAPSHOT_XML_SECURE } else { 0 };
    let (domain, arg) = session.domain(command, By::ANY).await?;
    if let Some(name) = command.string_req("snapshotname")? {
        let snapshot = domain.snapshot_lookup_by_name(name).await?;
        let xml = domain.snapshot_get_xml_desc(&snapshot.name, SNAPSHOT_XML_SECURE).await?;
        domain.snapshot_create_xml(&xml, SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_CURRENT).await?;
        session.out.extra(&format!("Snapshot {name} set as current"));
        return Ok(());
    }
    if !domain.has_current_snapshot().await? {
        anyhow::bail!("domain '{arg}' has no current snapshot");
    }
    let snapshot = domain.snapshot_current().await?;
    if command.has("name") {
        session.out.print(&snapshot.name);
    } else {
        session.out.print(&domain.snapshot_get_xml_desc(&snapshot.name, xml_flags).await?);
    }
    Ok(())
}

/// `cmdSnapshotInfo`.
async fn info(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    let snapshot = lookup(&domain, command, "snapshotname").await?;
    let name = &snapshot.name;
    let field = |label: &str, value: &str| format!("{label:<15} {value}\n");
    let mut text = field("Name:", name) + &field("Domain:", domain.name());
    // As virsh: if IsCurrent fails, compare with the current snapshot, if any.
    let is_current = match domain.snapshot_is_current(name).await {
        Ok(is_current) => is_current,
        Err(_) => domain.snapshot_current().await.is_ok_and(|current| current.name == *name),
    };
    text += &field("Current:", if is_current { "yes" } else { "no" });
    text += &field("State:", &snapshot.state);
    // Every rvirt snapshot is internal: no memory or disk is saved outside the disk images.
    text += &field("Location:", "internal");
    text += &field("Parent:", if snapshot.parent.is_empty() { "-" } else { &snapshot.parent });
    // Printed as far as it got, as virsh does, before an error ends it.
    session.out.print(&text);
    let children = domain.snapshot_num_children(name, SnapshotListFlags::empty()).await?;
    session.out.print(&field("Children:", &children.to_string()));
    let descendants = domain.snapshot_num_children(name, SnapshotListFlags::DESCENDANTS).await?;
    session.out.print(&field("Descendants:", &descendants.to_string()));
    if let Ok(metadata) = domain.snapshot_has_metadata(name).await {
        session.out.print(&field("Metadata:", if metadata { "yes" } else { "no" }));
    }
    Ok(())
}

/// `cmdSnapshotDumpXML`.
async fn dumpxml(session: &Session, command: &Command) -> anyhow::Result<()> {
    let flags = if command.has("security-info") { SNAPSHOT_XML_SECURE } else { 0 };
    let name = command.string_req("snapshotname")?.unwrap_or_default();
    command.string_req("xpath")?;
    command.reject(&["xpath"])?;
    let (domain, _) = session.domain(command, By::ANY).await?;
    let snapshot = domain.snapshot_lookup_by_name(name).await?;
    // `--wrap` only matters with `--xpath`.
    session.out.print(&domain.snapshot_get_xml_desc(&snapshot.name, flags).await?);
    Ok(())
}

/// `cmdSnapshotParent`: a root snapshot's "no parent" answer is not an error of the lookup.
async fn parent(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    let name = lookup(&domain, command, "snapshotname").await?.name;
    match domain.snapshot_get_parent(&name).await {
        Ok(parent) => {
            session.out.print(&parent.name);
            Ok(())
        }
        Err(error) if error.kind == ErrorKind::NoSnapshot => anyhow::bail!("snapshot '{name}' has no parent"),
        Err(error) => Err(anyhow::Error::new(error).context("unable to determine if snapshot has parent")),
    }
}

async fn delete(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    let snapshot = lookup(&domain, command, "snapshotname").await?;
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
