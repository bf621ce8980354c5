#!/usr/bin/env python3
"""Where loadgen's slow commands/events spent their time: lines up `LOADGEN_SLOW_US` output
(`EPOCH`, `SLOW`, `SLOWEV` on loadgen's stderr) with a whole-machine scheduler trace taken on the
monotonic clock, and says per thread of the server and of loadgen how the slow intervals were
spent (running / runnable but waiting for a CPU / asleep), who held the CPUs meanwhile, and
whether all of them ever slept while a command was late (a lost or late wake-up).

Record (as root; one 10 % run, sled; see BENCHMARKS.md, "Round 10 (lat10 ...)"):
  perf record -k CLOCK_MONOTONIC -a -e sched:sched_switch -e sched:sched_wakeup \
      -o /tmp/x.data -- sleep 9 &
  sleep 0.5; LOADGEN_SLOW_US=1000 target/release/examples/loadgen load --target edgetwin \
      --conns 1 --window 1024 --rate 6000 --subscribers 1 --secs 4 --warmup 1 2> /tmp/x.err
  perf script -i /tmp/x.data -F comm,pid,tid,cpu,time,event,trace > /tmp/x.txt
Then: scripts/slow-trace.py /tmp/x.txt /tmp/x.err [SLOWEV|SLOW] [FROM_S TO_S]
(with FROM_S TO_S, seconds after EPOCH: every switch and wake-up in that window instead).
"""
import bisect
import collections
import re
import sys

LINE = re.compile(r'\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)')
SWITCH = re.compile(r'prev_comm=(.*) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)')
WAKE = re.compile(r'comm=(.*) pid=(\d+) .*target_cpu=(\d+)')


def read_err(path, kind):
    epoch, slow, pids = None, [], None
    for line in open(path):
        m = re.match(r'EPOCH Instant \{ tv_sec: (\d+), tv_nsec: (\d+) \}', line)
        if m:
            epoch = int(m.group(1)) + int(m.group(2)) / 1e9
            p = re.search(r'server_pid=(\d+) loadgen_pid=(\d+)', line)
            pids = p and (int(p.group(1)), int(p.group(2)))
        m = re.match(kind + r' sent_ms=([\d.]+) lat_ms=([\d.]+)', line)
        if m:
            slow.append((float(m.group(1)) / 1e3, float(m.group(2)) / 1e3))
    if epoch is None:
        sys.exit('no EPOCH line (a loadgen from before round 10?)')
    return epoch, slow, pids


def read_trace(path):
    events, comm, pid_of = [], {}, {}
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        c, pid, tid, cpu, t, name, rest = m.groups()
        comm[int(tid)] = c
        pid_of[int(tid)] = int(pid)
        events.append((float(t), name, int(tid), int(cpu), rest))
    return events, comm, pid_of


def window(events, epoch, a, b):
    for t, name, tid, cpu, rest in events:
        t -= epoch
        if t < a or t > b:
            continue
        if name == 'sched:sched_switch':
            m = SWITCH.search(rest)
            print('%.4f cpu%d %s/%s(%s) -> %s/%s' % (t, cpu, *m.groups()))
        elif name == 'sched:sched_wakeup':
            m = WAKE.search(rest)
            print('%.4f cpu%d   wakes %s/%s on cpu%s' % (t, cpu, *m.groups()))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    kind = sys.argv[3] if len(sys.argv) > 3 else 'SLOWEV'
    epoch, slow, pids = read_err(sys.argv[2], kind)
    events, comm, pid_of = read_trace(sys.argv[1])
    if len(sys.argv) > 5:
        return window(events, epoch, float(sys.argv[4]), float(sys.argv[5]))
    if pids:
        srv, lg = pids
    else:  # the busiest (other helpers may run their own)
        busy = collections.Counter(pid_of[tid] for _, _, tid, _, _ in events)
        srv = max((p for t, p in pid_of.items() if comm[t].startswith('edgetwin')), key=busy.get)
        lg = max((p for t, p in pid_of.items() if comm[t] == 'loadgen'), key=busy.get)
    names = {t: ('srv:' if p == srv else 'lg:') + comm[t] for t, p in pid_of.items() if p in (srv, lg)}
    # per thread: (time, state) with R = on a CPU, W = runnable waiting for one, S = asleep
    tl = collections.defaultdict(list)
    cpu_at = []  # (time, cpu, next tid)
    for t, name, tid, cpu, rest in events:
        if name == 'sched:sched_switch':
            m = SWITCH.search(rest)
            prev, state, nxt = int(m.group(2)), m.group(3), int(m.group(5))
            tl[prev].append((t, 'W' if state.startswith('R') else 'S'))
            tl[nxt].append((t, 'R'))
            cpu_at.append((t, cpu, nxt))
        elif name == 'sched:sched_wakeup':
            p = int(WAKE.search(rest).group(2))
            if not tl[p] or tl[p][-1][1] != 'R':
                tl[p].append((t, 'W'))
    times = {t: [x[0] for x in tl[t]] for t in names}

    def state_at(tid, t):
        i = bisect.bisect_right(times[tid], t) - 1
        return tl[tid][i][1] if i >= 0 else 'S'

    changes = sorted((t, tid, s) for tid in names for (t, s) in tl[tid])
    ctimes = [c[0] for c in cpu_at]
    per = collections.defaultdict(collections.Counter)
    joint, holders, gaps = collections.Counter(), collections.Counter(), []
    span = sum(lat for _, lat in slow) or 1
    for s, lat in slow:
        a, b = epoch + s, epoch + s + lat
        st = {tid: state_at(tid, a) for tid in names}
        on = {}
        j = bisect.bisect_right(ctimes, a) - 1
        while j >= 0 and len(on) < 2:
            on.setdefault(cpu_at[j][1], cpu_at[j][2])
            j -= 1
        i, j, t = bisect.bisect_right(changes, (a, 0, '')), bisect.bisect_right(ctimes, a), a
        while True:
            nt = min(changes[i][0] if i < len(changes) else b, ctimes[j] if j < len(ctimes) else b, b)
            for tid, x in st.items():
                per['%s/%d' % (names[tid], tid)][x] += nt - t
            v = st.values()
            c = 'running' if 'R' in v else ('waiting for a CPU' if 'W' in v else 'all asleep')
            joint[c] += nt - t
            if c == 'all asleep':
                gaps.append(nt - t)
            if 'W' in v:
                for p in on.values():
                    holders[names.get(p, 'idle' if p == 0 else 'other processes').split('/')[0]] += nt - t
            t = nt
            if nt >= b:
                break
            if i < len(changes) and changes[i][0] == nt:
                st[changes[i][1]] = changes[i][2]
                i += 1
            else:
                on[cpu_at[j][1]] = cpu_at[j][2]
                j += 1
    print('%d %s lines, %.3f s of slow intervals (server pid %d, loadgen pid %d)' % (len(slow), kind, span, srv, lg))
    for n, c in sorted(per.items()):
        if c['R'] + c['W'] > 0.001 * span:
            print('  %-34s running %5.1f%%  waiting for a CPU %5.1f%%  asleep %5.1f%%' % (
                n, 100 * c['R'] / span, 100 * c['W'] / span, 100 * c['S'] / span))
    print('one of them running / else one waiting / else all asleep: ' +
          ', '.join('%s %.1f%%' % (k, 100 * v / span) for k, v in joint.items()))
    gaps.sort()
    print('all-asleep stretches > 0.2 ms: %d (longest %s ms)' % (
        sum(g > 2e-4 for g in gaps), ', '.join('%.2f' % (g * 1e3) for g in gaps[-3:])))
    total = sum(holders.values()) or 1
    print('CPUs held, while one of them waited, by: ' + ', '.join(
        '%s %.1f%%' % (k, 100 * v / total) for k, v in holders.most_common(6)))
    # wake-up -> on a CPU, over the whole trace (every wake-up, not only the slow intervals)
    for who in ('srv:edgetwin', 'lg:loadgen'):
        lat = []
        for tid in names:
            if not names[tid].startswith(who):
                continue
            xs = tl[tid]
            lat += [b[0] - a[0] for a, b in zip(xs, xs[1:]) if a[1] == 'W' and b[1] == 'R']
        lat.sort()
        if lat:
            print('%s* threads, wake-up (or preemption) -> running: %d, p50 %.3f ms, p99 %.3f ms, '
                  '%.2f%% over 1 ms' % (who, len(lat), lat[len(lat) // 2] * 1e3,
                                        lat[int(len(lat) * 0.99)] * 1e3,
                                        100 * sum(x > 1e-3 for x in lat) / len(lat)))
    phase = collections.Counter(int(s * 1e3 % 1000) // 100 for s, _ in slow)
    print('%s by send instant modulo 1 s (100-ms bins; the store logs once a second): %s' % (
        kind, ' '.join(str(phase[k]) for k in range(10))))


main()
