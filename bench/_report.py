"""What every benchmark reports with: the machine, the commit, Markdown tables, its docs section.

One place, so that all of ``docs/benchmarks.md`` describes machines the same way and every
bench takes the same lock before it rewrites its own ``## Section`` of the shared file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
LOCK = ROOT / "var" / ".benchmarks-md.lock"  # var/ is git-ignored


def commit() -> str:
    """Short HEAD, marked when tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, str]:
    """CPU count and model, RAM, Python, commit and the date (UTC)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    mem_kb = 0
    with contextlib.suppress(OSError, AttributeError):
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": f"{mem_kb / 1024**2:.1f} GiB",
            "python": platform.python_version(), "commit": commit(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def machine_line(m: dict[str, str] | None = None) -> str:
    """``2 CPUs (AMD EPYC), 23.5 GiB RAM, Python 3.11.7``."""
    m = m or machine()
    return f"{m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, Python {m['python']}"


def md_table(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; the first row is the header (``|`` inside cells is escaped)."""
    esc = [tuple(c.replace("|", "\\|") for c in r) for r in rows]
    widths = [max(len(r[i]) for r in esc) for i in range(len(esc[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in esc]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _pattern(title: str) -> re.Pattern[str]:
    return re.compile(rf"^## {re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.S | re.M)


def read_section(title: str) -> str:
    """The body of ``## title`` in the benchmarks file ("" when there is none)."""
    old = DOC.read_text() if DOC.exists() else ""
    m = _pattern(title).search(old)
    return m.group(0).split("\n", 1)[1] if m else ""


def write_section(title: str, text: str) -> None:
    """Replace (or append) ``## title`` in ``docs/benchmarks.md``; every other section is kept as is."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:  # benches may finish at the same time
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        section = f"## {title}\n\n" + text.strip() + "\n"
        pattern = _pattern(title)
        if pattern.search(old):
            new = pattern.sub(lambda _m: section + "\n", old, count=1)
        else:
            new = old.rstrip("\n") + "\n\n" + section
        tmp = DOC.with_name(f".{DOC.name}.{os.getpid()}.tmp")
        tmp.write_text(new.rstrip("\n") + "\n")
        os.replace(tmp, DOC)
