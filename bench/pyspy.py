"""An optional py-spy profile of one worker, during a run of an endpoint after its measured one.

py-spy is not a project dependency: pass `--py-spy PATH` (or have it on PATH), for instance from
a throwaway venv (`python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`). Sampling
competes for the cores, so the profiled run is one of its own and the figures never include it."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def start(py_spy: str, pid: int, duration: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy record in raw (collapsed stack) format, non-blocking so the worker never pauses."""
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(round(duration)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--gil",  # CPU time in Python: not idle, not waiting for the GIL
            "--output",
            str(output),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _short(frame: str) -> str:
    """`func (path/to/site-packages/pkg/mod.py:12)` as `pkg/mod.py:func`."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{match.group('func')}"


# Frames every sample of a thread passes through: dropped, so that the tables show the work.
_TRUNK_ENDS = ("asyncio/runners.py:Runner.run", "threading.py:Thread.run")
_NATIVE = "(native: uvloop, httptools, C extensions, GIL waits)"


def _package(name: str) -> str:
    if name == _NATIVE:
        return "native (no Python frame)"
    head = name.split("/", 1)[0].split(".py:", 1)[0]
    return head if "/" in name else f"{head} (stdlib)" if ".py:" in name else name


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function, and self time per package, from
    py-spy's collapsed stacks (SQLAlchemy's async layer runs its sync code in greenlets, whose
    stacks start at the greenlet, not at the event loop)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        cut = max((i for i, f in enumerate(frames) if f in _TRUNK_ENDS), default=-1)
        frames = frames[cut + 1 :] or [_NATIVE]
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for name in set(frames):
            inclusive[name] += count

    def share(counter: Counter[str], limit: int = top) -> list[dict[str, Any]]:
        return [
            {"function": name, "samples": n, "percent": round(100 * n / total, 1)}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "self": share(own),
        "inclusive": share(inclusive),
        "packages": share(packages, 15),
    }
