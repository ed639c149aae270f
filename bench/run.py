"""The load benchmark: real Tether server processes under wrk, against a bare FastAPI ceiling.

    make bench                                         # the full matrix (about 20 minutes)
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
import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
import procs  # noqa: E402
import pyspy  # noqa: E402
import report  # noqa: E402
import seed  # noqa: E402

PYTHON = VENV / "bin" / "python"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ("postgres", "sqlite")
WORKERS = (1, 2)


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    script: str


CEILING = Endpoint("ceiling", "ceiling: bare FastAPI GET /ping", "ceiling.lua")
# Measured in this order: the write last, so the reads see the seeded table as it was made.
ENDPOINTS = {
    ep.name: ep
    for ep in (
        Endpoint("token", "GET /users/{id}/token", "token.lua"),
        Endpoint("get_user", "GET /users/{id}", "get_user.lua"),
        Endpoint("sdk_me", "GET /sdk/me", "sdk_me.lua"),
        Endpoint(
            "linked_sources", "GET /tenants/{id}/linked-sources (secret key)", "linked_sources.lua"
        ),
        Endpoint(
            "linked_sources_tenant_token",
            "GET /tenants/{id}/linked-sources (publishable key + tenant token)",
            "linked_sources_tenant_token.lua",
        ),
        Endpoint("create_user", "POST /users", "create_user.lua"),
    )
}
SOAK_ENDPOINT = ENDPOINTS["token"]


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
    parser.add_argument("--duration", type=float, default=30, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of warm-up per run")
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
        help="record a py-spy profile of the first worker during this endpoint's measured run",
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


def _git() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" with uncommitted changes" if dirty else "")


def _loadavg() -> str:
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
        "loadavg": _loadavg(),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, wrk: str, out_dir: Path, tmp: Path) -> None:
        self.args = args
        self.wrk = wrk
        self.out_dir = out_dir
        self.tmp = tmp
        self.encryption_key = seed.generate_encryption_key(PYTHON, tmp)

    def _wrk(
        self,
        server: procs.Server,
        ep: Endpoint,
        env: dict[str, str],
        duration: float,
        tag: str,
        max_requests: int = 0,
    ) -> dict[str, Any]:
        result = loadgen.run(
            self.wrk,
            server.url,
            ep.script,
            duration=duration,
            connections=self.args.connections,
            threads=self.args.threads,
            env={**env, "BENCH_TAG": tag},
            timeout_s=self.args.timeout,
            max_requests=max_requests,
        )
        (self.out_dir / f"wrk-{tag}.txt").write_text(result.pop("stdout"))
        return result

    def _measure(
        self,
        server: procs.Server,
        ep: Endpoint,
        env: dict[str, str],
        prefix: str,
        pg_database: str | None = None,
    ) -> dict[str, Any]:
        args = self.args
        print(f"bench: {prefix} {ep.label}", flush=True)
        entry: dict[str, Any] = {"name": ep.name, "label": ep.label}
        entry["warmup"] = self._wrk(server, ep, env, args.warmup, f"{prefix}-{ep.name}-warmup")
        profiler = None
        if args.profile == ep.name:
            raw = self.out_dir / f"profile-{prefix}-{ep.name}.txt"
            pid = server.worker_pids()[0]
            profiler = (pyspy.start(args.py_spy, pid, args.duration, raw), raw, pid)
        server_cpu = procs.CpuMeter(server.worker_pids)
        pg_cpu = procs.CpuMeter(lambda: procs.postgres_backends(pg_database or ""))
        server_cpu.start()
        pg_cpu.start()
        machine_before = procs.machine_cpu()
        entry["measured"] = m = self._wrk(server, ep, env, args.duration, f"{prefix}-{ep.name}")
        machine_after = procs.machine_cpu()
        cpu = {"server": server_cpu.stop(), "wrk": m.pop("wrk_cpu_s")}
        if pg_database:
            cpu["postgres"] = pg_cpu.stop()
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        ours = sum(user + system for user, system in cpu.values())
        # What else ran during the measured run, as a share of the whole machine.
        entry["machine_cpu"] = {
            "busy_percent": round(100 * busy / total, 1) if total else None,
            "others_percent": round(100 * max(busy - ours, 0) / total, 1) if total else None,
        }
        requests = max(m["requests"], 1)
        # Milliseconds of CPU per answered request: user + system, and system alone.
        entry["cpu_ms_per_request"] = {
            name: round(1000 * (user + system) / requests, 3)
            for name, (user, system) in cpu.items()
        }
        entry["cpu_sys_ms_per_request"] = {
            name: round(1000 * system / requests, 3) for name, (_, system) in cpu.items()
        }
        entry["memory"] = server.memory()
        entry["log_problems"] = server.new_log_problems()
        if profiler is not None:
            entry["profiled"] = True
            entry["profile"] = self._finish_profile(ep, *profiler)
        print(
            f"bench:   {m['rps']:,.0f} req/s  p50 {m['latency_ms']['p50']:.2f} ms  "
            f"p99 {m['latency_ms']['p99']:.2f} ms  errors {m['errors']}  non-2xx {m['non2xx']}  "
            f"peak RSS {[round(w.get('VmHWM', 0) / 1024) for w in entry['memory']]} MiB  "
            f"CPU ms/req {entry['cpu_ms_per_request']}  "
            f"others {entry['machine_cpu']['others_percent']}% of the machine",
            flush=True,
        )
        return entry

    def _finish_profile(
        self, ep: Endpoint, process: subprocess.Popen[bytes], raw: Path, pid: int
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"endpoint": ep.name, "label": ep.label, "pid": pid}
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0 or not raw.exists():
            info["error"] = output.decode(errors="replace").strip()[-500:]
            return info
        info["raw"] = str(raw.relative_to(ROOT))
        info["summary"] = pyspy.summarize(raw)
        return info

    @contextlib.contextmanager
    def _database(self, db: str, workdir: Path) -> Iterator[str]:
        if db == "sqlite":
            yield f"sqlite+aiosqlite:///{workdir / 'tether.db'}"
            return
        url = seed.create_scratch_database(self.args.postgres_url)
        try:
            yield url
        finally:
            seed.drop_database(self.args.postgres_url, url)

    @contextlib.contextmanager
    def _serving(self, server: procs.Server) -> Iterator[procs.Server]:
        try:
            server.start()
            yield server
        finally:
            server.stop()

    def _quiet(self) -> dict[str, float]:
        """How busy the machine is before a table starts, after waiting (up to --wait-quiet)
        for it to calm down."""
        started = time.monotonic()
        busy, waited = procs.busy_percent(), 0.0
        while busy >= self.args.quiet_percent and waited < self.args.wait_quiet:
            print(f"bench: machine {busy:.0f}% busy, waiting for it to calm down", flush=True)
            time.sleep(3)
            busy, waited = procs.busy_percent(), time.monotonic() - started
        if busy >= self.args.quiet_percent:
            print(f"bench: warning: machine {busy:.0f}% busy before the run", flush=True)
        return {"busy_percent": round(busy, 1), "waited_s": round(waited, 1)}

    def block(self, block: dict[str, Any]) -> None:
        """Fill `block` (its database and workers set) as it goes, so that a failure keeps what
        was measured before it."""
        args = self.args
        db, workers = block["database"], block["workers"]
        prefix = f"{db}-w{workers}"
        block["machine_before"] = self._quiet()
        workdir = self.tmp / prefix
        workdir.mkdir()
        with self._database(db, workdir) as url:
            env = seed.server_env(url, self.encryption_key, args.pool_size)
            block["database_url"] = url
            pg_database = seed.database_name(url) if db == "postgres" else None

            ceiling = procs.ceiling_server(
                env, workdir, workers, self.out_dir / f"{prefix}-ceiling.log", PYTHON
            )
            with self._serving(ceiling):
                block["endpoints"].append(self._measure(ceiling, CEILING, {}, prefix))
            ceiling_rps = block["endpoints"][0]["measured"]["rps"]
            block["endpoints"][0]["ratio"] = 1.0

            print(f"bench: {prefix} seeding", flush=True)
            init = seed.tether_init(PYTHON, env, workdir)
            key = init["environments"]["development"]["secretKey"]
            tether = procs.tether_server(
                env, workdir, workers, self.out_dir / f"{prefix}-tether.log", PYTHON
            )
            with self._serving(tether):
                started = time.monotonic()
                ids = seed.create_users(tether.url, key, args.users)
                block["seed_seconds"] = round(time.monotonic() - started, 1)
                ids_file = workdir / "user-ids.txt"
                ids_file.write_text("\n".join(ids) + "\n")
                wrk_env = {"BENCH_KEY": key, "BENCH_IDS_FILE": str(ids_file)}

                linked_sources = None
                if any(name.startswith("linked_sources") for name in args.endpoints):
                    # Not built on every branch: probe before measuring it.
                    linked_sources = seed.probe_linked_sources(tether.url, key, ids[0])
                dev = init["environments"]["development"]
                signing_key = None
                if linked_sources and linked_sources[0]:
                    # Now, not later: the admin login's Argon2 check raises the worker's peak
                    # RSS, and every row should include that alike.
                    signing_key = seed.create_signing_key(
                        tether.url, init["email"], init["password"], "development"
                    )
                tether.new_log_problems()  # only what the measured endpoints cause

                for name in args.endpoints:
                    ep = ENDPOINTS[name]
                    if name.startswith("linked_sources"):
                        assert linked_sources is not None
                        present, note = linked_sources
                        if not present:
                            print(f"bench: {prefix} {ep.label}: skipped, {note}", flush=True)
                            block["endpoints"].append({**ep.__dict__, "skipped": note})
                            continue
                    ep_env = dict(wrk_env)
                    if name == "sdk_me":
                        # A fresh token (they live 30 minutes by default).
                        token = seed.user_token(tether.url, key, ids[0])
                        seed.check_sdk_me(tether.url, token, ids[0])
                        ep_env["BENCH_TOKEN"] = token
                    if name == "linked_sources_tenant_token":
                        assert signing_key is not None
                        tokens = seed.tenant_tokens(signing_key, ids)  # fresh: they live 1 h
                        seed.check_tenant_token(
                            tether.url, dev["publishableKey"], ids[0], tokens[0]
                        )
                        pairs_file = workdir / "tenant-tokens.txt"
                        pairs_file.write_text(
                            "".join(f"{i} {t}\n" for i, t in zip(ids, tokens, strict=True))
                        )
                        ep_env["BENCH_TENANT_TOKENS_FILE"] = str(pairs_file)
                        ep_env["BENCH_PUBLISHABLE_KEY"] = dev["publishableKey"]
                    entry = self._measure(tether, ep, ep_env, prefix, pg_database)
                    entry["ratio"] = entry["measured"]["rps"] / ceiling_rps
                    if "profile" in entry:
                        block["profile"] = entry.pop("profile")
                    block["endpoints"].append(entry)

                if args.soak:
                    block["soak"] = self._soak(tether, wrk_env, prefix)
                block["supervisor_memory"] = tether.supervisor_memory()
        block["status"] = "ok"

    def _soak(self, server: procs.Server, env: dict[str, str], prefix: str) -> dict[str, Any]:
        args = self.args
        step = args.soak_checkpoint
        soak: dict[str, Any] = {
            "endpoint": SOAK_ENDPOINT.name,
            "requests_planned": args.soak,
            "checkpoint": step,
            "checkpoints": [],
        }
        done = 0
        # wrk stops each thread at its quota; the duration only bounds a stuck run.
        ceiling_duration = 3600
        while done < args.soak:
            chunk = min(step, args.soak - done)
            print(f"bench: {prefix} soak: requests {done:,} to {done + chunk:,}", flush=True)
            result = self._wrk(
                server,
                SOAK_ENDPOINT,
                env,
                ceiling_duration,
                f"{prefix}-soak-{done + chunk}",
                max_requests=chunk,
            )
            done += result["requests"]
            soak["checkpoints"].append(
                {
                    "after_requests": done,
                    "rps": result["rps"],
                    "non2xx": result["non2xx"],
                    "errors": result["errors"],
                    "p99_ms": result["latency_ms"]["p99"],
                    "memory": server.memory(),
                }
            )
            print(
                f"bench:   RSS {[round(w.get('VmRSS', 0) / 1024) for w in server.memory()]} MiB",
                flush=True,
            )
            if result["requests"] == 0:
                break
        points = soak["checkpoints"]
        if len(points) >= 2:
            first, last = points[0]["memory"], points[-1]["memory"]
            soak["growth_percent"] = [
                round(100 * (b["VmRSS"] - a["VmRSS"]) / a["VmRSS"], 2)
                for a, b in zip(first, last, strict=False)
                if a.get("VmRSS") and b.get("VmRSS")
            ]
        return soak


def is_full(args: argparse.Namespace) -> bool:
    return (
        sorted(args.db) == sorted(DATABASES)
        and sorted(args.workers) == sorted(WORKERS)
        and sorted(args.endpoints) == sorted(ENDPOINTS)
        and args.duration >= 30
        and args.connections == 32
    )


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
            "connections": args.connections,
            "threads": args.threads,
            "timeout": args.timeout,
            "users": args.users,
            "pool_size": args.pool_size,
            "soak": args.soak,
            "profile": args.profile,
            "wait_quiet": args.wait_quiet,
        },
        "machine": machine_info(wrk, args.postgres_url if "postgres" in args.db else None),
        "blocks": [],
    }
    failed = False

    def save() -> None:
        results["elapsed_min"] = (datetime.now(UTC) - started).total_seconds() / 60
        results["loadavg_end"] = _loadavg()
        (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        args.results.write_text(report.render(results))

    tmp = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    try:
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
                except KeyboardInterrupt:
                    block["status"] = "interrupted"
                    block["note"] = "interrupted (Ctrl-C)"
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
