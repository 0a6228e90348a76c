#!/usr/bin/python3
"""libvirtd's side of `cargo xtask bench`: populate libvirt's test driver with N domains in the
same mix as rvirt's benchmark, then time virConnectListAllDomains (called through ctypes, so the
timed part is libvirt's C client, its RPC and libvirtd, with no Python objects built).

Usage: libvirt_bench.py URI N ITERATIONS. Prints one line: the latencies in nanoseconds."""

import ctypes
import sys
import time

import libvirt

uri, n, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = libvirt.open(uri)
for dom in conn.listAllDomains(0):  # test:///default starts with its own "test" domain
    dom.destroy()
    dom.undefine()
for i in range(n):
    uuid = "52540000-0000-4000-8000-%012x" % i
    xml = (f"<domain type='test'><name>bench-{i:06}</name><uuid>{uuid}</uuid>"
           "<memory unit='MiB'>64</memory><os><type>hvm</type></os><devices>"
           f"<disk type='file' device='disk'><source file='/var/lib/rvirt/bench-{i:06}.img'/>"
           "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    kind = i % 10
    if kind == 9:
        conn.createXML(xml, 0)
        continue
    dom = conn.defineXML(xml)
    if kind >= 5:
        dom.create()
        if kind == 8:
            dom.suspend()

c = ctypes.CDLL("libvirt.so.0")
c.virConnectOpen.restype = ctypes.c_void_p
c.virConnectOpen.argtypes = [ctypes.c_char_p]
c.virConnectListAllDomains.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)), ctypes.c_uint]
c.virDomainFree.argtypes = [ctypes.c_void_p]
c.free.argtypes = [ctypes.c_void_p]
raw = c.virConnectOpen(uri.encode())  # a second connection to the same driver state
if not raw:
    sys.exit("virConnectOpen failed")
samples = []
for _ in range(iterations + 1):
    domains = ctypes.POINTER(ctypes.c_void_p)()
    start = time.perf_counter_ns()
    count = c.virConnectListAllDomains(raw, ctypes.byref(domains), 0)
    samples.append(time.perf_counter_ns() - start)
    if count < 0:
        err = libvirt.virGetLastErrorMessage()
        sys.exit(f"virConnectListAllDomains failed: {err}")
    if count != n:
        sys.exit(f"listed {count} domains, expected {n}")
    for i in range(count):
        c.virDomainFree(domains[i])
    c.free(domains)
print(" ".join(str(s) for s in samples[1:]))
