"""listAllDomains(0) through python3-libvirt: prints {"count": N} or {"error": message, "code": N}.

Usage: native_list.py URI (run with Debian's /usr/bin/python3, which has python3-libvirt).
"""

import json
import sys

import libvirt

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
conn = libvirt.open(sys.argv[1])
try:
    print(json.dumps({"count": len(conn.listAllDomains(0))}))
except libvirt.libvirtError as error:
    print(json.dumps({"error": str(error), "code": error.get_error_code()}))
conn.close()
