"""Part of scripts/hot-order.sh: code addresses an idle gateway ran (callgrind's profile and the
page faults perf recorded) -> the function sections of the linker map that hold them -> their
symbols, in link order, on stdout (link/hot.txt), together with the names of the previous list
that are still in the build (a page fault shows one function per fault-around window, so each
run adds what the last one's layout hid).
Usage: hot-order.py CALLGRIND_OUT PERF_SCRIPT_OUT TEXT_SECTION_LINE MAP BIN [PREVIOUS_LIST]"""
import bisect
import re
import sys

prof, faults, textsec, mapfile, binpath = sys.argv[1:6]
addrs = set()
# callgrind without symbols names functions by address: link-time addresses of this binary
ob = cob = None
for line in open(prof, errors="replace"):
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
n_cg = len(addrs)

# perf: faults of instruction fetches (error code bit 4) in the mapped code segment
p = open(textsec).read().split()
i = p.index(".text")
delta = int(p[i + 2], 16) - int(p[i + 3], 16)  # vaddr - file offset of the code segment
start = pgoff = length = None
for line in open(faults):
    m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+) .*r-xp (\S+)", line)
    if m and m.group(4) == binpath:
        start, length, pgoff = (int(x, 16) for x in m.groups()[:3])
        continue
    m = re.search(r"address=(0x[0-9a-f]+) ip=0x[0-9a-f]+ error_code=(0x[0-9a-f]+)", line)
    if m and start is not None:
        a, ec = int(m.group(1), 16), int(m.group(2), 16)
        if ec & 0x10 and start <= a < start + length:
            addrs.add(a - start + pgoff + delta)

secs = []  # [start, end, symbol]
cur = None
for line in open(mapfile):
    p = line.split()
    if len(p) == 5 and p[4].endswith(")") and ":(.text" in p[4]:
        s0, size = int(p[0], 16), int(p[2], 16)
        sec = p[4][p[4].index(":(") + 2 : -1]
        m = re.match(r"\.text\.(?:(?:unlikely|startup|hot|exit|split)\.)?(.+)$", sec)
        cur = [s0, s0 + size, m.group(1) if m else None]
        secs.append(cur)
    elif len(p) == 5 and cur is not None and cur[2] is None and int(p[0], 16) == cur[0]:
        cur[2] = p[4]  # a section of C or assembly code: its first symbol
secs.sort()
starts = [s[0] for s in secs]
hot = set()
if len(sys.argv) > 6:
    try:
        prev = set(open(sys.argv[6]).read().split())
    except OSError:
        prev = set()
    hot = {i for i, s in enumerate(secs) if s[2] in prev}
n_prev = len(hot)
for r in addrs:
    i = bisect.bisect_right(starts, r) - 1
    if i >= 0 and secs[i][0] <= r < secs[i][1] and secs[i][2]:
        hot.add(i)
print(
    f"hot-order: {n_cg} code addresses from callgrind, {len(addrs) - n_cg} more from page "
    f"faults; {len(hot)} functions ({n_prev} kept from the previous list), {sum(secs[i][1] - secs[i][0] for i in hot)} bytes",
    file=sys.stderr,
)
for i in sorted(hot):
    print(secs[i][2])
