#!/usr/bin/env bash
# The uplink figures of BENCHMARKS.md (issue 19): two real edgetwin processes, one as the cloud.
#  - sync throughput: things/s mirrored while connected, and confirmed after the cloud returns
#    (N things changed while it was down);
#  - live round trip of a message answered by a device on the edge: direct vs through the cloud;
#  - RSS of the edge while the cloud is unreachable and things keep changing (compressed run),
#    next to a baseline edge without [uplink], for the sled and the redb store.
# Usage: scripts/uplink-bench.sh [N_SYNC] [K_LIVE] [UPDATES]      (defaults 2000 500 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
K=${2:-500}
U=${3:-200000}
cargo build --release --bin edgetwin --example uplinkbench
B=target/release/examples/uplinkbench
echo "== uplink: sync"
"$B" sync "$N"
echo "== uplink: live round trip"
"$B" live "$K"
echo "== uplink: RSS while offline (redb store)"
STORE=redb "$B" rss 1000 "$U"
echo "== uplink: RSS while offline (sled store, a fifth of the updates)"
STORE=sled "$B" rss 1000 $((U / 5))
