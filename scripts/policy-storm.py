#!/usr/bin/env python3
"""Policy storm: N distinct policies of ~100 KB (1,400 property grants each, the largest the
gateway accepts builds a ~3.7 MB enforcer), a thing under each, every thing read twice; prints
the server's peak RSS (VmHWM). The enforcers kept in memory are bounded by policy_cache_mib
(docs/limits.md); before Dec 8 the shared ones (256) and the twin cache's memos were not.
Usage: scripts/policy-storm.py [BIN] [N]   (default target/release/edgetwin, 300)"""
import base64, http.client, json, os, subprocess, sys, tempfile

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/edgetwin"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
data = tempfile.mkdtemp(prefix="policy-storm-")
srv = subprocess.Popen([binary, "run", "--listen", "127.0.0.1:0", "--data", data, "--mqtt", "none"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    port = None
    for line in srv.stdout:
        if "listening on" in line:
            port = int(line.rsplit(":", 1)[1])
            break
    auth = {"Authorization": "Basic " + base64.b64encode(b"ditto:ditto").decode(),
            "Content-Type": "application/json"}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(method, path, body=None):
        c.request(method, path, body=None if body is None else json.dumps(body), headers=auth)
        r = c.getresponse()
        r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status}")

    def hwm():
        for line in open(f"/proc/{srv.pid}/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024

    rw = {"grant": ["READ", "WRITE"], "revoke": []}
    start = hwm()
    for i in range(n):
        grants = {f"thing:/features/f{f}/properties/p{f}": {"grant": ["READ"], "revoke": []}
                  for f in range(1400)}
        policy = {"entries": {
            "OWNER": {"subjects": {"nginx:ditto": {"type": "dev"}},
                      "resources": {"thing:/": rw, "policy:/": rw}},
            "READERS": {"subjects": {f"nginx:reader-{i}": {"type": "a"}}, "resources": grants}}}
        call("PUT", f"/api/2/policies/storm:p{i}", policy)
        call("PUT", f"/api/2/things/storm:t{i}", {"policyId": f"storm:p{i}", "attributes": {"i": i}})
        call("GET", f"/api/2/things/storm:t{i}")
    for i in range(n):
        call("GET", f"/api/2/things/storm:t{i}")
    print(f"policy storm: {n} distinct ~100 KB policies and things, each read twice: "
          f"peak RSS {hwm():.1f} MiB (after start {start:.1f} MiB) binary {binary}")
finally:
    srv.terminate()
    srv.wait()
    subprocess.run(["rm", "-rf", data])
