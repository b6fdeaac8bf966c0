"""Find a process's descendants (work-horses, scheduler) from /proc, to kill them like a crash would."""
from __future__ import annotations

import os
import signal
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


def session_members(session_id: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session_id and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def kill_session(session_id: int, signum: int) -> None:
    """Signal every live process of a session (a child started with start_new_session=True).

    Unlike walking the tree, this also finds work-horses that lead their own
    process group and orphans whose parent has already died. Repeats until
    none is left, so a process forked meanwhile is caught too.
    """
    for _ in range(50):
        members = session_members(session_id)
        if not members:
            return
        for target in members:
            try:
                os.kill(target, signum)
            except ProcessLookupError:
                pass
        if signum != signal.SIGKILL:
            return


def process_group(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])


def own_group_children(pid: int) -> list[int]:
    """Descendants that lead their own process group: RQ's forked work-horses (they call setpgrp)."""
    return [child for child in descendants(pid) if process_group(child) == child]
