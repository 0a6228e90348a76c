#!/usr/bin/python3
"""python3-libvirt's side of `cargo xtask bench`'s client comparison: times `conn.listAllDomains(0)`
as a Python user sees it (libvirt's C client, its RPC, the daemon, and the Python virDomain objects
built from the answer), against whichever daemon URI names: rvirtd's native socket or libvirtd.
The daemon must already hold exactly N domains (bench.rs populates rvirtd, xtask/libvirt_bench.py
populates libvirtd); a listing of any other length is an error.

Usage: libvirt_client_bench.py URI N ITERATIONS. Prints two lines (after one untimed warm-up
call): the latencies in nanoseconds, then this process's own CPU time across each call (libvirt's
C client and Python; the client is single-threaded here, so it waits for the daemon only in the
rest). A daemon that answered in no time at all would still leave the second.

libvirt_client_bench.py --hold URI: opens URI, prints "open" and keeps the connection until its
stdin ends. libvirtd's test:///default state lives only while some connection holds it (the last
close discards it, and the next open starts again from the driver's one "test" domain), so bench.rs
holds one open while libvirt_bench.py populates libvirtd and the clients here and virsh list it."""

import sys
import time

import libvirt

if sys.argv[1] == "--hold":
    held = libvirt.open(sys.argv[2])
    print("open", flush=True)
    sys.stdin.read()
    held.close()
    sys.exit(0)

uri, n, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = libvirt.open(uri)
samples, cpu = [], []
for _ in range(iterations + 1):
    start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
    domains = conn.listAllDomains(0)
    cpu.append(time.process_time_ns() - start_cpu)
    samples.append(time.perf_counter_ns() - start)
    if len(domains) != n:
        sys.exit(f"listed {len(domains)} domains, expected {n}")
    del domains
conn.close()
print(" ".join(str(s) for s in samples[1:]))
print(" ".join(str(s) for s in cpu[1:]))
