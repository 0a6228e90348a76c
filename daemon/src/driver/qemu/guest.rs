//! `Guest`: one running QEMU as the driver holds it, and its watcher, the task that turns what
//! QEMU does on its own into `DriverEvent`s: a guest power-off (SHUTDOWN with guest=true, then
//! the `on_poweroff` action), a PM suspend or wakeup, and the end of the process (after a
//! SHUTDOWN: shut off, shutdown; without one: shut off, crashed, as libvirt's
//! qemuProcessHandleMonitorEOF decides).

use super::process::{ExitWatch, Identity};
use super::qmp::{Events, Qmp, QmpEvent};
use crate::domain::{DomainState, reason};
use crate::driver::{DriverEvent, EventSink};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The running guests, by UUID. A std lock, held only to look up, insert or remove.
pub(super) type Guests = Arc<Mutex<HashMap<Uuid, Arc<Guest>>>>;

/// One running QEMU.
#[derive(Debug)]
pub(super) struct Guest {
    pub uuid: Uuid,
    /// The run (domain id) this process belongs to; a revert in place starts a new run.
    pub id: AtomicI32,
    pub name: String,
    pub identity: Identity,
    pub qmp: Qmp,
    /// Its runtime folder (monitor socket, log, identity), removed when it ends.
    pub dir: PathBuf,
    /// The daemon is ending it (destroy, managed save, a halting snapshot, a failed start): its
    /// end is that job's to record, not an event.
    pub stopping: AtomicBool,
    /// A reboot was asked: the guest's power-off becomes a reset.
    pub fake_reboot: AtomicBool,
    /// `<on_poweroff>`: what a guest power-off leads to.
    pub on_poweroff: &'static str,
    /// Cancelled once the process has ended and its folder is gone.
    pub ended: CancellationToken,
}

impl Guest {
    fn event(&self, state: DomainState, why: i32) -> DriverEvent {
        DriverEvent { uuid: self.uuid, id: self.id(), state, reason: why }
    }

    /// The run this process belongs to.
    pub(super) fn id(&self) -> i32 {
        self.id.load(Ordering::SeqCst)
    }
}

/// Watches `guest` until its process ends; then removes its folder, drops it from `guests` and,
/// unless the daemon ended it, reports how it ended.
pub(super) async fn watch(
    guest: Arc<Guest>,
    events: Events,
    exit: ExitWatch,
    sink: EventSink,
    guests: Guests,
) {
    let mut events = Some(events);
    let mut shutdown_seen = false;
    loop {
        let next = async {
            match &mut events {
                Some(events) => events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = next => match event {
                Some(event) => {
                    // A power-off that became a reset (a reboot) is over: a later end without a
                    // SHUTDOWN of its own is a crash.
                    shutdown_seen = match event.name.as_str() {
                        "SHUTDOWN" => true,
                        "RESET" | "RESUME" => false,
                        _ => shutdown_seen,
                    };
                    handle(&guest, &event, &sink).await;
                }
                // The monitor closed: QEMU is ending; wait for the process itself.
                None => events = None,
            },
            () = exit.ended() => break,
        }
    }
    // The process may have been seen gone before its last events were read.
    if let Some(events) = &mut events {
        while let Ok(event) = events.try_recv() {
            shutdown_seen |= event.name == "SHUTDOWN";
        }
    }
    super::process::remove_dir(&guest.dir);
    {
        let mut table = guests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if table.get(&guest.uuid).is_some_and(|current| Arc::ptr_eq(current, &guest)) {
            table.remove(&guest.uuid);
        }
    }
    let stopping = guest.stopping.load(Ordering::SeqCst);
    guest.ended.cancel();
    if !stopping {
        let why = if shutdown_seen { reason::SHUTOFF_SHUTDOWN } else { reason::SHUTOFF_CRASHED };
        tracing::info!(
            domain.name = guest.name,
            domain.id = guest.id(),
            reason = why,
            "QEMU ended on its own"
        );
        let _ = sink.send(guest.event(DomainState::Shutoff, why)).await;
    }
}

async fn handle(guest: &Arc<Guest>, event: &QmpEvent, sink: &EventSink) {
    tracing::debug!(domain.name = guest.name, event = event.name, data = %event.data, "QMP event");
    match event.name.as_str() {
        "SHUTDOWN" if event.data["guest"] == true && !guest.stopping.load(Ordering::SeqCst) => {
            let reboot = guest.fake_reboot.swap(false, Ordering::SeqCst) || guest.on_poweroff == "restart";
            // Another task: a command's reply comes through the reader this loop drains.
            let guest = guest.clone();
            tokio::spawn(async move {
                let result = if reboot {
                    match guest.qmp.execute("system_reset", None).await {
                        Ok(_) => guest.qmp.execute("cont", None).await.map(drop),
                        Err(error) => Err(error),
                    }
                } else {
                    // -no-shutdown keeps QEMU alive after the guest's power-off: end it.
                    guest.qmp.execute("quit", None).await.map(drop)
                };
                if let Err(error) = result {
                    tracing::warn!(domain.name = guest.name, %error, "acting on the guest's power-off failed");
                }
            });
        }
        "SUSPEND" => {
            let _ = sink.send(guest.event(DomainState::PmSuspended, reason::UNKNOWN)).await;
        }
        "WAKEUP" => {
            let _ = sink.send(guest.event(DomainState::Running, reason::RUNNING_WAKEUP)).await;
        }
        _ => {}
    }
}
