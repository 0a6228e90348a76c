"""python3-libvirt against rvirtd's libvirt-protocol socket while the Rust test churns domains.

Usage: native_race.py URI CONFIG_JSON, CONFIG_JSON = {"names": {name: uuid, ...}, "stable": [name, ...],
"marker": name}. Run with Debian's /usr/bin/python3 (python3-libvirt).

1. Registers the default event implementation, runs it in a thread and registers one lifecycle
   callback for every domain, recording (event, detail, id) per domain name.
2. Prints READY, then lists with listAllDomains(0) as fast as it can, checking each listing is
   one consistent snapshot: no UUID or name twice, every name with its own UUID, every id -1 or a
   unique positive one, and every "stable" domain (never undefined by the churn) exactly once.
3. Meanwhile a second thread, on its own connection, runs the legacy enumeration
   (numOfDomains/listDomainsID/lookupByID + numOfDefinedDomains/listDefinedDomains/lookupByName)
   and counts how often it fails the same checks: reported, not judged here.
4. On a line on stdin (the churn is over and the marker domain defined) it waits for the marker's
   DEFINED event (events arrive in commit order, so every earlier one has then arrived), stops,
   deregisters and prints one JSON summary line.
"""

import json
import sys
import threading
import time

import libvirt

URI = sys.argv[1]
CONFIG = json.loads(sys.argv[2])
NAMES = CONFIG["names"]
STABLE = CONFIG["stable"]
MARKER = CONFIG["marker"]
MAX_EXAMPLES = 20

# libvirt prints every error on stderr by default; they are counted here instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
libvirt.virEventRegisterDefaultImpl()


def run_event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


threading.Thread(target=run_event_loop, daemon=True).start()

conn = libvirt.open(URI)
lock = threading.Lock()
events = {}
event_problems = []
marker_seen = threading.Event()


def on_lifecycle(_conn, dom, event, detail, _opaque):
    name, dom_id = dom.name(), dom.ID()
    with lock:
        events.setdefault(name, []).append([event, detail, dom_id])
    if name == MARKER:
        marker_seen.set()


callback = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, on_lifecycle, None)

stop = threading.Event()


def wait_for_stdin():
    sys.stdin.readline()
    stop.set()


def check(listing):
    """The problems of one listing of (name, uuid, id)."""
    problems = []
    names, uuids, ids = set(), set(), set()
    for name, uuid, dom_id in listing:
        if uuid in uuids:
            problems.append("uuid %s twice" % uuid)
        if name in names:
            problems.append("name %s twice" % name)
        uuids.add(uuid)
        names.add(name)
        if NAMES.get(name) != uuid:
            problems.append("%s has uuid %s, expected %s" % (name, uuid, NAMES.get(name)))
        if dom_id != -1:
            if dom_id <= 0:
                problems.append("%s has id %d" % (name, dom_id))
            elif dom_id in ids:
                problems.append("id %d twice" % dom_id)
            ids.add(dom_id)
    for name in STABLE:
        if name not in names:
            problems.append("stable %s missing" % name)
    return problems


legacy = {"listings": 0, "failed_listings": 0, "lookup_failures": 0, "problems": 0, "examples": []}


def run_legacy():
    other = libvirt.open(URI)
    while not stop.is_set():
        listing, failed = [], False
        try:
            for dom_id in other.listDomainsID():
                try:
                    dom = other.lookupByID(dom_id)
                    listing.append((dom.name(), dom.UUIDString(), dom.ID()))
                except libvirt.libvirtError as error:
                    legacy["lookup_failures"] += 1
                    failed = True
                    if len(legacy["examples"]) < MAX_EXAMPLES:
                        legacy["examples"].append("lookupByID(%d): %s" % (dom_id, error))
            for name in other.listDefinedDomains():
                try:
                    dom = other.lookupByName(name)
                    listing.append((dom.name(), dom.UUIDString(), -1))
                except libvirt.libvirtError as error:
                    legacy["lookup_failures"] += 1
                    failed = True
                    if len(legacy["examples"]) < MAX_EXAMPLES:
                        legacy["examples"].append("lookupByName(%s): %s" % (name, error))
        except libvirt.libvirtError as error:
            failed = True
            if len(legacy["examples"]) < MAX_EXAMPLES:
                legacy["examples"].append("listing: %s" % error)
        problems = check(listing)
        legacy["listings"] += 1
        legacy["problems"] += len(problems)
        if problems or failed:
            legacy["failed_listings"] += 1
        for problem in problems:
            if len(legacy["examples"]) < MAX_EXAMPLES:
                legacy["examples"].append(problem)
    other.close()


print("READY", flush=True)
threading.Thread(target=wait_for_stdin, daemon=True).start()
legacy_thread = threading.Thread(target=run_legacy)
legacy_thread.start()

started = time.monotonic()
listings, sizes, violations, violation_count, errors = 0, [], [], 0, []
while not stop.is_set():
    try:
        domains = conn.listAllDomains(0)
    except libvirt.libvirtError as error:
        errors.append(str(error))
        if len(errors) > MAX_EXAMPLES:
            break
        continue
    listing = [(d.name(), d.UUIDString(), d.ID()) for d in domains]
    listings += 1
    sizes.append(len(listing))
    problems = check(listing)
    violation_count += len(problems)
    violations.extend(problems[: max(0, MAX_EXAMPLES - len(violations))])

if not marker_seen.wait(10):
    event_problems.append("the marker's DEFINED event did not arrive within 10 s")
legacy_thread.join()
conn.domainEventDeregisterAny(callback)
conn.close()
with lock:
    recorded = dict(events)
print(json.dumps({
    "listings": listings,
    "min_size": min(sizes) if sizes else None,
    "max_size": max(sizes) if sizes else None,
    "violations": violations,
    "violation_count": violation_count,
    "errors": errors,
    "legacy": legacy,
    "events": recorded,
    "event_problems": event_problems,
    "seconds": round(time.monotonic() - started, 3),
}), flush=True)
