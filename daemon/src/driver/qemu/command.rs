//! QEMU's command line for a definition, and what the driver refuses to define.
//!
//! Always `-accel tcg` unless KVM is configured (`[qemu] kvm = true`) and the domain asks for
//! it; q35 unless the definition names a machine; no default devices; paused (`-S`) and kept
//! alive after a guest power-off (`-no-shutdown`), so the driver decides what a power-off leads
//! to. Disks are `-blockdev` pairs (protocol node `diskN-file`, format node `diskN`) on
//! virtio-blk.

use crate::error::{Error, Result};
use crate::xml::{Disk, DomainDef};
use anyhow::{Context, bail};
use std::path::Path;

/// The node holding internal snapshots' vmstate.
pub(super) const STATE_NODE: &str = "state";

/// libvirt's QEMU command-line passthrough (`<qemu:commandline>`), and its namespace.
const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// Devices a guest would have and the driver cannot create: refused, never silently dropped.
const REFUSED_DEVICES: &[&str] = &[
    "interface",
    "graphics",
    "video",
    "sound",
    "hostdev",
    "filesystem",
    "redirdev",
    "smartcard",
    "channel",
    "tpm",
    "rng",
    "watchdog",
    "shmem",
    "vsock",
    "hub",
    "lease",
    "iommu",
    "parallel",
    "audio",
    "crypto",
    "pstore",
    "panic",
    "nvram",
];

/// Refuses what this driver cannot honour, naming it (INVALID_ARGUMENT): never silently ignored.
pub(super) fn check(def: &DomainDef, kvm: bool) -> Result<()> {
    let unsupported =
        |what: String| Error::DefUnsupported(format!("{what} is not supported by the qemu driver"));
    match def.virt_type.as_str() {
        "qemu" => {}
        "kvm" if kvm => {}
        "kvm" => {
            return Err(Error::DefUnsupported(
                "domain type 'kvm' needs KVM, which is not enabled ([qemu] kvm = true in rvirtd.toml)".into(),
            ));
        }
        other => return Err(unsupported(format!("domain type '{other}'"))),
    }
    if def.os_type.as_str() != "hvm" {
        return Err(unsupported(format!("OS type '{}'", def.os_type)));
    }
    if def.arch != "x86_64" {
        return Err(unsupported(format!("architecture '{}'", def.arch)));
    }
    for disk in def.disks.iter() {
        check_disk(disk).map_err(|e| Error::DefUnsupported(format!("{e:#}")))?;
    }
    // What is kept but not acted on is harmless (`<cpu>`, `<clock>` timers, `features/apic`,
    // `<address>`, a `<memballoon>` or `<controller>` the machine has anyway); a device the
    // driver would have to create and cannot is refused.
    for name in def.unmodelled() {
        let device = name.strip_prefix("devices/").map(|rest| rest.split(['/', '[']).next().unwrap_or(rest));
        if let Some(device) = device
            && REFUSED_DEVICES.contains(&device)
        {
            return Err(unsupported(format!("<{device}>")));
        }
    }
    for serial in def.extras().serials.iter().chain(def.extras().consoles.iter()) {
        if !matches!(serial.chardev_type.as_str(), "file" | "pty") {
            return Err(unsupported(format!("a {} serial port", serial.chardev_type)));
        }
    }
    passthrough(def).map_err(|e| Error::Xml(format!("{e:#}")))?;
    Ok(())
}

fn check_disk(disk: &Disk) -> anyhow::Result<()> {
    let dev = &disk.target_dev;
    if disk.disk_type.as_str() != "file" {
        bail!("disk '{dev}': only file disks are supported by the qemu driver, not '{}'", disk.disk_type);
    }
    if disk.device.as_str() != "disk" {
        bail!("disk '{dev}': device '{}' is not supported by the qemu driver", disk.device);
    }
    if disk.target_bus.as_str() != "virtio" {
        bail!(
            "disk '{dev}': bus '{}' is not supported by the qemu driver (use bus='virtio')",
            disk.target_bus
        );
    }
    let source = disk.source.as_deref().with_context(|| format!("disk '{dev}' has no source file"))?;
    super::process::check_path(&format!("disk '{dev}' source"), source)?;
    format(disk)?;
    Ok(())
}

/// `<driver type=…>`: raw unless it says qcow2.
fn format(disk: &Disk) -> anyhow::Result<&'static str> {
    match disk.driver_type.as_ref().map(|t| t.as_str()) {
        None | Some("raw") => Ok("raw"),
        Some("qcow2") => Ok("qcow2"),
        Some(other) => bail!("disk '{}': format '{other}' is not supported (raw or qcow2)", disk.target_dev),
    }
}

/// Every disk's source can be opened as the domain will use it (a clear error before QEMU runs).
pub(super) fn check_sources(def: &DomainDef) -> anyhow::Result<()> {
    for disk in def.disks.iter() {
        let source = disk.source.as_deref().unwrap_or("");
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(!disk.readonly);
        options.open(source).with_context(|| {
            format!(
                "cannot open disk '{}' source {source}{}",
                disk.target_dev,
                if disk.readonly { "" } else { " for writing" }
            )
        })?;
    }
    for path in [def.extras().kernel.as_deref(), def.extras().initrd.as_deref()].into_iter().flatten() {
        std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    }
    Ok(())
}

/// The nodes a snapshot covers: the vmstate image and every writable disk, which must be qcow2.
pub(super) fn snapshot_devices(def: &DomainDef) -> anyhow::Result<Vec<String>> {
    let mut devices = vec![STATE_NODE.to_owned()];
    for (index, disk) in def.disks.iter().enumerate() {
        if disk.readonly {
            continue;
        }
        match format(disk)? {
            "qcow2" => devices.push(format!("disk{index}")),
            _ => bail!(
                "internal snapshots need every writable disk in qcow2; disk '{}' is raw (make it readonly or qcow2)",
                disk.target_dev
            ),
        }
    }
    Ok(devices)
}

/// The command line (without the monitor, which `process::spawn` adds as fd 3) for `def`;
/// `state` is the snapshot image, when it exists.
pub(super) fn args(def: &DomainDef, kvm: bool, state: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
    let accel = if kvm && def.virt_type.as_str() == "kvm" { "kvm" } else { "tcg" };
    let machine = def.extras().machine.as_deref().unwrap_or("q35");
    // A machine name is QEMU option syntax: `q35,kernel=/etc/shadow` would add options.
    if machine.is_empty()
        || !machine.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        bail!("machine type '{machine}' is not a QEMU machine name");
    }
    let machine = match def.extras().acpi {
        true => machine.to_owned(),
        false => format!("{machine},acpi=off"),
    };
    push(&["-name", &format!("guest={},debug-threads=on", def.name.replace(',', ",,"))]);
    push(&["-uuid", &def.uuid.to_string()]);
    push(&["-accel", accel, "-machine", &machine]);
    push(&["-nodefaults", "-no-user-config", "-display", "none", "-S", "-no-shutdown"]);
    push(&["-m", &format!("size={}k", def.memory_kib)]);
    push(&["-smp", &def.vcpus.to_string()]);
    push(&["-chardev", &format!("socket,id=monitor,fd={},server=on,wait=off", super::process::MONITOR_FD)]);
    push(&["-mon", "chardev=monitor,mode=control"]);
    if let Some(kernel) = def.extras().kernel.as_deref() {
        super::process::check_path("kernel", kernel)?;
        push(&["-kernel", kernel]);
    }
    if let Some(initrd) = def.extras().initrd.as_deref() {
        super::process::check_path("initrd", initrd)?;
        push(&["-initrd", initrd]);
    }
    if let Some(cmdline) = def.extras().cmdline.as_deref() {
        push(&["-append", cmdline]);
    }
    let boot_from_disk = def.extras().kernel.as_deref().is_none() && def.extras().boot.first() == Some(&"hd");
    for (index, disk) in def.disks.iter().enumerate() {
        let source = disk.source.as_deref().context("a disk without a source")?;
        // Checked again here: a definition stored under another driver was never checked.
        super::process::check_path(&format!("disk '{}' source", disk.target_dev), source)?;
        let read_only = if disk.readonly { "on" } else { "off" };
        push(&[
            "-blockdev",
            &format!("driver=file,filename={source},node-name=disk{index}-file,read-only={read_only}"),
        ]);
        push(&[
            "-blockdev",
            &format!(
                "driver={},file=disk{index}-file,node-name=disk{index},read-only={read_only}",
                format(disk)?
            ),
        ]);
        let boot = if boot_from_disk && index == 0 { ",bootindex=1" } else { "" };
        push(&["-device", &format!("virtio-blk-pci,drive=disk{index},id=virtio-disk{index}{boot}")]);
    }
    for (index, serial) in def.extras().serials.iter().enumerate() {
        let chardev = match &serial.source_path {
            Some(path) => {
                super::process::check_path("serial path", path)?;
                format!("file,id=serial{index},path={path},append=on")
            }
            None => format!("pty,id=serial{index}"),
        };
        push(&["-chardev", &chardev, "-serial", &format!("chardev:serial{index}")]);
    }
    if let Some(state) = state {
        args.extend(state_blockdevs(state)?);
    }
    args.extend(passthrough(def)?);
    Ok(args)
}

/// A helper QEMU with no machine that opens the domain's snapshot images (for snapshots of a
/// shut-off domain).
pub(super) fn helper_args(def: &DomainDef, state: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let mut args: Vec<String> =
        ["-machine", "none", "-nodefaults", "-no-user-config", "-display", "none", "-S"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(["-uuid".to_owned(), def.uuid.to_string()]);
    args.extend([
        "-chardev".to_owned(),
        format!("socket,id=monitor,fd={},server=on,wait=off", super::process::MONITOR_FD),
        "-mon".to_owned(),
        "chardev=monitor,mode=control".to_owned(),
    ]);
    for (index, disk) in def.disks.iter().enumerate().filter(|(_, d)| !d.readonly) {
        let source = disk.source.as_deref().context("a disk without a source")?;
        args.extend([
            "-blockdev".to_owned(),
            format!("driver=file,filename={source},node-name=disk{index}-file"),
        ]);
        args.extend([
            "-blockdev".to_owned(),
            format!("driver={},file=disk{index}-file,node-name=disk{index}", format(disk)?),
        ]);
    }
    if let Some(state) = state {
        args.extend(state_blockdevs(state)?);
    }
    Ok(args)
}

fn state_blockdevs(state: &Path) -> anyhow::Result<Vec<String>> {
    let state = state.to_str().context("the snapshot image path is not UTF-8")?;
    super::process::check_path("snapshot image", state)?;
    Ok(vec![
        "-blockdev".into(),
        format!("driver=file,filename={state},node-name={STATE_NODE}-file"),
        "-blockdev".into(),
        format!("driver=qcow2,file={STATE_NODE}-file,node-name={STATE_NODE}"),
    ])
}

/// The arguments of libvirt's `<qemu:commandline><qemu:arg value='…'/></qemu:commandline>`.
fn passthrough(def: &DomainDef) -> anyhow::Result<Vec<String>> {
    let mut args = Vec::new();
    for raw in def.unmodelled_xml("qemu:commandline") {
        // The element is kept as written, with its prefix bound on the element itself or not at
        // all: bind it here so the fragment parses on its own.
        let wrapped = format!("<wrap xmlns:qemu='{QEMU_NS}'>{raw}</wrap>");
        let doc = roxmltree::Document::parse(&wrapped).context("<qemu:commandline> is not well-formed")?;
        for arg in doc.descendants().filter(|n| n.has_tag_name((QEMU_NS, "arg"))) {
            args.push(arg.attribute("value").context("<qemu:arg> needs a value attribute")?.to_owned());
        }
    }
    Ok(args)
}
