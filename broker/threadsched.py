"""How the kernel schedules the broker's threads (``--thread-scheduling``, issue 19).

A served broker runs an event loop and the store's threads (the SQLite writer, its
readers, the checkpointer), which take turns at one interpreter lock.  Under Linux's
default policy (``SCHED_OTHER``) a thread that is woken preempts the running one on
its CPU when the scheduler deems it fair: the loop hands a write to the writer (a
queue's lock released), the writer is scheduled at once, asks for the interpreter
lock the loop still holds and sleeps again; the writer hands results back (an
``eventfd`` write), the loop is scheduled, asks for the lock the writer holds and
sleeps again.  Each such turn is two context switches and their cache misses for no
work done, on every write when the threads share a core (the benchmarks pin the
broker to one).

``SCHED_BATCH`` (``sched(7)``) is the same fair policy without that wake-up
preemption: a woken thread waits for the running one to block (on the network, a
queue, the interpreter lock) or to use its time slice up.  Their CPU shares are as
under ``SCHED_OTHER`` (same weights, same nice values), so the broker gets no more
CPU than before against other processes, only fewer switches among its own threads;
what it costs is that a woken broker thread does not cut in on a running process of
the machine either (it runs at that one's next block or tick, a few ms at most).
Any thread may choose it, no privilege needed.  Measured (benchmarks/README.md,
"createcut"): single creates and PATCHes served pinned to one core.

``batch`` is the default.  Served pinned to one core (wrk, 2026-12-07 09:45-10:08 UTC,
three alternated pairs each, benchmarks/README.md) it gave creates +2.6 points of ratio
(~27% -> ~30%), PATCHes +5 (~36% -> ~41%), Streetlight creates +1, the type+q query +1
and GET about the same; the open-loop p50 of a PATCH rose ~0.3 ms at a 13% higher
offered rate, its p99 did not.  (One run each way on 08:07-08:21 had not told them
apart.)  ``normal`` keeps the policy the process was started with (``chrt``,
systemd's ``CPUSchedulingPolicy=``), for a host where the broker shares its cores with
latency-sensitive processes.
"""

from __future__ import annotations

import os

#: --thread-scheduling: batch (SCHED_BATCH where the system has it) or normal
THREAD_SCHEDULING = ("batch", "normal")


def apply(kind: str) -> bool:
    """Set ``kind``'s policy for the calling thread, and so for every thread it starts
    afterwards (a new thread inherits its creator's policy): call it before the store
    and the loop's executors start threads.  True when the policy was changed.

    ``normal`` changes nothing; ``batch`` changes nothing where ``SCHED_BATCH`` is
    unknown (not Linux) or refused (a seccomp profile, a real-time policy set by
    the operator, which this does not lower)."""
    if kind != "batch":
        return False
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return False
    try:
        current = os.sched_getscheduler(0)
        if current == policy:
            return False
        if current != os.SCHED_OTHER:  # SCHED_FIFO, SCHED_RR, SCHED_IDLE: the operator's
            return False
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


__all__ = ["THREAD_SCHEDULING", "apply"]
