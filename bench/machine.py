"""What a run was measured on: the machine, the software, the commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import loadgen
import seed

ROOT = Path(__file__).resolve().parents[1]


def resolve_rev(rev: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _git() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" with uncommitted changes" if dirty else "")


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info(wrk: str, postgres_url: str | None) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    pg = "not measured"
    if postgres_url:
        try:
            pg = seed.postgres_version(postgres_url).split(" on ")[0].removeprefix("PostgreSQL ")
        except Exception as exc:
            pg = f"unreachable ({type(exc).__name__})"
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in (
            "fastapi",
            "starlette",
            "uvicorn",
            "uvloop",
            "httptools",
            "pydantic",
            "sqlalchemy",
            "asyncpg",
            "aiosqlite",
            "pyjwt",
            "cryptography",
        )
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_total": f"{mem_kib / 1024 / 1024:.1f} GiB RAM",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": pg,
        "sqlite": sqlite3.sqlite_version,
        "wrk": loadgen.wrk_version(wrk),
        "packages": packages,
        "git": _git(),
        "loadavg": loadavg(),
    }
