//! Real QEMU guests for tests: the 512-byte boot-sector guest (it prints BOOT on its serial
//! port, counts timer ticks at guest-physical 0x600 and powers off on the ACPI button), defined
//! with a second monitor (a "tap", through libvirt's `<qemu:commandline>`) so a test can read the
//! tick counter and press buttons while rvirtd holds the guest's own monitor.

use rvirtd::driver::qemu::{guest_image, qmp::Qmp};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fails, never skips, when QEMU is missing: README's test command installs it.
pub fn require_qemu() {
    assert!(
        Path::new("/usr/bin/qemu-system-x86_64").exists() || which("qemu-system-x86_64"),
        "qemu-system-x86_64 is not installed; the qemu driver tests need it: apt-get install qemu-system-x86 \
         (cargo xtask test installs it)"
    );
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).exists()))
}

/// One test guest's files, in its own folder.
#[derive(Debug, Clone)]
pub struct TestGuest {
    /// Its name.
    pub name: String,
    /// Its folder: boot image, serial log, tap socket.
    pub dir: PathBuf,
}

impl TestGuest {
    /// A guest named `name` with its files in `dir` (created), the boot image written.
    pub fn new(dir: &Path, name: &str) -> Self {
        require_qemu();
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("guest folder");
        guest_image::write_boot_image(&dir.join("boot.img")).expect("boot image");
        TestGuest { name: name.to_owned(), dir }
    }

    /// The serial log.
    pub fn serial(&self) -> PathBuf {
        self.dir.join("serial.log")
    }

    /// The tap monitor socket.
    pub fn tap(&self) -> PathBuf {
        self.dir.join("tap.sock")
    }

    /// Its domain XML: q35, 32 MiB, the boot sector on a read-only virtio disk, the serial port
    /// to a file, ACPI, the tap monitor. `disk` false leaves the disk out: SeaBIOS then finds
    /// nothing to boot and never answers the power button (a guest that ignores shutdown).
    pub fn xml(&self, disk: bool) -> String {
        let disk = match disk {
            true => format!(
                "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
                 <source file='{}/boot.img'/><target dev='vda' bus='virtio'/><readonly/></disk>",
                self.dir.display()
            ),
            false => String::new(),
        };
        format!(
            "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\
             <name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>\
             <features><acpi/></features>\
             <devices>{disk}<serial type='file'><source path='{serial}'/><target port='0'/></serial></devices>\
             <qemu:commandline><qemu:arg value='-qmp'/>\
             <qemu:arg value='unix:{tap},server=on,wait=off'/></qemu:commandline>\
             </domain>",
            name = self.name,
            serial = self.serial().display(),
            tap = self.tap().display(),
        )
    }

    /// Waits (at most 10 s) until the guest printed `text` on its serial port `count` times.
    pub async fn wait_serial(&self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(self.serial()).unwrap_or_default();
            if log.matches(text).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "guest {} never printed {text:?} x{count}: {log:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A connection to the tap monitor of the guest's current QEMU.
    pub async fn tap_monitor(&self) -> Qmp {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Qmp::connect(&self.tap(), Duration::from_secs(5)).await {
                Ok((qmp, _events)) => return qmp,
                Err(error) if Instant::now() > deadline => panic!("tap monitor of {}: {error}", self.name),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// The guest's tick counter (about 18.2 ticks a second while it runs).
    pub async fn ticks(&self, tap: &Qmp) -> u32 {
        guest_image::read_tick_counter(tap).await.expect("read the tick counter")
    }
}

/// Pids of every live (not zombie) process whose command line `matches`.
fn pids(matches: impl Fn(&[&[u8]]) -> bool) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            !zombie && matches(&args)
        })
        .collect()
}

/// Pids of every QEMU process whose command line names `uuid`.
pub fn qemu_pids(uuid: &uuid::Uuid) -> Vec<i32> {
    let needle = uuid.to_string();
    pids(|args| {
        args.first().is_some_and(|exe| exe.ends_with(b"qemu-system-x86_64"))
            && args.contains(&needle.as_bytes())
    })
}

/// Sends `signal` (a name as kill(1) takes it) to `pid`.
pub fn kill(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
}

impl TestGuest {
    /// Its domain XML with a fixed `uuid` and without the tap monitor: the boot-sector guest as
    /// a benchmark or a race defines it, where only rvirtd talks to its QEMU (q35, 32 MiB, one
    /// vcpu, the boot sector on a read-only virtio disk, the serial port to a file, ACPI).
    pub fn xml_with_uuid(&self, uuid: &uuid::Uuid) -> String {
        format!(
            "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>\
             <memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>\
             <features><acpi/></features>\
             <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{dir}/boot.img'/><target dev='vda' bus='virtio'/><readonly/></disk>\
             <serial type='file'><source path='{serial}'/><target port='0'/></serial></devices>\
             </domain>",
            name = self.name,
            dir = self.dir.display(),
            serial = self.serial().display(),
        )
    }

    /// Whether the guest printed BOOT on its serial port (since the file was last emptied).
    pub fn booted(&self) -> bool {
        std::fs::read_to_string(self.serial()).is_ok_and(|log| log.contains("BOOT"))
    }
}

/// Pids of every live QEMU whose command line names a path under `dir`: what a harness that
/// made its guests' files there has to end when it is done.
pub fn qemu_pids_under(dir: &Path) -> Vec<i32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    pids(|args| {
        args.first().is_some_and(|exe| exe.ends_with(b"qemu-system-x86_64"))
            && args[1..].iter().any(|arg| arg.windows(needle.len()).any(|window| window == needle))
    })
}

/// Ends, when dropped, every QEMU a daemon under `runtime` started and left running: guests
/// outlive their daemon by design, so a test that fails midway would leave them behind. Each is
/// found by the pidfile argument naming its own runtime folder.
#[derive(Debug)]
pub struct Reaper {
    /// The daemon's runtime folder.
    pub runtime: PathBuf,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let Ok(guests) = std::fs::read_dir(self.runtime.join("qemu")) else { return };
        for guest in guests.flatten() {
            let pidfile = guest.path().join("qemu.pid").display().to_string();
            for pid in pids(|args| args.contains(&pidfile.as_bytes())) {
                let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}
