"""listAllDomains(0) through python3-libvirt: prints {"count": N} or {"error": message, "code": N}.

Usage: native_list.py URI [SECONDS] (run with Debian's /usr/bin/python3, which has
python3-libvirt). SECONDS: how long the open connection sits idle before it lists, as a script
holding its connection between polls does (no event loop, so no keepalive).
"""

import json
import sys
import time

import libvirt

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
conn = libvirt.open(sys.argv[1])
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
try:
    print(json.dumps({"count": len(conn.listAllDomains(0))}))
except libvirt.libvirtError as error:
    print(json.dumps({"error": str(error), "code": error.get_error_code()}))
conn.close()
