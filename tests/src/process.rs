//! `DaemonProcess`: the built `rvirtd` binary run as a child process on a temporary folder, for
//! tests of what only a real process has: signals, SIGKILL, restart, the state folder lock.
//! Readiness comes from the daemon's own sd_notify READY=1 on a socket the harness listens on,
//! so no test sleeps to wait for it.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// A running rvirtd child process.
pub struct DaemonProcess {
    child: Child,
    /// `unix://` URI of its socket.
    pub uri: String,
    /// Everything it logged so far (stderr and stdout lines), and a wake-up for each new line.
    logs: Arc<(Mutex<Vec<String>>, Notify)>,
}

/// The folders a daemon process uses under one root: `state/`, `run/` and `run/rvirt-sock`.
#[derive(Debug, Clone)]
pub struct DaemonDirs {
    /// `--state-dir`.
    pub state: PathBuf,
    /// `--runtime-dir`.
    pub runtime: PathBuf,
    /// `--socket`.
    pub socket: PathBuf,
}

impl DaemonDirs {
    /// The folders under `root`.
    pub fn under(root: &Path) -> Self {
        DaemonDirs {
            state: root.join("state"),
            runtime: root.join("run"),
            socket: root.join("run/rvirt-sock"),
        }
    }
}

impl DaemonProcess {
    /// Starts rvirtd on `dirs` and waits until it says READY=1.
    pub async fn start(dirs: &DaemonDirs) -> Self {
        Self::start_with(dirs, &[]).await.unwrap_or_else(|(status, logs)| {
            panic!("rvirtd exited before it was ready ({status}):\n{}", logs.join("\n"))
        })
    }

    /// Starts rvirtd with extra arguments; `Err((status, logs))` if it exits before READY=1.
    pub async fn start_with(dirs: &DaemonDirs, extra: &[&str]) -> Result<Self, (ExitStatus, Vec<String>)> {
        let notify_path = dirs.state.with_file_name(format!("notify-{}", uuid::Uuid::new_v4().simple()));
        let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
        let mut command = Command::new(crate::workspace_binary("rvirtd"));
        command
            .arg("--state-dir")
            .arg(&dirs.state)
            .arg("--runtime-dir")
            .arg(&dirs.runtime)
            .arg("--socket")
            .arg(&dirs.socket)
            // Unless the test gives one, an empty config: nothing from the host's /etc/rvirt.
            .args(if extra.contains(&"--config") { &[][..] } else { &["--config", "/dev/null"][..] })
            .args(extra)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn rvirtd");
        let logs = Arc::new((Mutex::new(Vec::new()), Notify::new()));
        let mut readers = Vec::new();
        for stream in [
            child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.0.lock().unwrap().push(line);
                    logs.1.notify_waiters();
                }
            }));
        }
        let mut buffer = [0u8; 256];
        let ready = async {
            loop {
                let n = notify.recv(&mut buffer).await.expect("read the notify socket");
                if buffer[..n].split(|b| *b == b'\n').any(|line| line == b"READY=1") {
                    return;
                }
            }
        };
        let outcome = tokio::select! {
            () = ready => None,
            status = child.wait() => Some(status.expect("wait for rvirtd")),
            () = tokio::time::sleep(Duration::from_secs(60)) => panic!("rvirtd was not ready within 60 s"),
        };
        let _ = std::fs::remove_file(&notify_path);
        if let Some(status) = outcome {
            // The readers end at EOF, once they have everything the process wrote.
            for reader in readers {
                let _ = reader.await;
            }
            let lines = logs.0.lock().unwrap().clone();
            return Err((status, lines));
        }
        Ok(DaemonProcess { child, uri: format!("unix://{}", dirs.socket.display()), logs })
    }

    /// A client connection.
    pub async fn connect(&self) -> rvirt::Connection {
        rvirt::Connection::open(&self.uri).await.expect("connect to rvirtd")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends a signal by name ("TERM", "HUP", "KILL").
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL, and waits for it to be gone.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("SIGKILL rvirtd");
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("rvirtd stops within 30 s of SIGTERM")
            .expect("wait for rvirtd")
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.0.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until a logged line contains `text`, and returns it.
    pub async fn wait_for_log(&self, text: &str) -> String {
        let wait = async {
            loop {
                let notified = self.logs.1.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(line) = self.logs().into_iter().find(|line| line.contains(text)) {
                    return line;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(line) => line,
            Err(_) => panic!("rvirtd never logged {text:?}; it logged:\n{}", self.logs().join("\n")),
        }
    }
}
