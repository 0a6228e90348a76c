//! `cargo xtask test [-- CARGO_TEST_ARGS]`: installs what the test suite needs when it is
//! missing (saying what and why), then runs `cargo test --workspace`. README's test command.

use anyhow::bail;
use std::path::Path;
use std::process::Command;

/// A Debian package the tests need, how to tell it is there, and which tests need it.
struct Need {
    package: &'static str,
    present: fn() -> bool,
    why: &'static str,
}

const NEEDS: &[Need] = &[
    Need {
        package: "libvirt-clients",
        present: || Path::new("/usr/bin/virsh").exists(),
        why: "virsh, for the differential tests of rvirsh and of rvirtd's libvirt protocol (tests/it/rvirsh.rs, tests/it/native.rs)",
    },
    Need {
        package: "python3-libvirt",
        present: || {
            Command::new("/usr/bin/python3")
                .args(["-c", "import libvirt"])
                .output()
                .is_ok_and(|output| output.status.success())
        },
        why: "libvirt's own Python client, talking to rvirtd's libvirt protocol (tests/it/native.rs)",
    },
    Need {
        package: "python3-grpcio",
        present: || {
            Command::new("/usr/bin/python3")
                .args(["-c", "import grpc"])
                .output()
                .is_ok_and(|output| output.status.success())
        },
        why: "Python grpcio, a grpc-core client for tests/it/grpc_clients.rs",
    },
    Need {
        package: "qemu-system-x86",
        present: || Path::new("/usr/bin/qemu-system-x86_64").exists(),
        why: "QEMU, for the qemu driver's tests (tests/it/qemu.rs and daemon/src/driver/qemu), which fail without it",
    },
    Need {
        package: "systemd",
        present: || Path::new("/usr/bin/systemd-socket-activate").exists(),
        why: "systemd-socket-activate, which passes rvirtd its sockets as systemd does (tests/it/restart.rs)",
    },
];

pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    let cargo_args = match args.split_first() {
        None => &[][..],
        Some((first, rest)) if first == "--" => rest,
        Some((other, _)) => bail!("unknown option {other}; usage: cargo xtask test [-- CARGO_TEST_ARGS]"),
    };
    let missing: Vec<&Need> = NEEDS.iter().filter(|need| !(need.present)()).collect();
    if !missing.is_empty() {
        install(&missing)?;
    }
    let mut command = vec!["test", "--workspace"];
    command.extend(cargo_args.iter().map(String::as_str));
    println!("running cargo {}", command.join(" "));
    crate::cargo(&command)
}

/// Installs `missing` with apt-get, or says precisely what to install where that cannot be done.
fn install(missing: &[&Need]) -> anyhow::Result<()> {
    let packages: Vec<&str> = missing.iter().map(|need| need.package).collect();
    for need in missing {
        println!("installing {} ({})", need.package, need.why);
    }
    let manual = format!("install them, then run this again: apt-get install {}", packages.join(" "));
    if !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "the tests need {}, and there is no apt-get here to install them; {manual}",
            packages.join(", ")
        );
    }
    if rvirt_proto::effective_uid() != 0 {
        bail!("the tests need {}, and installing packages needs root; {manual}", packages.join(", "));
    }
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status()?;
        if !status.success() {
            bail!("apt-get {} failed ({status}); {manual}", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    apt(&[&["install", "-y", "-qq", "--no-install-recommends"][..], &packages].concat())?;
    for need in missing {
        if !(need.present)() {
            bail!("{} is installed but still not usable ({}); {manual}", need.package, need.why);
        }
    }
    Ok(())
}
