"""The process tree as Linux's /proc shows it (tests that follow worker processes, and the
migration bench that adds up their memory)."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid) -> list[str]:
    """/proc/PID/stat after the command name (which may itself hold spaces or ')')."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(_stat_fields(stat.parent.name)[1])
        except OSError:  # the process ended while we looked
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    return children


def is_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False
