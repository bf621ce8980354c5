#!/usr/bin/env python3
"""Diagnosis only (BENCHMARKS.md, "Round 10 (lat10 ...)"): sets an EEVDF slice (the latency hint
`sched_attr.sched_runtime`, Linux >= 6.12, x86_64) on every thread of a running process.
(it also sets their nice to 0). usage (as root): scripts/sched-slice.py PID MICROSECONDS"""
import ctypes
import os
import struct
import sys

SYS_SCHED_SETATTR = 314  # x86_64
libc = ctypes.CDLL(None, use_errno=True)
pid, us = int(sys.argv[1]), int(sys.argv[2])
done = 0
for tid in os.listdir('/proc/%d/task' % pid):
    # size, policy (SCHED_OTHER), flags, nice, priority, runtime, deadline, period, util min/max
    attr = ctypes.create_string_buffer(struct.pack('IIQiIQQQII', 56, 0, 0, 0, 0, us * 1000, 0, 0, 0, 1024), 56)
    if libc.syscall(SYS_SCHED_SETATTR, int(tid), attr, 0) != 0:
        print('thread %s: errno %d' % (tid, ctypes.get_errno()))
    else:
        done += 1
print('slice of %d us on %d threads' % (us, done))
