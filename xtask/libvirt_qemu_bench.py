#!/usr/bin/python3
"""libvirtd's side of `cargo xtask bench --qemu`: libvirt 9.0's own QEMU driver, embedded in this
process through python3-libvirt (`qemu:///embed?root=ROOT`), timed on the boot-sector guest (q35,
32 MiB, 1 vcpu, TCG) with the same operations, in the same order, as rvirtd's side
(xtask/src/bench_qemu.rs).

Usage: libvirt_qemu_bench.py ROOT WORK RUNS LISTINGS GUESTS
  ROOT      the embedded driver's root (this script writes ROOT/etc/qemu.conf)
  WORK      a folder holding boot.img (the boot sector); guests' files are made under it
  RUNS      runs of each lifecycle operation
  LISTINGS  listAllDomains calls timed at each count of running guests
  GUESTS    the largest count of running guests (the listing rows are 1, 10 and GUESTS)

Progress goes to stderr; the last line on stdout is one JSON object: "samples" (operation ->
nanoseconds), "errors" (operation -> why it could not be measured), "rss_bytes" (this process:
"python" before libvirt is loaded, "0" with the connection open and no guest, "N" with N guests
running, "after" once those are destroyed and undefined again), "qemu_rss_bytes" (the mean RSS of those N QEMUs), "facts" ("revert_restarts_qemu":
whether a revert of the running guest gave it a new QEMU process).

The driver runs in this process, so listAllDomains here crosses no socket (rvirtd's is timed over
its unix socket), and "daemon RSS" is this python3 process. The guest's XML asks libvirt for no
USB controller and no memballoon, so its QEMU has the same devices as rvirtd's. QEMUs that libvirt
starts are reparented to this process (PR_SET_CHILD_SUBREAPER) and reaped here at once: on this
machine PID 1 reaps orphans only every 1-2 s, which libvirt's kill checks would otherwise wait for
(qemu-notes.md). libvirt refuses internal snapshots while a read-only raw disk is attached, so its
snapshot runs use a writable qcow2 overlay of boot.img, made by QMP blockdev-create in a
`-machine none` QEMU (qemu-img is not installed here)."""

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time


def rss_bytes(pid="self"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


root, work = sys.argv[1], sys.argv[2]
runs, listings, most = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
python_rss = rss_bytes()
import libvirt  # noqa: E402  (after the bare interpreter's RSS is read)

QEMU = "/usr/bin/qemu-system-x86_64"
samples, errors, facts = {}, {}, {}
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def progress(text):
    print(f"  libvirtd: {text}", file=sys.stderr, flush=True)


def sample(op, started_ns):
    samples.setdefault(op, []).append(time.perf_counter_ns() - started_ns)


# --- the embedded driver -------------------------------------------------------------------

os.makedirs(f"{root}/etc", exist_ok=True)
with open(f"{root}/etc/qemu.conf", "w") as conf:
    conf.write(
        'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
        'security_driver = "none"\ncgroup_controllers = [ ]\nnamespaces = [ ]\n'
        'stdio_handler = "file"\n'
    )


def event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


libvirt.virEventRegisterDefaultImpl()  # the embedded driver needs an event loop of its own
threading.Thread(target=event_loop, daemon=True).start()
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors raise; don't also print them

mine = set()  # QEMUs this script waits for itself (the qcow2 helper)


def stat_of(pid):
    """(command name, state) of a process, zombies included."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return ("", "")
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    return (comm, stat[stat.rindex(")") + 2:].split()[0])


def children():
    found = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                found.extend(int(pid) for pid in f.read().split())
        except OSError:
            pass
    return found


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reaper():
    """Reaps QEMUs reparented to this process, 20 ms after they end.

    Only QEMUs, and only once they have been zombies that long: libvirt waits at once for its
    own children (its helpers, and the capabilities probe, a QEMU it runs as its own child), and
    reaping one of those here would take its exit status from libvirt ("unable to wait for
    process: No child processes"). A guest's QEMU is no child of libvirt's (it daemonizes it), so nobody else
    waits for it, and libvirt's kill checks poll every 200 ms: 20 ms costs them nothing.
    WNOWAIT only peeks at an exited child."""
    first_seen = {}
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            time.sleep(0.002)
            continue
        now = time.monotonic()
        candidates = set(children()) | ({info.si_pid} if info else set())
        zombies = {pid for pid in candidates - mine if stat_of(pid) == ("qemu-system-x86", "Z")}
        for pid in zombies:
            if now - first_seen.setdefault(pid, now) >= 0.02:
                reap(pid)
        for pid in list(first_seen):
            if pid not in zombies:
                del first_seen[pid]
        time.sleep(0.001)


progress("opening qemu:///embed (the first open probes QEMU's capabilities)")
conn = libvirt.open(f"qemu:///embed?root={root}")
rss_empty = rss_bytes()
# After the open, whose capabilities probe is libvirt's own child: from here on, QEMUs that
# libvirt daemonizes are reparented here and reaped at once, not by PID 1 in its own time.
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
    threading.Thread(target=reaper, daemon=True).start()
else:
    progress("PR_SET_CHILD_SUBREAPER failed: QEMU exits wait for PID 1's reaping")


# --- guests -------------------------------------------------------------------------------

def guest_xml(name, disk_path, disk_format, readonly):
    folder = f"{work}/{name}"
    os.makedirs(folder, exist_ok=True)
    return (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>"
        "<features><acpi/></features><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='{disk_format}'/>"
        f"<source file='{disk_path}'/><target dev='vda' bus='virtio'/>"
        f"{'<readonly/>' if readonly else ''}</disk>"
        f"<serial type='file'><source path='{folder}/serial.log'/><target port='0'/></serial>"
        "<controller type='usb' model='none'/><memballoon model='none'/>"
        "</devices></domain>"
    )


def boot_xml(name):
    return guest_xml(name, f"{work}/boot.img", "raw", True)


def serial_path(name):
    return f"{work}/{name}/serial.log"


def wait_boot(name, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(serial_path(name)) as f:
                if "BOOT" in f.read():
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"guest {name} never printed BOOT")
        time.sleep(0.001)


def wait_shutoff(dom, timeout=20.0):
    deadline = time.monotonic() + timeout
    while dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dom.name()} not shut off within {timeout} s")
        time.sleep(0.001)


def pid_of(dom):
    with open(f"{root}/run/qemu/{dom.name()}.pid") as f:
        return int(f.read().strip())


def start_and_boot(dom, name):
    """create() until it returns, and until the guest printed BOOT (its serial file emptied first)."""
    try:
        os.unlink(serial_path(name))
    except FileNotFoundError:
        pass
    started = time.perf_counter_ns()
    dom.create()
    sample("start", started)
    wait_boot(name)
    sample("start_boot", started)
    # The power button is armed a few instructions after BOOT; leave the guest that long.
    time.sleep(0.05)


def measure(op, work_fn):
    """Runs work_fn; on failure notes why (once) and carries on with the other operations."""
    try:
        work_fn()
    except Exception as error:  # noqa: BLE001 (any failure is a row that says why)
        errors.setdefault(op, f"{type(error).__name__}: {error}".splitlines()[0][:200])
        progress(f"{op} failed: {errors[op]}")


def lifecycle(i):
    """One run of every lifecycle operation on a fresh domain, in rvirtd's order."""
    name = f"life-{i:03}"
    xml = boot_xml(name)
    started = time.perf_counter_ns()
    dom = conn.defineXML(xml)
    sample("define", started)

    def pause():
        start_and_boot(dom, name)
        started = time.perf_counter_ns()
        dom.suspend()
        sample("suspend", started)
        started = time.perf_counter_ns()
        dom.resume()
        sample("resume", started)

    def acpi():
        if not dom.isActive():
            start_and_boot(dom, name)
        started = time.perf_counter_ns()
        dom.shutdown()
        wait_shutoff(dom)
        sample("shutdown", started)

    def destroy():
        start_and_boot(dom, name)
        started = time.perf_counter_ns()
        dom.destroy()
        sample("destroy", started)

    def kill():
        start_and_boot(dom, name)
        pid = pid_of(dom)
        started = time.perf_counter_ns()
        os.kill(pid, 9)
        wait_shutoff(dom)
        sample("kill", started)

    def save():
        start_and_boot(dom, name)
        started = time.perf_counter_ns()
        dom.managedSave(0)
        sample("managed_save", started)
        started = time.perf_counter_ns()
        dom.create()
        sample("restore", started)
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            raise RuntimeError(f"restored, the domain is in state {dom.state()}")
        dom.destroy()

    try:
        for op, work_fn in [("suspend", pause), ("shutdown", acpi), ("destroy", destroy),
                            ("kill", kill), ("managed_save", save)]:
            measure(op, work_fn)
            if dom.isActive():
                dom.destroy()
    finally:
        if dom.isActive():
            dom.destroy()
        if dom.hasManagedSaveImage(0):
            dom.managedSaveRemove(0)
        dom.undefine()


# --- a writable qcow2 overlay of boot.img, through QMP --------------------------------------

def qmp_call(stream, command, arguments=None):
    message = {"execute": command}
    if arguments is not None:
        message["arguments"] = arguments
    stream.write((json.dumps(message) + "\n").encode())
    stream.flush()
    while True:
        reply = json.loads(stream.readline())
        if "return" in reply:
            return reply["return"]
        if "error" in reply:
            raise RuntimeError(f"{command}: {reply['error']['desc']}")


def qmp_job(stream, job, command, options):
    qmp_call(stream, command, {"job-id": job, "options": options})
    while True:
        jobs = {j["id"]: j for j in qmp_call(stream, "query-jobs")}
        status = jobs.get(job, {}).get("status")
        if status == "concluded":
            if "error" in jobs[job]:
                raise RuntimeError(f"{command}: {jobs[job]['error']}")
            qmp_call(stream, "job-dismiss", {"id": job})
            return
        time.sleep(0.005)


def make_overlay(path):
    monitor = f"{work}/overlay.qmp"
    helper = subprocess.Popen(
        [QEMU, "-machine", "none", "-nodefaults", "-display", "none", "-S",
         "-qmp", f"unix:{monitor},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mine.add(helper.pid)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(monitor)
                break
            except OSError:
                if time.monotonic() > deadline or helper.poll() is not None:
                    raise RuntimeError("the qcow2 helper QEMU did not start")
                time.sleep(0.01)
        stream = sock.makefile("rwb")
        stream.readline()  # greeting
        qmp_call(stream, "qmp_capabilities")
        qmp_job(stream, "file", "blockdev-create", {"driver": "file", "filename": path, "size": 0})
        qmp_call(stream, "blockdev-add", {"driver": "file", "filename": path, "node-name": "f"})
        qmp_job(stream, "qcow2", "blockdev-create",
                {"driver": "qcow2", "file": "f", "size": 1 << 20,
                 "backing-file": f"{work}/boot.img", "backing-fmt": "raw"})
        qmp_call(stream, "quit")
        helper.wait(10)
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()


def snapshots():
    name = "snap"
    overlay = f"{work}/snap.qcow2"
    make_overlay(overlay)
    dom = conn.defineXML(guest_xml(name, overlay, "qcow2", False))
    try:
        start_and_boot(dom, name)
        for i in range(runs):
            xml = f"<domainsnapshot><name>s{i}</name></domainsnapshot>"
            started = time.perf_counter_ns()
            dom.snapshotCreateXML(xml, 0)
            sample("snapshot_create", started)
        first = dom.snapshotLookupByName("s0", 0)
        for _ in range(runs):
            pid = pid_of(dom)
            started = time.perf_counter_ns()
            dom.revertToSnapshot(first, 0)
            sample("snapshot_revert", started)
            facts["revert_restarts_qemu"] = facts.get("revert_restarts_qemu", False) or pid_of(dom) != pid
        if dom.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            raise RuntimeError(f"reverted to a running snapshot, the domain is in state {dom.state()}")
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


# --- listings and memory with many guests ---------------------------------------------------

c = ctypes.CDLL("libvirt.so.0")
c.virConnectListAllDomains.argtypes = [
    ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)), ctypes.c_uint]
c.virDomainFree.argtypes = [ctypes.c_void_p]
c.free.argtypes = [ctypes.c_void_p]


def list_latency(count):
    raw = conn.c_pointer()  # the C call on this very connection: no Python objects in the timing
    for i in range(listings + 1):
        domains = ctypes.POINTER(ctypes.c_void_p)()
        started = time.perf_counter_ns()
        listed = c.virConnectListAllDomains(raw, ctypes.byref(domains), 0)
        elapsed = time.perf_counter_ns() - started
        if listed != count:
            raise RuntimeError(f"listed {listed} domains, expected {count}")
        for j in range(listed):
            c.virDomainFree(domains[j])
        c.free(domains)
        if i > 0:
            samples.setdefault(f"list_{count}", []).append(elapsed)


def many():
    guests = []
    try:
        for i in range(most):
            name = f"many-{i:03}"
            dom = conn.defineXML(boot_xml(name))
            guests.append(dom)
            dom.create()
            if i + 1 in (1, 10, most):
                for j in range(i + 1):
                    wait_boot(f"many-{j:03}")
                list_latency(i + 1)
                progress(f"{i + 1} guests running")
        time.sleep(0.5)
        rss["daemon_full"] = rss_bytes()
        pids = [pid_of(dom) for dom in guests]
        rss["qemu"] = sum(rss_bytes(pid) for pid in pids) // len(pids)
    finally:
        for dom in guests:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    time.sleep(0.5)
    rss["daemon_after"] = rss_bytes()


def leftover_qemus():
    """Live QEMUs whose command line names ROOT or WORK: only this script's."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"qemu-system-x86_64") and any(
                root.encode() in arg or work.encode() in arg for arg in args):
            found.append(int(entry))
    return found


rss = {}
try:
    for i in range(runs):
        measure("lifecycle", lambda: lifecycle(i))
        progress(f"lifecycle run {i + 1}/{runs}")
    measure("snapshot_create", snapshots)
    progress("snapshots done")
    measure("list_1", many)
finally:
    # Whatever failed, no QEMU started here outlives this script.
    for pid in leftover_qemus():
        try:
            os.kill(pid, 9)
            progress(f"killed a QEMU left running (pid {pid})")
        except ProcessLookupError:
            pass
    conn.close()

print(json.dumps({
    "samples": samples,
    "errors": errors,
    "rss_bytes": {"python": python_rss, "0": rss_empty, str(most): rss.get("daemon_full"),
                  "after": rss.get("daemon_after")},
    "qemu_rss_bytes": rss.get("qemu"),
    "facts": facts,
}))
