#!/usr/bin/env bash
# Regenerates link/hot.txt: the functions an idle gateway runs (start-up on a populated redb
# store, one WebSocket retrieve, idle), which build.rs hands to lld as --symbol-ordering-file so
# they sit together at the start of .text (issue 15, idle RSS; BENCHMARKS.md "Idle RSS and code
# placement"). Names that no longer exist are skipped by the linker, so a stale list only costs
# RSS, never the build. Needs valgrind and python3 (x86_64 glibc host, lld, the default linker).
# Usage: scripts/hot-order.sh [TWINS]   (twins created before the profiled restart, default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
TWINS=${1:-200}
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
MAP=$PWD/target/hot-order.map
# the map names each function section of exactly this binary (only the final link reruns)
EDGETWIN_LINK_MAP=$MAP nice -n 5 cargo build --release --bin edgetwin
BIN=$PWD/target/release/edgetwin
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { for _ in $(seq 600); do grep -q "listening on" "$1" && return 0; sleep 0.1; done; return 1; }

# 1. a populated store (natively)
P=$(port)
"$BIN" run --listen "127.0.0.1:$P" --store redb --data "$T/data" >"$T/pop.log" 2>&1 &
pid=$!
wait_listen "$T/pop.log"
for k in $(seq 0 $((TWINS - 1))); do
  echo "{\"topic\":\"bench/t$k/things/twin/commands/modify\",\"headers\":{\"correlation-id\":\"s$k\"},\"path\":\"/\",\"value\":{\"attributes\":{\"a0\":\"xxxxxxxxxxxxxxxx\"},\"features\":{\"f\":{\"properties\":{\"p0\":\"xxxxxxxxxxxxxxxx\"}}}}}"
done | "$BIN" ws -u ditto:ditto "ws://127.0.0.1:$P/ws/2" >"$T/pop.out"
kill -TERM $pid; wait $pid || true

# 2. the profiled restart: start-up, one retrieve (what `loadgen footprint` does), idle
P=$(port)
valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$T/cg.out" \
  --compress-strings=no --compress-pos=no \
  "$BIN" run --listen "127.0.0.1:$P" --store redb --data "$T/data" >"$T/cg.log" 2>&1 &
pid=$!
wait_listen "$T/cg.log"
echo '{"topic":"bench/t0/things/twin/commands/retrieve","headers":{"correlation-id":"cold"},"path":"/"}' |
  "$BIN" ws -u ditto:ditto "ws://127.0.0.1:$P/ws/2" | grep -q '"status":200'
sleep 3
# dump the profile (cg.out.1) before the shutdown, so shutdown code stays out of the list
callgrind_control -d $pid >/dev/null
sleep 1
kill -TERM $pid; wait $pid || true

# 3. code addresses run (valgrind reports this binary's link-time addresses) -> the function
# sections of the map that hold them -> their symbols, in link order
python3 - "$T/cg.out.1" "$MAP" "$BIN" >link/hot.txt <<'EOF'
import bisect, re, sys
prof, mapfile, binpath = sys.argv[1:4]
addrs = set()
for f in [prof]:
    ob = cob = None
    for line in open(f, errors="replace"):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("cob="):
            cob = line[4:].strip()
        elif line.startswith("cfn=0x") and cob == binpath:
            addrs.add(int(line[4:].split()[0].split("'")[0], 16))
        elif line.startswith("fn=0x") and ob == binpath:
            addrs.add(int(line[3:].split()[0].split("'")[0], 16))
        elif line.startswith("0x") and ob == binpath:
            addrs.add(int(line.split()[0], 16))
secs = []  # [start, end, symbol]
cur = None
for line in open(mapfile):
    p = line.split()
    if len(p) == 5 and p[4].endswith(")") and ":(.text" in p[4]:
        start, size = int(p[0], 16), int(p[2], 16)
        sec = p[4][p[4].index(":(") + 2:-1]
        m = re.match(r"\.text\.(?:(?:unlikely|startup|hot|exit|split)\.)?(.+)$", sec)
        cur = [start, start + size, m.group(1) if m else None]
        secs.append(cur)
    elif len(p) == 5 and cur is not None and cur[2] is None and int(p[0], 16) == cur[0]:
        cur[2] = p[4]  # a section of C or assembly code: its first symbol
secs.sort()
starts = [s[0] for s in secs]
hot = set()
for r in addrs:
    i = bisect.bisect_right(starts, r) - 1
    if i >= 0 and secs[i][0] <= r < secs[i][1] and secs[i][2]:
        hot.add(i)
print(f"hot-order: {len(addrs)} code addresses run, {len(hot)} functions, "
      f"{sum(secs[i][1] - secs[i][0] for i in hot)} bytes", file=sys.stderr)
for i in sorted(hot):
    print(secs[i][2])
EOF
echo "wrote link/hot.txt ($(wc -l <link/hot.txt) names); rebuild: cargo build --release"
