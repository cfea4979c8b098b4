"""CPU time of process trees from ``/proc`` (Linux), for the benchmarks' CPU accounting.

The machine is shared, so wall times alone do not say where a cycle's time went: these figures
say how many CPU seconds each party (the bench itself, its worker processes, influxd, PostgreSQL)
spent during a measured step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from tests.harness.servers import ManagedServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_pid(server: ManagedServer) -> int:
    """Process id of a started harness server (the root of its process tree)."""
    assert server.process is not None
    return server.process.pid


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, CPU ticks, CPU ticks of its exited and reaped children) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def process_tree(root: int) -> dict[int, int]:
    """CPU ticks of ``root`` and of each of its live descendants, each with its exited and
    reaped children (a PostgreSQL backend that ended counts through the postmaster)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                pid = int(entry.name)
                parent, own, children = stat
                parents[pid] = parent
                ticks[pid] = own + children
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {pid: ticks[pid] for pid in tree if pid in ticks}


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` (with its reaped children) and all its live descendants."""
    return sum(process_tree(root).values()) / CLOCK_TICKS


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process alone (its threads, not its children)."""
    stat = _stat(pid)
    return 0.0 if stat is None else stat[1] / CLOCK_TICKS


def cpu_snapshot(roots: Mapping[str, int], own: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds now: whole trees for ``roots``, single processes for ``own``."""
    snapshot = {name: tree_cpu_seconds(pid) for name, pid in roots.items()}
    snapshot.update({name: own_cpu_seconds(pid) for name, pid in own.items()})
    return snapshot


def host_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the machine from ``/proc/stat``. Steal is the time the
    hypervisor ran other guests while this one had work: how busy the shared host was."""
    first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    # user nice system idle iowait irq softirq steal (guest time is inside user and nice)
    ticks = [int(value) for value in first_line.split()[1:9]]
    return ticks[7], sum(ticks)


def steal_percent(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of the machine's CPU time stolen by other guests between two :func:`host_ticks`."""
    total = after[1] - before[1]
    return round(100.0 * (after[0] - before[0]) / total, 1) if total > 0 else 0.0


def cpu_spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds spent per party between two snapshots."""
    return {name: round(after[name] - before.get(name, 0.0), 2) for name in after}


def wait_until_idle(
    pid: int, *, below: float = 0.05, window_s: float = 5.0, max_wait_s: float = 600.0
) -> float:
    """Wait until process ``pid`` uses less than ``below`` of a core over ``window_s`` (e.g.
    influxd done compacting what a bench just wrote); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        before = own_cpu_seconds(pid)
        time.sleep(window_s)
        if own_cpu_seconds(pid) - before < below * window_s:
            break
    return round(time.monotonic() - started, 1)
