"""The load benchmark: real Tether server processes under wrk, against a bare FastAPI ceiling.

    make bench                                         # the full matrix (about 30 minutes)
    .venv/bin/python bench/run.py --db postgres --workers 1 --duration 10
    .venv/bin/python bench/run.py --db postgres --workers 1 --endpoints none --soak 300000
    .venv/bin/python bench/run.py --db postgres --workers 1 --endpoints token \\
        --profile token --py-spy /tmp/pyspy/bin/py-spy

For each database and worker count: a fresh database, the ceiling app served with Tether's
uvicorn flags (warm-up, measured run), then `tether serve` seeded through its CLI and API, and
every endpoint (warm-up, measured run, then each worker's peak RSS). Writes bench/RESULTS.md and
bench/out/<stamp>/ (results.json, server logs, wrk output). Stops every server it started and
drops every scratch database, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def _in_venv() -> None:
    """Run under the project's .venv (the servers need its packages; so does this script)."""
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        raise SystemExit("No .venv: run `make bench` (it sets the project up first).")
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])  # noqa: S606 (our venv)


_in_venv()

import loadgen  # noqa: E402 (after the switch to the project's interpreter)
import machine  # noqa: E402
import report  # noqa: E402
import seed  # noqa: E402
from matrix import ENDPOINTS, Bench  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ("postgres", "sqlite")
WORKERS = (1, 2)


def _csv(allowed: tuple[str, ...] | None = None, kind: type = str) -> Any:
    def parse(text: str) -> list[Any]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if items == ["none"]:
            return []
        if allowed is not None:
            for item in items:
                if item not in allowed:
                    raise argparse.ArgumentTypeError(f"{item!r} is not one of {allowed}")
        return [kind(item) for item in items]

    return parse


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test Tether against a bare FastAPI ceiling.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--db", type=_csv(DATABASES), default=list(DATABASES), help="databases, comma-separated"
    )
    parser.add_argument(
        "--workers", type=_csv(kind=int), default=list(WORKERS), help="worker counts"
    )
    parser.add_argument(
        "--endpoints",
        type=_csv((*ENDPOINTS, "none")),
        default=list(ENDPOINTS),
        help="Tether endpoints to measure, or none (the ceiling is always measured)",
    )
    parser.add_argument("--duration", type=float, default=20, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of warm-up per run")
    parser.add_argument(
        "--ceiling-warmup",
        type=float,
        default=2,
        help="seconds of warm-up before each measurement of the ceiling beside an endpoint",
    )
    parser.add_argument(
        "--pairs",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="after each endpoint's warm-up, N alternating pairs of runs (the ceiling beside "
        "it, then the endpoint); the row's ratio is the median pair's, errors and non-2xx are "
        "summed over the pairs. Each extra pair adds a ceiling warm-up and two measured runs "
        "per endpoint",
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=int, default=10, help="wrk request timeout, seconds")
    parser.add_argument("--users", type=int, default=1000, help="users seeded per database")
    parser.add_argument(
        "--pool-size", type=int, default=None, help="TETHER_DB_POOL_SIZE (default: connections)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TETHER_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL database to create scratch databases beside",
    )
    parser.add_argument(
        "--soak",
        type=int,
        nargs="?",
        const=300_000,
        default=0,
        metavar="N",
        help="after the endpoints, N more requests to GET /users/{id}/token, RSS every "
        "--soak-checkpoint requests (N defaults to 300000 when the flag has no value)",
    )
    parser.add_argument("--soak-checkpoint", type=int, default=100_000)
    parser.add_argument(
        "--profile",
        choices=tuple(ENDPOINTS),
        default=None,
        help="record a py-spy profile of the first worker during an extra run of this endpoint",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="path to py-spy")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each table, wait up to SECONDS for the machine to be under "
        "--quiet-percent busy (other work skews every figure)",
    )
    parser.add_argument("--quiet-percent", type=float, default=10)
    parser.add_argument(
        "--rev",
        default=None,
        help="measure this git revision (extracted with git archive) instead of the working "
        "tree, which other work in progress may have changed; .venv must suit it",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    if args.pool_size is None:
        args.pool_size = args.connections
    if args.profile and not args.py_spy:
        parser.error("--profile needs py-spy: pass --py-spy PATH")
    if args.profile and args.profile not in args.endpoints:
        parser.error("--profile names an endpoint that --endpoints leaves out")
    return args


def _command(argv: list[str]) -> str:
    via_make = " (via `make bench`)" if os.environ.get("MAKELEVEL") else ""
    return shlex.join([".venv/bin/python", "bench/run.py", *argv]) + via_make


def is_full(args: argparse.Namespace) -> bool:
    return (
        sorted(args.db) == sorted(DATABASES)
        and sorted(args.workers) == sorted(WORKERS)
        and sorted(args.endpoints) == sorted(ENDPOINTS)
        and args.duration >= 20
        and args.connections == 32
    )


def _extract(rev: str, into: Path) -> Path:
    """The source tree of `rev` (what `tether serve` needs of it), without touching the
    repository's working tree, index or worktree list."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "src", "migrations", "alembic.ini"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Unwinds through every `finally`: servers stopped, scratch databases dropped.
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    wrk = loadgen.ensure_wrk()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out / stamp
    out_dir.mkdir(parents=True)

    postgres_ok = True
    if "postgres" in args.db:
        try:
            max_conn = seed.postgres_max_connections(args.postgres_url)
        except Exception as exc:
            postgres_ok = False
            print(f"bench: PostgreSQL at {args.postgres_url} unreachable: {exc!r}", flush=True)
        else:
            # Every worker may hold pool_size + 8 (TETHER_DB_POOL_MAX_OVERFLOW's default).
            needed = max(args.workers) * (args.pool_size + 8) + 5
            if needed > max_conn:
                print(
                    f"bench: warning: up to {needed} connections, PostgreSQL allows {max_conn}",
                    flush=True,
                )

    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": _command(argv),
        "full": is_full(args),
        "config": {
            "databases": args.db,
            "workers": args.workers,
            "endpoints": args.endpoints,
            "duration": args.duration,
            "warmup": args.warmup,
            "ceiling_warmup": args.ceiling_warmup,
            "pairs": args.pairs,
            "connections": args.connections,
            "threads": args.threads,
            "timeout": args.timeout,
            "users": args.users,
            "pool_size": args.pool_size,
            "soak": args.soak,
            "profile": args.profile,
            "wait_quiet": args.wait_quiet,
        },
        "machine": machine.machine_info(wrk, args.postgres_url if "postgres" in args.db else None),
        "blocks": [],
    }
    failed = False

    def save() -> None:
        results["elapsed_min"] = (datetime.now(UTC) - started).total_seconds() / 60
        results["loadavg_end"] = machine.loadavg()
        (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        args.results.write_text(report.render(results))

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    try:
        args.source = None
        results["source"] = "the working tree"
        if args.rev:
            commit = machine.resolve_rev(args.rev)  # fixed now, even if the branch moves
            args.source = _extract(commit, tmp / "source")
            results["source"] = f"git revision {args.rev} ({commit}), extracted with git archive"
        bench = Bench(args, wrk, out_dir, tmp)
        for db in args.db:
            for workers in args.workers:
                if db == "postgres" and not postgres_ok:
                    note = f"PostgreSQL at {args.postgres_url} is unreachable"
                    results["blocks"].append(
                        {"database": db, "workers": workers, "status": "skipped", "note": note}
                    )
                    continue
                block: dict[str, Any] = {"database": db, "workers": workers, "endpoints": []}
                results["blocks"].append(block)
                try:
                    bench.block(block)
                except (KeyboardInterrupt, SystemExit):
                    # Ctrl-C, or SIGTERM/SIGHUP (see _exit_on_signal): what this table measured
                    # before it is kept, and said to be a part.
                    block["status"] = "interrupted"
                    block["note"] = "the run was stopped (Ctrl-C or a signal) during this table"
                    raise
                except Exception as exc:
                    failed = True
                    print(f"bench: {db}, {workers} worker(s) failed: {exc}", flush=True)
                    block["status"] = "failed"
                    block["note"] = f"{type(exc).__name__}: {str(exc)[:2000]}"
                save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        save()
    print(f"bench: wrote {args.results} and {out_dir}/results.json", flush=True)
    print(args.results.read_text(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, scratch databases dropped", file=sys.stderr)
        sys.exit(130)
