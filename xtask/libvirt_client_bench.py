#!/usr/bin/python3
"""python3-libvirt's side of `cargo xtask bench`'s client comparison: times `conn.listAllDomains(0)`
as a Python user sees it (libvirt's C client, its RPC, the daemon, and the Python virDomain objects
built from the answer), against whichever daemon URI names: rvirtd's native socket or libvirtd.
The daemon must already hold exactly N domains (bench.rs populates rvirtd, xtask/libvirt_bench.py
populates libvirtd); a listing of any other length is an error.

Usage: libvirt_client_bench.py URI N ITERATIONS. Prints one line: the latencies in nanoseconds
(after one untimed warm-up call).

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
samples = []
for _ in range(iterations + 1):
    start = time.perf_counter_ns()
    domains = conn.listAllDomains(0)
    samples.append(time.perf_counter_ns() - start)
    if len(domains) != n:
        sys.exit(f"listed {len(domains)} domains, expected {n}")
    del domains
conn.close()
print(" ".join(str(s) for s in samples[1:]))
