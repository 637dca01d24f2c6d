"""Server CPU time: user + sys of a server's whole process tree, read from ``/proc``.

A server is its process and every descendant (gunicorn's and nginx's workers, granian's), found
by their parent PIDs. :func:`cpu_snapshot` reads, for each of them, the user + sys ticks of
``/proc/<pid>/stat`` (``utime + stime + cutime + cstime``: ended threads and reaped children
included) and the time on CPU of each live thread (``/proc/<pid>/task/<tid>/schedstat``, in
nanoseconds). :func:`cpu_seconds` is the threads' nanoseconds spent between two snapshots,
which the 10 ms ticks cannot resolve for a small request; when the ticks grew by more than
that (a thread or a child ended in between and took its nanoseconds with it), the ticks.
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuSnapshot", "cpu_seconds", "cpu_snapshot", "process_tree"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: ``utime`` and ``stime`` are each rounded down to a tick: two ticks of slack per process.
TICK_SLACK = 2


@dataclass(frozen=True)
class CpuSnapshot:
    """The CPU a process tree had used at one moment."""

    ticks: int
    thread_ns: dict[int, int]
    processes: int


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (``state`` first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with suppress(OSError, ValueError, IndexError):
            children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def _thread_ns(pid: int) -> dict[int, int]:
    found = {}
    with suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with suppress(OSError, ValueError, IndexError):
                found[int(task.name)] = int(Path(task.path, "schedstat").read_text().split()[0])
    return found


def cpu_snapshot(pid: int) -> CpuSnapshot:
    """The ticks and the per-thread nanoseconds of ``pid``'s tree now."""
    ticks = 0
    thread_ns: dict[int, int] = {}
    members = process_tree(pid)
    for member in members:
        with suppress(OSError, ValueError, IndexError):
            # utime, stime, cutime, cstime: fields 14 to 17 of stat, 12 to 15 after the name.
            ticks += sum(int(value) for value in _stat_fields(member)[11:15])
            thread_ns.update(_thread_ns(member))
    return CpuSnapshot(ticks, thread_ns, len(members))


def cpu_seconds(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """User + sys seconds the tree used between two snapshots."""
    precise = 0
    for tid, spent in after.thread_ns.items():
        earlier = before.thread_ns.get(tid, 0)
        precise += spent - earlier if spent >= earlier else spent  # a reused thread id: new
    coarse = (after.ticks - before.ticks) / CLOCK_TICKS
    slack = TICK_SLACK * max(before.processes, after.processes) / CLOCK_TICKS
    return coarse if coarse > precise / 1e9 + slack else precise / 1e9
