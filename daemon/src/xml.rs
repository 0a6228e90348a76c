//! libvirt XML: `DomainDef` parsed from and formatted to domain XML, and the names and
//! descriptions of `<domainsnapshot>` and `<domaincheckpoint>` documents.
//!
//! rvirt keeps the part of the domain schema it acts on (type, name, uuid, title, description,
//! memory, vcpu, os, lifecycle actions, clock offset, disks) and formats it the way libvirt does,
//! defaults filled in.
//! Differs from libvirt: other elements are accepted and dropped, because no rvirt driver uses them
//! yet; a name is at most `MAX_NAME_BYTES`, because names become part of paths and messages.

use crate::error::{Error, Result};
use roxmltree::{Document, Node};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use uuid::Uuid;

/// The largest XML document accepted.
pub const MAX_XML_BYTES: usize = 4 << 20;
/// The longest domain, snapshot or checkpoint name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// One word of a fixed list, kept as its place in the list: one byte where a `&'static str`
/// takes sixteen. `L` names the list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Word<L>(u8, std::marker::PhantomData<L>);

/// A fixed list of words, for `Word`.
pub trait WordList {
    /// The words, at most 256.
    const WORDS: &'static [&'static str];
}

impl<L: WordList> Word<L> {
    /// The word equal to `value`, if the list has it.
    pub fn find(value: &str) -> Option<Self> {
        let place = L::WORDS.iter().position(|word| *word == value)?;
        Some(Word(u8::try_from(place).ok()?, std::marker::PhantomData))
    }

    /// The word.
    pub fn as_str(&self) -> &'static str {
        L::WORDS[usize::from(self.0)]
    }
}

impl<L: WordList> std::fmt::Debug for Word<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<L: WordList> std::fmt::Display for Word<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<L: WordList> PartialEq<&str> for Word<L> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

macro_rules! word_list {
    ($name:ident, $doc:literal, [$($word:literal),* $(,)?]) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl WordList for $name {
            const WORDS: &'static [&'static str] = &[$($word),*];
        }
    };
}

word_list!(
    VirtTypes,
    "libvirt's virDomainVirtType names.",
    [
        "none",
        "qemu",
        "kqemu",
        "kvm",
        "xen",
        "lxc",
        "uml",
        "openvz",
        "test",
        "vmware",
        "hyperv",
        "vbox",
        "phyp",
        "parallels",
        "bhyve",
        "vz",
        "hvf",
        "ch",
    ]
);
word_list!(OsTypes, "libvirt's virDomainOSType names.", ["hvm", "xen", "linux", "exe", "uml"]);
word_list!(DiskTypes, "The disk types rvirt keeps.", ["file", "block", "dir"]);
word_list!(DiskDevices, "libvirt's disk device kinds.", ["disk", "cdrom", "floppy", "lun"]);
word_list!(DiskBuses, "libvirt's disk buses.", ["ide", "scsi", "virtio", "xen", "usb", "sata", "sd", "fdc"]);

const POWEROFF_ACTIONS: &[&str] = &["destroy", "restart", "preserve", "rename-restart"];
const CRASH_ACTIONS: &[&str] =
    &["destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart"];
const CLOCK_OFFSETS: &[&str] = &["utc", "localtime", "timezone", "variable", "absolute"];
const BOOT_DEVICES: &[&str] = &["hd", "cdrom", "fd", "network"];
/// libvirt's boot order for an hvm guest that names none.
const DEFAULT_BOOT: &[&str] = &["hd"];

/// A domain definition: the parsed, validated, defaults-filled form of domain XML.
///
/// Kept small, because the registry holds one per domain (100,000 of them must fit in well under
/// 1 KiB each): values from a closed set are `&'static str` taken from the lists above, the name is
/// an `Arc<str>` the registry's name index shares, and what most domains leave at its default
/// lives in `Extras`, boxed only when something there is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDef {
    /// `<domain type=…>`.
    pub virt_type: Word<VirtTypes>,
    /// `<name>`.
    pub name: Arc<str>,
    /// `<uuid>`, generated when absent.
    pub uuid: Uuid,
    /// `<memory>` in KiB.
    pub memory_kib: u64,
    /// `<currentMemory>` in KiB, at most `memory_kib`.
    pub current_memory_kib: u64,
    /// `<vcpu>`.
    pub vcpus: u32,
    /// `<os><type>`.
    pub os_type: Word<OsTypes>,
    /// `<os><type arch=…>`: usually the driver's default, borrowed.
    pub arch: Cow<'static, str>,
    /// `<devices><disk>`.
    pub disks: Box<[Disk]>,
    /// The rest; `None` when all of it is at its default (see `DomainDef::extras`).
    pub extras: Option<Box<Extras>>,
}

/// The parts of a definition most domains leave at libvirt's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extras {
    /// `<title>`.
    pub title: Option<Box<str>>,
    /// `<description>`.
    pub description: Option<Box<str>>,
    /// `<os><type machine=…>`.
    pub machine: Option<Box<str>>,
    /// `<os><boot dev=…>`, in order.
    pub boot: Cow<'static, [&'static str]>,
    /// `<clock offset=…>`.
    pub clock_offset: &'static str,
    /// `<on_poweroff>`.
    pub on_poweroff: &'static str,
    /// `<on_reboot>`.
    pub on_reboot: &'static str,
    /// `<on_crash>`.
    pub on_crash: &'static str,
}

/// libvirt's defaults (an hvm guest's boot order).
static DEFAULT_EXTRAS: Extras = Extras {
    title: None,
    description: None,
    machine: None,
    boot: Cow::Borrowed(DEFAULT_BOOT),
    clock_offset: "utc",
    on_poweroff: "destroy",
    on_reboot: "restart",
    on_crash: "destroy",
};

/// One `<disk>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `type`: file, block or dir.
    pub disk_type: Word<DiskTypes>,
    /// `device`: disk, cdrom, floppy or lun.
    pub device: Word<DiskDevices>,
    /// `<source file|dev|dir=…>`; optional for removable media only.
    pub source: Option<Box<str>>,
    /// `<target dev=…>`.
    pub target_dev: Box<str>,
    /// `<target bus=…>`, inferred from the device name when absent.
    pub target_bus: Word<DiskBuses>,
}

/// Defaults the driver fills in where the XML is silent.
#[derive(Debug, Clone)]
pub struct ParseDefaults {
    /// The guest architecture when `<os><type>` names none.
    pub arch: &'static str,
}

/// A snapshot or checkpoint document: the parts rvirt keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MomentDef {
    /// `<name>`, `None` when absent or empty (the creation time is used instead).
    pub name: Option<String>,
    /// `<description>`.
    pub description: String,
}

impl DomainDef {
    /// Parses and validates domain XML, filling libvirt's defaults.
    pub fn parse(xml: &str, defaults: &ParseDefaults) -> Result<Self> {
        let doc = parse_document(xml)?;
        let root = doc.root_element();
        if root.tag_name().name() != "domain" {
            return Err(Error::Xml(format!(
                "unexpected root element <{}>, expecting <domain>",
                root.tag_name().name()
            )));
        }
        let virt_type =
            root.attribute("type").ok_or_else(|| Error::Xml("missing domain type attribute".into()))?;
        let virt_type =
            Word::find(virt_type).ok_or_else(|| Error::Xml(format!("invalid domain type '{virt_type}'")))?;
        let name = child_text(root, "name").ok_or_else(|| Error::Xml("missing name information".into()))?;
        check_name(&name)?;
        let uuid = match child_text(root, "uuid") {
            Some(text) => parse_uuid(&text).ok_or_else(|| Error::Xml("malformed uuid element".into()))?,
            None => Uuid::new_v4(),
        };
        let memory_kib = match child(root, "memory") {
            Some(node) => parse_memory(node)?,
            None => {
                return Err(Error::Xml(
                    "Memory size must be specified via <memory> or in the <numa> configuration".into(),
                ));
            }
        };
        let current_memory_kib = match child(root, "currentMemory") {
            Some(node) => parse_memory(node)?.min(memory_kib),
            None => memory_kib,
        };
        let vcpus = match child_text(root, "vcpu") {
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if (1..=4096).contains(&n) => n,
                _ => return Err(Error::Xml(format!("invalid vcpu count '{text}'"))),
            },
            None => 1,
        };
        let os = child(root, "os");
        let os_type_node = os.and_then(|os| child(os, "type"));
        let os_type = os_type_node
            .and_then(|node| node.text())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| Error::Xml("an os <type> must be specified".into()))?;
        let os_type: Word<OsTypes> =
            Word::find(os_type).ok_or_else(|| Error::Xml(format!("unknown OS type '{os_type}'")))?;
        let arch = os_type_node.and_then(|node| node.attribute("arch")).unwrap_or(defaults.arch);
        check_token("arch", arch)?;
        let arch =
            if arch == defaults.arch { Cow::Borrowed(defaults.arch) } else { Cow::Owned(arch.to_owned()) };
        let machine = os_type_node.and_then(|node| node.attribute("machine")).map(Box::from);
        let boot: Vec<&'static str> = os
            .into_iter()
            .flat_map(|os| os.children().filter(|n| n.has_tag_name("boot")))
            .map(|node| {
                let dev = node.attribute("dev").unwrap_or("");
                known(BOOT_DEVICES, dev).ok_or_else(|| Error::Xml(format!("unknown boot device '{dev}'")))
            })
            .collect::<Result<_>>()?;
        let boot = match (boot.is_empty(), os_type.as_str()) {
            (true, "hvm") => Cow::Borrowed(DEFAULT_BOOT),
            (true, _) => Cow::Borrowed(&[][..]),
            (false, _) => Cow::Owned(boot),
        };
        let clock_offset = child(root, "clock").and_then(|n| n.attribute("offset")).unwrap_or("utc");
        let clock_offset = known(CLOCK_OFFSETS, clock_offset)
            .ok_or_else(|| Error::Xml(format!("unknown clock offset '{clock_offset}'")))?;
        let action =
            |element: &str, default: &'static str, allowed: &[&'static str]| -> Result<&'static str> {
                match child_text(root, element) {
                    None => Ok(default),
                    Some(value) => known(allowed, &value)
                        .ok_or_else(|| Error::Xml(format!("unknown {element} action: {value}"))),
                }
            };
        let on_poweroff = action("on_poweroff", "destroy", POWEROFF_ACTIONS)?;
        let on_reboot = action("on_reboot", "restart", POWEROFF_ACTIONS)?;
        let on_crash = action("on_crash", "destroy", CRASH_ACTIONS)?;
        let disks = child(root, "devices")
            .into_iter()
            .flat_map(|devices| devices.children().filter(|n| n.has_tag_name("disk")))
            .map(parse_disk)
            .collect::<Result<Box<[_]>>>()?;
        let title = child_text(root, "title");
        if title.as_deref().is_some_and(|title| title.contains('\n')) {
            return Err(Error::Xml("Domain title can't contain newlines".into()));
        }
        let extras = Extras {
            title: title.map(Box::from),
            description: child_text(root, "description").map(Box::from),
            machine,
            boot,
            clock_offset,
            on_poweroff,
            on_reboot,
            on_crash,
        };
        Ok(DomainDef {
            virt_type,
            name: Arc::from(name),
            uuid,
            memory_kib,
            current_memory_kib,
            vcpus,
            os_type,
            arch,
            disks,
            extras: (extras != DEFAULT_EXTRAS).then(|| Box::new(extras)),
        })
    }

    /// Title, description, machine, boot order, clock and lifecycle actions.
    pub fn extras(&self) -> &Extras {
        self.extras.as_deref().unwrap_or(&DEFAULT_EXTRAS)
    }

    /// Formats as libvirt does: two-space indent, KiB units, defaults written out.
    /// `id` is the domain's id when active (libvirt writes it as an attribute of `<domain>`).
    pub fn to_xml(&self, id: Option<i32>) -> String {
        let mut out = String::with_capacity(1024);
        let _ = write!(out, "<domain type='{}'", escape(self.virt_type.as_str()));
        if let Some(id) = id {
            let _ = write!(out, " id='{id}'");
        }
        out.push_str(">\n");
        let _ = writeln!(out, "  <name>{}</name>", escape(&self.name));
        let _ = writeln!(out, "  <uuid>{}</uuid>", self.uuid);
        let extras = self.extras();
        if let Some(title) = &extras.title {
            let _ = writeln!(out, "  <title>{}</title>", escape(title));
        }
        if let Some(description) = &extras.description {
            let _ = writeln!(out, "  <description>{}</description>", escape(description));
        }
        let _ = writeln!(out, "  <memory unit='KiB'>{}</memory>", self.memory_kib);
        let _ = writeln!(out, "  <currentMemory unit='KiB'>{}</currentMemory>", self.current_memory_kib);
        let _ = writeln!(out, "  <vcpu placement='static'>{}</vcpu>", self.vcpus);
        out.push_str("  <os>\n");
        let _ = write!(out, "    <type arch='{}'", escape(&self.arch));
        if let Some(machine) = &extras.machine {
            let _ = write!(out, " machine='{}'", escape(machine));
        }
        let _ = writeln!(out, ">{}</type>", self.os_type);
        for dev in extras.boot.iter() {
            let _ = writeln!(out, "    <boot dev='{dev}'/>");
        }
        out.push_str("  </os>\n");
        let _ = writeln!(out, "  <clock offset='{}'/>", extras.clock_offset);
        let _ = writeln!(out, "  <on_poweroff>{}</on_poweroff>", extras.on_poweroff);
        let _ = writeln!(out, "  <on_reboot>{}</on_reboot>", extras.on_reboot);
        let _ = writeln!(out, "  <on_crash>{}</on_crash>", extras.on_crash);
        out.push_str("  <devices>\n");
        for disk in &self.disks {
            let _ = writeln!(out, "    <disk type='{}' device='{}'>", disk.disk_type, disk.device);
            if let Some(source) = &disk.source {
                let attr = source_attribute(disk.disk_type.as_str());
                let _ = writeln!(out, "      <source {attr}='{}'/>", escape(source));
            }
            let _ =
                writeln!(out, "      <target dev='{}' bus='{}'/>", escape(&disk.target_dev), disk.target_bus);
            out.push_str("    </disk>\n");
        }
        out.push_str("  </devices>\n</domain>\n");
        out
    }
}

impl MomentDef {
    /// Parses a `<domainsnapshot>` or `<domaincheckpoint>` document (`root` names which).
    pub fn parse(xml: &str, root_name: &str) -> Result<Self> {
        let doc = parse_document(xml)?;
        let root = doc.root_element();
        if root.tag_name().name() != root_name {
            return Err(Error::Xml(format!(
                "unexpected root element <{}>, expecting <{root_name}>",
                root.tag_name().name()
            )));
        }
        let name = child_text(root, "name").filter(|name| !name.is_empty());
        if let Some(name) = &name {
            check_name(name)?;
        }
        Ok(MomentDef { name, description: child_text(root, "description").unwrap_or_default() })
    }
}

/// libvirt's virUUIDParse: 32 hex digits, any number of '-' or ' ' between byte pairs,
/// surrounding white space ignored; anything else (braces included) is refused.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    let mut bytes = [0u8; 16];
    let mut chars = text.trim_start().chars().peekable();
    for byte in &mut bytes {
        while matches!(chars.peek(), Some('-' | ' ')) {
            chars.next();
        }
        let high = chars.next()?.to_digit(16)?;
        let low = chars.next()?.to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    chars.all(char::is_whitespace).then(|| Uuid::from_bytes(bytes))
}

/// Checks a domain, snapshot or checkpoint name.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Xml("name must not be empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::Xml(format!("name is {} bytes long, the limit is {MAX_NAME_BYTES}", name.len())));
    }
    if name.contains('/') {
        return Err(Error::Xml(format!("name {name} cannot contain '/'")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Xml("name cannot contain control characters".into()));
    }
    Ok(())
}

/// Escapes text for an element or a single-quoted attribute, as libvirt's virBufferEscapeString.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn parse_document(xml: &str) -> Result<Document<'_>> {
    if xml.len() > MAX_XML_BYTES {
        return Err(Error::Xml(format!(
            "document is {} bytes long, the limit is {MAX_XML_BYTES}",
            xml.len()
        )));
    }
    crate::xml_limits::check(xml).map_err(Error::Xml)?;
    Document::parse(xml).map_err(|e| Error::Xml(e.to_string()))
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|n| n.has_tag_name(name))
}

fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|n| n.text().unwrap_or("").to_owned())
}

fn check_token(what: &str, value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(Error::Xml(format!("invalid {what} '{value}'"))) }
}

/// `<memory unit=…>N</memory>` in KiB, rounded up, as libvirt's virDomainParseMemory.
fn parse_memory(node: Node<'_, '_>) -> Result<u64> {
    let text = node.text().unwrap_or("").trim();
    let value: u64 = text.parse().map_err(|_| Error::Xml(format!("invalid memory value '{text}'")))?;
    let unit = node.attribute("unit").unwrap_or("KiB");
    let scale: u64 = match unit {
        "b" | "bytes" => 1,
        "KB" => 1000,
        "k" | "K" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "m" | "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "g" | "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "t" | "T" | "TiB" => 1 << 40,
        _ => return Err(Error::Xml(format!("unknown suffix '{unit}'"))),
    };
    let bytes = value
        .checked_mul(scale)
        .filter(|bytes| *bytes <= (1 << 50))
        .ok_or_else(|| Error::Xml(format!("memory size {value} {unit} is too large")))?;
    Ok(bytes.div_ceil(1024))
}

fn parse_disk(node: Node<'_, '_>) -> Result<Disk> {
    let disk_type = node.attribute("type").unwrap_or("file");
    let disk_type: Word<DiskTypes> =
        Word::find(disk_type).ok_or_else(|| Error::Xml(format!("unsupported disk type '{disk_type}'")))?;
    let device = node.attribute("device").unwrap_or("disk");
    let device: Word<DiskDevices> =
        Word::find(device).ok_or_else(|| Error::Xml(format!("unknown disk device '{device}'")))?;
    let target = child(node, "target");
    let target_dev = target
        .and_then(|t| t.attribute("dev"))
        .ok_or_else(|| Error::Xml("missing target information for device".into()))?;
    check_token("disk target", target_dev)?;
    let source = child(node, "source").and_then(|s| s.attribute(source_attribute(disk_type.as_str())));
    if source.is_none() && device == "disk" {
        return Err(Error::Xml(format!("missing source information for device {target_dev}")));
    }
    let inferred = ["hd", "sd", "vd", "xvd", "fd"]
        .iter()
        .zip(["ide", "scsi", "virtio", "xen", "fdc"])
        .find(|(prefix, _)| target_dev.starts_with(**prefix))
        .map(|(_, bus)| bus);
    let bus = target.and_then(|t| t.attribute("bus")).or(inferred);
    let target_bus = match bus {
        Some(bus) => Word::find(bus).ok_or_else(|| Error::Xml(format!("unknown disk bus type '{bus}'")))?,
        None => return Err(Error::Xml(format!("cannot infer the bus of disk {target_dev}"))),
    };
    Ok(Disk {
        disk_type,
        device,
        source: source.map(Box::from),
        target_dev: Box::from(target_dev),
        target_bus,
    })
}

/// `value` as the `&'static str` of `list` it equals.
fn known(list: &[&'static str], value: &str) -> Option<&'static str> {
    list.iter().find(|known| **known == value).copied()
}

fn source_attribute(disk_type: &str) -> &'static str {
    match disk_type {
        "block" => "dev",
        "dir" => "dir",
        _ => "file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: ParseDefaults = ParseDefaults { arch: "i686" };

    #[test]
    fn formats_like_libvirt_test_driver() {
        let xml = "<domain type='test'><name>beta</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
            <title>Beta title</title><description>desc here</description><memory unit='MiB'>64</memory>\
            <currentMemory unit='MiB'>32</currentMemory><vcpu>2</vcpu><os><type arch='x86_64'>hvm</type></os>\
            <devices><disk type='file' device='disk'><source file='/tmp/b.img'/><target dev='vda' bus='virtio'/>\
            </disk></devices></domain>";
        let def = DomainDef::parse(xml, &DEFAULTS).unwrap();
        // Copied from `virsh -c test:///node.xml dumpxml beta` (libvirt 9.0.0), running as id 1.
        let expected = "<domain type='test' id='1'>
  <name>beta</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <title>Beta title</title>
  <description>desc here</description>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>32768</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/tmp/b.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
";
        assert_eq!(def.to_xml(Some(1)), expected);
        assert_eq!(DomainDef::parse(&def.to_xml(None), &DEFAULTS).unwrap(), def);
    }

    #[test]
    fn uuid_parsing_is_as_lenient_as_libvirt() {
        let uuid = parse_uuid("11111111-2222-3333-4444-555555555555").unwrap();
        assert_eq!(parse_uuid("11111111222233334444555555555555"), Some(uuid));
        assert_eq!(parse_uuid("  11 11 11 11-2222-3333-4444-555555555555 \n"), Some(uuid));
        assert_eq!(
            parse_uuid("11111111-2222-3333-4444-55555555555A"),
            parse_uuid("11111111-2222-3333-4444-55555555555a")
        );
        for bad in [
            "",
            "{11111111-2222-3333-4444-555555555555}",
            "1111",
            "11111111-2222-3333-4444-55555555555x",
            "11111111-2222-3333-4444-5555555555551",
            "1-1111111-2222-3333-4444-555555555555",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn memory_units_round_up_to_kib() {
        let parse = |mem: &str| {
            let xml = format!("<domain type='test'><name>a</name>{mem}<os><type>hvm</type></os></domain>");
            DomainDef::parse(&xml, &DEFAULTS).map(|def| (def.memory_kib, def.current_memory_kib))
        };
        assert_eq!(parse("<memory unit='b'>1025</memory>").unwrap(), (2, 2));
        assert_eq!(
            parse("<memory unit='GB'>1</memory><currentMemory unit='G'>2</currentMemory>").unwrap(),
            (976563, 976563)
        );
        assert_eq!(parse("<memory>1024</memory>").unwrap(), (1024, 1024));
        assert!(matches!(parse("<memory unit='parsec'>1</memory>"), Err(Error::Xml(_))));
        assert!(matches!(parse(""), Err(Error::Xml(_))));
    }

    #[test]
    fn refuses_what_libvirt_refuses() {
        let bad = [
            "<domain type='test'><name>a/b</name><memory>1</memory><os><type>hvm</type></os></domain>",
            "<domain type='test'><name>ab</name><memory>1</memory></domain>",
            "<domain type='test'><name></name><memory>1</memory><os><type>hvm</type></os></domain>",
            "<domain><name>ab</name><memory>1</memory><os><type>hvm</type></os></domain>",
            "<domain type='test'><name>ab</name><uuid>zzz</uuid><memory>1</memory><os><type>hvm</type></os></domain>",
            "<domain type='test'><name>ab</name><memory>1</memory><os><type>hvm</type></os><on_reboot>bogus</on_reboot></domain>",
            "<domain type='test'><name>ab</name><memory>1</memory><os><type>hvm</type></os><devices><disk type='file'><target dev='sdb'/></disk></devices></domain>",
            "<domain type='test'><name>ab</name><memory>1</memory><os><type>hvm</type></os>",
            "<network><name>ab</name></network>",
        ];
        for xml in bad {
            assert!(matches!(DomainDef::parse(xml, &DEFAULTS), Err(Error::Xml(_))), "{xml}");
        }
    }

    #[test]
    fn escapes_text_and_attributes() {
        let xml = "<domain type='test'><name>a&amp;'\"b</name><title>T&lt;1&gt;</title><memory>1</memory><os><type>hvm</type></os></domain>";
        let def = DomainDef::parse(xml, &DEFAULTS).unwrap();
        assert_eq!(&*def.name, "a&'\"b");
        let out = def.to_xml(None);
        assert!(out.contains("<name>a&amp;&apos;&quot;b</name>"), "{out}");
        assert!(out.contains("<title>T&lt;1&gt;</title>"), "{out}");
        assert_eq!(DomainDef::parse(&out, &DEFAULTS).unwrap(), def);
    }
}
