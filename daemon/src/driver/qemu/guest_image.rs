//! The 512-byte boot-sector test guest (qemu-notes.md, appendix): `BOOT_SECTOR`, the image
//! writer, and `read_tick_counter` to watch it run over QMP.
//!
//! The guest prints `BOOT` on the serial port, arms the ACPI power button, then idles on
//! `hlt`, adding one to the u32 at guest-physical 0x600 on every BIOS timer tick (about
//! 18.2 Hz); on the power button it prints `PWROFF` and enters S5. It needs no assembler,
//! no download and no disk beyond the file written here. This module knows nothing about
//! domains; the QEMU driver and its tests use it as their guest.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde_json::json;

use super::qmp::{Qmp, QmpError};

/// Guest-physical address of the tick counter.
pub const TICK_COUNTER_ADDRESS: u32 = 0x600;

/// Size of the image `write_boot_image` writes: SeaBIOS refused images of 512 B to 64 KiB
/// ("Boot failed: could not read the boot disk", measured with QEMU 7.2 here), while a
/// 1 MiB sparse file boots and costs one block of disk.
pub const BOOT_IMAGE_LEN: u64 = 1024 * 1024;

/// The code and strings of the boot sector, bytes 0x000 to 0x099, as the appendix gives them.
const BOOT_CODE_HEX: &str = concat!(
    "fa31c08ed88ec08ed0bc007c66c706000600000000be8a7ce8610066b800f80080e84d00663d8680182975",
    "0866b840f80080eb0666b8400b0080e8340083e0c0a3887c89c283c202b80001effbf466ff0600068b1688",
    "7ceda9000174f0efbe917ce818008b16887c83c204b80020efebdcbaf80c66efbafc0c66edc3baf803ac84",
    "c07403eeebf8c30000424f4f540d0a005057524f46460d0a00",
);

/// The boot sector: the code (0x000 to 0x099), zeros, and the 0x55 0xAA signature at 0x1fe.
/// Decoded at compile time, so a typo in the hex is a build error, not a test failure.
pub const BOOT_SECTOR: [u8; 512] = boot_sector();

const fn boot_sector() -> [u8; 512] {
    const fn nibble(digit: u8) -> u8 {
        match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => panic!("BOOT_CODE_HEX holds a non-hex digit"),
        }
    }
    let hex = BOOT_CODE_HEX.as_bytes();
    assert!(hex.len() == 2 * 0x9a, "the boot code is 0x9a bytes");
    let mut sector = [0u8; 512];
    let mut index = 0;
    while index < hex.len() / 2 {
        sector[index] = nibble(hex[2 * index]) << 4 | nibble(hex[2 * index + 1]);
        index += 1;
    }
    sector[0x1fe] = 0x55;
    sector[0x1ff] = 0xaa;
    sector
}

/// Writes the boot image to `path` (created or truncated): the sector, then a hole up to
/// `BOOT_IMAGE_LEN`.
pub fn write_boot_image(path: &Path) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(&BOOT_SECTOR)?;
    file.set_len(BOOT_IMAGE_LEN)?;
    file.sync_all()
}

/// Reads the guest's tick counter with HMP `xp /1wx 0x600`.
pub async fn read_tick_counter(qmp: &Qmp) -> Result<u32, QmpError> {
    const COMMAND: &str = "human-monitor-command";
    let command_line = format!("xp /1wx {TICK_COUNTER_ADDRESS:#x}");
    let reply = qmp.execute(COMMAND, Some(json!({ "command-line": command_line }))).await?;
    let text = reply.as_str().unwrap_or_default();
    // HMP reports failures as text inside `return` ("Error: ..."), not as a QMP error.
    if text.trim_start().starts_with("Error") {
        return Err(QmpError::Command {
            command: format!("{COMMAND} {command_line}"),
            class: "GenericError".to_owned(),
            desc: text.trim().to_owned(),
        });
    }
    parse_xp_word(text)
        .ok_or_else(|| QmpError::Protocol(format!("unexpected answer to {command_line}: {text:?}")))
}

/// Parses `0000000000000600: 0x00000012\r\n`.
fn parse_xp_word(text: &str) -> Option<u32> {
    let (_address, value) = text.trim().split_once(": ")?;
    u32::from_str_radix(value.trim().strip_prefix("0x")?, 16).ok()
}

/// A real QEMU running the boot sector, for tests of the QEMU driver.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::PathBuf;
    use std::time::Duration;

    use tempfile::TempDir;

    use super::{read_tick_counter, write_boot_image};
    use crate::driver::qemu::qmp::{Events, Qmp};

    const QEMU: &str = "qemu-system-x86_64";
    const WAIT: Duration = Duration::from_secs(10);

    /// A daemonized QEMU in its own tempdir, paused (`-S`); SIGKILLed on drop.
    pub(crate) struct TestQemu {
        pub(crate) dir: TempDir,
        pub(crate) pid: i32,
    }

    impl TestQemu {
        /// Starts QEMU with qemu-notes §1's command line, and returns once its QMP socket listens.
        pub(crate) async fn start() -> TestQemu {
            let dir = tempfile::tempdir().unwrap();
            let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
            write_boot_image(dir.path().join("boot.img").as_ref()).unwrap();
            let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
            #[rustfmt::skip]
            let spawned = tokio::process::Command::new(QEMU)
                .args(["-name", "guest=test", "-accel", "tcg", "-machine", "q35", "-nodefaults",
                       "-no-user-config", "-display", "none", "-m", "32", "-S", "-no-shutdown"])
                .args(["-qmp", &format!("unix:{},server=on,wait=off", path("qmp.sock"))])
                .args(["-chardev", &format!("file,id=ser0,path={},append=on", path("serial")),
                       "-serial", "chardev:ser0"])
                .args(["-blockdev", &format!("driver=file,filename={},node-name=boot-file,read-only=on", path("boot.img")),
                       "-blockdev", "driver=raw,file=boot-file,node-name=boot,read-only=on",
                       "-device", "virtio-blk-pci,drive=boot,bootindex=0"])
                .args(["-pidfile", &path("qemu.pid"), "-daemonize"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(stderr)
                .status()
                .await;
            let status = match spawned {
                Ok(status) => status,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    panic!(
                        "{QEMU} is not installed; the QEMU driver tests need it: apt-get install qemu-system-x86"
                    )
                }
                Err(error) => panic!("cannot run {QEMU}: {error}"),
            };
            let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
            assert!(status.success(), "{QEMU} failed ({status}): {stderr}");
            // The daemonizing parent exits only once the pidfile is written and QMP listens.
            let pid = std::fs::read_to_string(dir.path().join("qemu.pid")).unwrap();
            TestQemu { pid: pid.trim().parse().unwrap(), dir }
        }

        pub(crate) fn qmp_path(&self) -> PathBuf {
            self.dir.path().join("qmp.sock")
        }

        pub(crate) async fn connect(&self) -> (Qmp, Events) {
            Qmp::connect(&self.qmp_path(), WAIT).await.unwrap()
        }

        /// What the guest wrote on its serial port so far.
        pub(crate) fn serial(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("serial")).unwrap_or_default()
        }

        /// Polls the tick counter until it reaches `at_least` and returns it.
        pub(crate) async fn wait_for_ticks(&self, qmp: &Qmp, at_least: u32) -> u32 {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let ticks = read_tick_counter(qmp).await.unwrap();
                if ticks >= at_least {
                    return ticks;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "tick counter stuck at {ticks}, wanted {at_least}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        /// SIGKILLs this QEMU, if the pid still is this QEMU (its command line names our
        /// tempdir), so a reused pid is never hit.
        pub(crate) fn kill(&self) {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
            let ours = self.dir.path().to_str().unwrap().as_bytes();
            if cmdline.windows(ours.len()).any(|window| window == ours) {
                let pid = rustix::process::Pid::from_raw(self.pid).unwrap();
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }

    impl Drop for TestQemu {
        fn drop(&mut self) {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestQemu;
    use super::*;

    #[test]
    fn boot_sector_has_code_zeros_and_signature() {
        assert_eq!(&BOOT_SECTOR[..4], &[0xfa, 0x31, 0xc0, 0x8e]);
        assert_eq!(&BOOT_SECTOR[0x8a..0x9a], b"BOOT\r\n\0PWROFF\r\n\0");
        assert!(BOOT_SECTOR[0x9a..0x1fe].iter().all(|&byte| byte == 0));
        assert_eq!(&BOOT_SECTOR[0x1fe..], &[0x55, 0xaa]);
    }

    #[test]
    fn boot_image_is_one_sparse_mebibyte() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.img");
        write_boot_image(&path).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.len(), BOOT_IMAGE_LEN);
        assert!(metadata.blocks() * 512 < BOOT_IMAGE_LEN, "{} blocks: not sparse", metadata.blocks());
        assert_eq!(std::fs::read(&path).unwrap()[..512], BOOT_SECTOR);
    }

    #[test]
    fn xp_answers_parse() {
        assert_eq!(parse_xp_word("0000000000000600: 0x00000012\r\n"), Some(0x12));
        assert_eq!(parse_xp_word("0000000000000600: 0xffffffff"), Some(u32::MAX));
        assert_eq!(parse_xp_word("Error: bad"), None);
    }

    #[tokio::test]
    async fn tick_counter_reads_zero_before_boot_then_counts() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        assert_eq!(read_tick_counter(&qmp).await.unwrap(), 0);
        qmp.execute("cont", None).await.unwrap();
        qemu.wait_for_ticks(&qmp, 2).await;
    }
}
