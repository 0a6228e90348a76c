//! What one committed change means to a watcher: the lifecycle events libvirt emits for it and
//! the `DomainSummary` fields it altered. Both are functions of the domain before and after the
//! change alone, so a guest-driven change (a QEMU that powered off) gets its events exactly as
//! an RPC's change does, and no operation has to remember to announce itself.

use crate::domain::{Domain, DomainState, reason};
use rvirt_proto::event::{EventType, changed, detail};
use std::sync::Arc;

/// Up to three lifecycle events (a revert that restarts a running domain paused has three), in
/// libvirt's order, inline: every change in the history holds one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifecycle {
    events: [(u8, u8); 3],
    len: u8,
}

impl Lifecycle {
    fn push(&mut self, kind: EventType, detail: i32) {
        if let Some(slot) = self.events.get_mut(usize::from(self.len)) {
            *slot = (kind as u8, detail as u8);
            self.len += 1;
        }
    }

    /// (virDomainEventType, detail) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, i32)> + '_ {
        self.events[..usize::from(self.len)]
            .iter()
            .map(|&(kind, detail)| (i32::from(kind), i32::from(detail)))
    }
}

/// libvirt's lifecycle events for the change from `before` to `after` (`None`: absent);
/// `stopped_as` is the shut-off reason of a transient domain that went because it stopped.
/// The rules are libvirt's test driver's (libvirt-semantics §7.2), with QEMU's STARTED/RESTORED.
pub fn lifecycle(before: Option<&Domain>, after: Option<&Domain>, stopped_as: Option<i32>) -> Lifecycle {
    let mut events = Lifecycle::default();
    match (before, after) {
        (None, None) => {}
        (None, Some(after)) => {
            if after.is_active() {
                // CreateXML: STARTED only, even over an inactive persistent definition.
                started(&mut events, None, after);
            } else {
                events.push(EventType::Defined, detail::DEFINED_ADDED);
            }
        }
        (Some(before), None) => {
            if before.persistent {
                events.push(EventType::Undefined, detail::UNDEFINED_REMOVED);
            } else if before.is_active() {
                events.push(
                    EventType::Stopped,
                    stopped_detail(stopped_as.unwrap_or(reason::SHUTOFF_DESTROYED)),
                );
            }
        }
        (Some(before), Some(after)) => {
            definition(&mut events, before, after);
            if before.persistent && !after.persistent {
                // Undefining a running domain: no STOPPED, it runs on as a transient one.
                events.push(EventType::Undefined, detail::UNDEFINED_REMOVED);
            }
            state(&mut events, before, after);
        }
    }
    events
}

/// DEFINED for a definition that appeared or changed.
fn definition(events: &mut Lifecycle, before: &Domain, after: &Domain) {
    if !after.persistent {
        return;
    }
    if !before.persistent {
        events.push(EventType::Defined, detail::DEFINED_ADDED);
        return;
    }
    let persistent_def = |d: &Domain| d.next_def.clone().unwrap_or_else(|| d.def.clone());
    let (old, new) = (persistent_def(before), persistent_def(after));
    // Every redefinition is a new definition, even one identical to the last (libvirt sends
    // DEFINED/UPDATED for it too); other changes keep the same one.
    if Arc::ptr_eq(&old, &new) {
        return;
    }
    let from_snapshot = matches!(
        (after.state, after.reason),
        (DomainState::Running, reason::RUNNING_FROM_SNAPSHOT)
            | (DomainState::Paused, reason::PAUSED_FROM_SNAPSHOT)
            | (DomainState::Shutoff, reason::SHUTOFF_FROM_SNAPSHOT)
    );
    let detail = if from_snapshot { detail::DEFINED_FROM_SNAPSHOT } else { detail::DEFINED_UPDATED };
    events.push(EventType::Defined, detail);
}

/// The events of a change of state (and of run: a new id is a stop and a start).
fn state(events: &mut Lifecycle, before: &Domain, after: &Domain) {
    match (before.is_active(), after.is_active()) {
        (false, false) => {}
        (false, true) => started(events, Some(before), after),
        (true, false) => events.push(EventType::Stopped, stopped_detail(after.reason)),
        (true, true) if before.id != after.id => {
            events.push(EventType::Stopped, stopped_detail(reason::SHUTOFF_FROM_SNAPSHOT));
            started(events, Some(before), after);
        }
        (true, true) => {
            if before.state == after.state {
                return;
            }
            let from_snapshot = after.reason == from_snapshot_reason(after.state);
            match after.state {
                DomainState::Paused => events.push(EventType::Suspended, suspended_detail(after.reason)),
                DomainState::Running if before.state == DomainState::PmSuspended => {
                    events.push(EventType::Started, detail::STARTED_WAKEUP);
                }
                DomainState::Running => {
                    let detail =
                        if from_snapshot { detail::RESUMED_FROM_SNAPSHOT } else { detail::RESUMED_UNPAUSED };
                    events.push(EventType::Resumed, detail);
                }
                DomainState::PmSuspended => events.push(EventType::PmSuspended, detail::PMSUSPENDED_MEMORY),
                DomainState::Crashed => events.push(EventType::Crashed, detail::CRASHED_PANICKED),
                // Differs from libvirt: QEMU's SHUTDOWN/{FINISHED,GUEST,HOST} event is not sent;
                // rvirt sees a guest's shutdown only when it has stopped (STOPPED/SHUTDOWN).
                DomainState::Shutdown
                | DomainState::NoState
                | DomainState::Blocked
                | DomainState::Shutoff => {}
            }
        }
    }
}

/// STARTED (and SUSPENDED when the domain starts paused).
fn started(events: &mut Lifecycle, before: Option<&Domain>, after: &Domain) {
    let restored = before.is_some_and(|b| !b.is_active() && b.has_managed_save) && !after.has_managed_save;
    let from_snapshot = after.reason == from_snapshot_reason(after.state);
    let detail = if from_snapshot {
        detail::STARTED_FROM_SNAPSHOT
    } else if restored || after.reason == reason::RUNNING_RESTORED {
        detail::STARTED_RESTORED
    } else {
        detail::STARTED_BOOTED
    };
    events.push(EventType::Started, detail);
    if after.state == DomainState::Paused {
        let detail = if from_snapshot {
            detail::SUSPENDED_FROM_SNAPSHOT
        } else if restored {
            detail::SUSPENDED_RESTORED
        } else {
            detail::SUSPENDED_PAUSED
        };
        events.push(EventType::Suspended, detail);
    }
}

fn from_snapshot_reason(state: DomainState) -> i32 {
    match state {
        DomainState::Running => reason::RUNNING_FROM_SNAPSHOT,
        DomainState::Paused => reason::PAUSED_FROM_SNAPSHOT,
        DomainState::Shutoff => reason::SHUTOFF_FROM_SNAPSHOT,
        _ => -1,
    }
}

/// VIR_DOMAIN_EVENT_STOPPED_* for a virDomainShutoffReason.
fn stopped_detail(shutoff_reason: i32) -> i32 {
    match shutoff_reason {
        reason::SHUTOFF_SHUTDOWN => detail::STOPPED_SHUTDOWN,
        reason::SHUTOFF_CRASHED => detail::STOPPED_CRASHED,
        reason::SHUTOFF_SAVED => detail::STOPPED_SAVED,
        reason::SHUTOFF_FAILED => detail::STOPPED_FAILED,
        reason::SHUTOFF_FROM_SNAPSHOT => detail::STOPPED_FROM_SNAPSHOT,
        _ => detail::STOPPED_DESTROYED,
    }
}

/// VIR_DOMAIN_EVENT_SUSPENDED_* for a virDomainPausedReason.
fn suspended_detail(paused_reason: i32) -> i32 {
    match paused_reason {
        reason::PAUSED_IOERROR => detail::SUSPENDED_IOERROR,
        reason::PAUSED_WATCHDOG => detail::SUSPENDED_WATCHDOG,
        reason::PAUSED_FROM_SNAPSHOT => detail::SUSPENDED_FROM_SNAPSHOT,
        _ => detail::SUSPENDED_PAUSED,
    }
}

/// The `changed` bits (rvirt_proto::event::changed) of the change from `before` to `after`.
pub fn changed(before: Option<&Domain>, after: Option<&Domain>) -> u32 {
    let (Some(b), Some(a)) = (before, after) else {
        return if before.is_none() && after.is_none() { 0 } else { u32::MAX >> 24 };
    };
    let mut bits = 0;
    let mut set = |bit: u32, differs: bool| {
        if differs {
            bits |= bit;
        }
    };
    set(changed::STATE, (b.state, b.reason) != (a.state, a.reason));
    set(changed::ID, b.id != a.id);
    set(changed::PERSISTENT, b.persistent != a.persistent);
    set(changed::AUTOSTART, b.autostart != a.autostart);
    set(changed::MANAGED_SAVE, b.has_managed_save != a.has_managed_save);
    set(
        changed::SNAPSHOTS,
        b.moments.snapshots != a.moments.snapshots
            || b.moments.current_snapshot != a.moments.current_snapshot,
    );
    set(changed::CHECKPOINTS, b.moments.checkpoints != a.moments.checkpoints);
    // By pointer only: this runs under the registry's write lock, and only a (re)definition or a
    // revert puts a new definition in place (an identical redefinition counts, as its event does).
    let same_def = |x: &Option<Arc<_>>, y: &Option<Arc<_>>| match (x, y) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    };
    set(changed::DEFINITION, !Arc::ptr_eq(&b.def, &a.def) || !same_def(&b.next_def, &a.next_def));
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{DomainDef, ParseDefaults};
    use DomainState::*;

    fn domain() -> Domain {
        let xml = "<domain type='test'><name>a</name><memory>1</memory><os><type>hvm</type></os></domain>";
        Domain::new(Arc::new(DomainDef::parse(xml, &ParseDefaults { arch: "i686" }).unwrap()), true)
    }

    fn with(mut d: Domain, state: DomainState, why: i32, id: i32) -> Domain {
        (d.state, d.reason, d.id) = (state, why, id);
        d
    }

    fn names(events: Lifecycle) -> Vec<String> {
        events
            .iter()
            .map(|(kind, detail)| {
                let kind = EventType::from_i32(kind).unwrap();
                format!("{} {}", kind.virsh_name(), kind.detail_name(detail))
            })
            .collect()
    }

    #[test]
    fn each_transition_gets_libvirts_events() {
        let off = domain();
        let running = with(off.clone(), Running, reason::RUNNING_BOOTED, 1);
        let paused = with(running.clone(), Paused, reason::PAUSED_USER, 1);
        let resumed = with(running.clone(), Running, reason::RUNNING_UNPAUSED, 1);
        let shut = with(off.clone(), Shutoff, reason::SHUTOFF_SHUTDOWN, -1);
        let destroyed = with(off.clone(), Shutoff, reason::SHUTOFF_DESTROYED, -1);
        let saved =
            Domain { has_managed_save: true, ..with(off.clone(), Shutoff, reason::SHUTOFF_SAVED, -1) };
        let restored = with(off.clone(), Running, reason::RUNNING_RESTORED, 2);
        let pm = with(running.clone(), PmSuspended, reason::UNKNOWN, 1);
        let woken = with(running.clone(), Running, reason::RUNNING_WAKEUP, 1);
        let snap_paused = with(off.clone(), Paused, reason::PAUSED_FROM_SNAPSHOT, 3);
        let mut transient = running.clone();
        transient.persistent = false;
        // (before, after, stopped_as, the events' names)
        type Case<'a> = (Option<&'a Domain>, Option<&'a Domain>, Option<i32>, &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (None, Some(&off), None, &["Defined Added"]),
            (None, Some(&transient), None, &["Started Booted"]),
            (Some(&off), Some(&running), None, &["Started Booted"]),
            (Some(&running), Some(&paused), None, &["Suspended Paused"]),
            (Some(&paused), Some(&resumed), None, &["Resumed Unpaused"]),
            (Some(&running), Some(&shut), None, &["Stopped Shutdown"]),
            (Some(&running), Some(&destroyed), None, &["Stopped Destroyed"]),
            (Some(&running), Some(&saved), None, &["Stopped Saved"]),
            (Some(&saved), Some(&restored), None, &["Started Restored"]),
            (Some(&running), Some(&pm), None, &["PMSuspended Memory"]),
            (Some(&pm), Some(&woken), None, &["Started Event wakeup"]),
            (Some(&off), None, None, &["Undefined Removed"]),
            (Some(&transient), None, Some(reason::SHUTOFF_DESTROYED), &["Stopped Destroyed"]),
            (Some(&transient), None, Some(reason::SHUTOFF_CRASHED), &["Stopped Crashed"]),
            (
                Some(&running),
                Some(&snap_paused),
                None,
                &["Stopped Snapshot", "Started Snapshot", "Suspended Snapshot"],
            ),
            (Some(&running), Some(&transient), None, &["Undefined Removed"]),
            (Some(&transient), Some(&running), None, &["Defined Added"]),
            (Some(&running), Some(&running), None, &[]),
        ];
        for (before, after, stopped_as, expected) in cases {
            assert_eq!(names(lifecycle(before, after, stopped_as)), expected, "{before:?} -> {after:?}");
        }
        // A new definition: UPDATED, and for a running domain it waits for the next boot.
        let mut redefined = off.clone();
        let xml = "<domain type='test'><name>a</name><memory>2</memory><os><type>hvm</type></os></domain>";
        let mut def = DomainDef::parse(xml, &ParseDefaults { arch: "i686" }).unwrap();
        def.uuid = off.uuid();
        redefined.def = Arc::new(def);
        assert_eq!(names(lifecycle(Some(&off), Some(&redefined), None)), ["Defined Updated"]);
        // As libvirt: a redefinition identical to the last is still one.
        let mut same = off.clone();
        same.def = Arc::new((*off.def).clone());
        assert_eq!(names(lifecycle(Some(&off), Some(&same), None)), ["Defined Updated"]);
        assert_eq!(changed(Some(&off), Some(&same)), changed::DEFINITION);
        let mut next = running.clone();
        next.next_def = Some(redefined.def.clone());
        assert_eq!(names(lifecycle(Some(&running), Some(&next), None)), ["Defined Updated"]);
        assert_eq!(changed(Some(&running), Some(&next)), changed::DEFINITION);
    }

    #[test]
    fn changed_names_each_altered_field() {
        let off = domain();
        let mut marked = off.clone();
        marked.autostart = true;
        assert_eq!(changed(Some(&off), Some(&marked)), changed::AUTOSTART);
        let running = with(off.clone(), Running, reason::RUNNING_BOOTED, 4);
        assert_eq!(changed(Some(&off), Some(&running)), changed::STATE | changed::ID);
        assert_eq!(changed(Some(&off), Some(&off)), 0);
        assert_eq!(changed(None, Some(&off)), 0xff);
    }
}
