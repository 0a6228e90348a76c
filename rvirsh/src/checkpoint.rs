//! `checkpoint-create-as`, `checkpoint-list`, `checkpoint-delete`, as virsh 9.0's
//! tools/virsh-checkpoint.c prints them.

use super::moment::{create_xml, creation_time, sort_by_name};
use super::parser::{CmdDef, Command, Group, argv, data, flag, string};
use super::table::Table;
use super::{By, Session};
use anyhow::Context as _;
use rvirt::MomentDeleteFlags;

/// The commands, with their options in virsh 9.0's order.
pub(super) static COMMANDS: &[CmdDef] = &[
    CmdDef {
        name: "checkpoint-create-as",
        opts: &[
            data("domain"),
            string("name"),
            string("description"),
            flag("print-xml"),
            flag("quiesce"),
            argv("diskspec"),
        ],
        group: Group::Checkpoint,
    },
    CmdDef {
        name: "checkpoint-list",
        opts: &[
            data("domain"),
            flag("parent"),
            flag("roots"),
            flag("leaves"),
            flag("no-leaves"),
            flag("tree"),
            string("from"),
            flag("descendants"),
            flag("name"),
            flag("topological"),
        ],
        group: Group::Checkpoint,
    },
    CmdDef {
        name: "checkpoint-delete",
        opts: &[
            data("domain"),
            string("checkpointname"),
            flag("children"),
            flag("children-only"),
            flag("metadata"),
        ],
        group: Group::Checkpoint,
    },
];

/// VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE.
const CREATE_QUIESCE: u32 = 2;

/// Runs one of this module's commands.
pub(super) async fn run(session: &Session, command: &Command) -> anyhow::Result<()> {
    match command.def.name {
        "checkpoint-create-as" => create_as(session, command).await,
        "checkpoint-list" => list(session, command).await,
        "checkpoint-delete" => delete(session, command).await,
        other => unreachable!("checkpoint has no command {other}"),
    }
}

async fn create_as(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    if !command.argv("diskspec").is_empty() {
        command.reject(&["diskspec"])?;
    }
    let flags = if command.has("quiesce") { CREATE_QUIESCE } else { 0 };
    let name = command.string_req("name")?;
    let description = command.string_req("description")?;
    let xml = create_xml("domaincheckpoint", name, description);
    if command.has("print-xml") {
        session.out.print(&format!("{xml}\n"));
        return Ok(());
    }
    domain.checkpoint_create_xml(&xml, flags).await?;
    let name = match name {
        Some(name) => name.to_owned(),
        // The daemon named it; the newest checkpoint is the last in creation order.
        None => domain
            .list_all_checkpoints()
            .await?
            .pop()
            .map(|checkpoint| checkpoint.name)
            .context("the new checkpoint is not listed")?,
    };
    session.out.extra(&format!("Domain checkpoint {name} created"));
    Ok(())
}

async fn list(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    command.reject(&["roots", "leaves", "no-leaves", "tree", "from", "descendants", "topological"])?;
    let mut checkpoints = domain.list_all_checkpoints().await?;
    sort_by_name(&mut checkpoints, |checkpoint| &checkpoint.name);
    if command.has("name") {
        let names: String = checkpoints.iter().map(|checkpoint| format!("{}\n", checkpoint.name)).collect();
        session.out.print(&names);
        return Ok(());
    }
    let parent = command.has("parent");
    let mut table = if parent {
        Table::new(&["Name", "Creation Time", "Parent"])
    } else {
        Table::new(&["Name", "Creation Time"])
    };
    for checkpoint in &checkpoints {
        let time = creation_time(checkpoint.creation_time);
        if parent {
            table.row(&[&checkpoint.name, &time, &checkpoint.parent]);
        } else {
            table.row(&[&checkpoint.name, &time]);
        }
    }
    session.out.print(&table.render(!session.out.quiet()));
    Ok(())
}

async fn delete(session: &Session, command: &Command) -> anyhow::Result<()> {
    let (domain, _) = session.domain(command, By::ANY).await?;
    let name = command.string_req("checkpointname")?.context("--checkpointname is required")?;
    if !domain.list_all_checkpoints().await?.iter().any(|checkpoint| checkpoint.name == name) {
        anyhow::bail!("Domain checkpoint not found: no domain checkpoint with matching name '{name}'");
    }
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
    domain
        .checkpoint_delete(name, flags)
        .await
        .with_context(|| format!("Failed to delete checkpoint {name}"))?;
    if flags.contains(MomentDeleteFlags::CHILDREN_ONLY) {
        session.out.extra(&format!("Domain checkpoint {name} children deleted\n"));
    } else {
        session.out.extra(&format!("Domain checkpoint {name} deleted\n"));
    }
    Ok(())
}
