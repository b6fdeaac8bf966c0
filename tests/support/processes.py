"""Find a process's descendants (work-horses, scheduler) from /proc, to kill them like a crash would."""
from __future__ import annotations

import os
from pathlib import Path


def children_by_parent() -> dict[int, list[int]]:
    table: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # the command name may contain spaces; the fields after its ')' are fixed
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        table.setdefault(ppid, []).append(int(entry.name))
    return table


def descendants(pid: int) -> list[int]:
    table, found, todo = children_by_parent(), [], [pid]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int, signum: int) -> None:
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, signum)
        except ProcessLookupError:
            pass
