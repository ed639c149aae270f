"""One table of the report: a database and a worker count, the ceiling and every endpoint."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import loadgen
import procs
import pyspy
import seed

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"


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


def _ms_per_request(cpu_seconds: float, requests: int) -> float:
    return round(1000 * cpu_seconds / max(requests, 1), 3)


def _ratio_text(ratio: float | None) -> str:
    return "?" if ratio is None else f"{ratio:.3f}"


def _median_pair(pairs: list[dict[str, Any]]) -> int:
    """The index of the pair whose ratio is the median; for an even count, the lower of the two
    middle ones: a ratio one pair measured (not an average of two), and not the kinder one.
    A pair without a ratio (its ceiling answered nothing) sorts lowest."""
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].get("ratio") or 0.0)
    return order[(len(order) - 1) // 2]


def _over_pairs(pairs: list[dict[str, Any]], median: int) -> dict[str, Any]:
    """What the median pair alone would hide: every pair's ratio and ceiling, and counts and
    the worst p99 over all pairs, so that a non-2xx or a slow pair shows whichever it was."""
    ratios = [pair.get("ratio") for pair in pairs]
    known = [ratio for ratio in ratios if ratio is not None]
    runs = [pair["measured"] for pair in pairs]
    return {
        "pairs": len(pairs),
        "median_pair": median,  # an index into "pairs"
        "ratios": ratios,
        "ceiling_rps": [pair["ceiling_beside"]["rps"] for pair in pairs],
        "ratio_min": min(known, default=None),
        "ratio_max": max(known, default=None),
        "requests": sum(m["requests"] for m in runs),
        "errors": sum(m["errors"] for m in runs),
        "non2xx": sum(m["non2xx"] for m in runs),
        "p99_worst_ms": max(m["latency_ms"]["p99"] for m in runs),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, wrk: str, out_dir: Path, tmp: Path) -> None:
        self.args = args
        self.wrk = wrk
        self.out_dir = out_dir
        self.tmp = tmp
        self.source: Path | None = args.source
        self.encryption_key = seed.generate_encryption_key(PYTHON, tmp, self.source)

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
        ceiling: procs.Server | None = None,
    ) -> dict[str, Any]:
        """One endpoint's warm-up and measured run. With `ceiling`, the ceiling is measured
        between the two, so that the endpoint's ratio compares runs seconds apart; with
        --pairs N above 1, N such pairs (ceiling, then endpoint) follow the warm-up, because
        one ceiling run on a shared machine can land a few percent either way."""
        args = self.args
        print(f"bench: {prefix} {ep.label}", flush=True)
        entry: dict[str, Any] = {"name": ep.name, "label": ep.label}
        entry["warmup"] = self._wrk(server, ep, env, args.warmup, f"{prefix}-{ep.name}-warmup")
        count = args.pairs if ceiling is not None else 1
        pairs = []
        for number in range(1, count + 1):
            # One pair keeps the file names runs had before --pairs.
            tag = f"{prefix}-{ep.name}" + (f"-pair{number}" if count > 1 else "")
            pair: dict[str, Any] = {}
            if ceiling is not None:
                pair["ceiling_beside"] = self._ceiling_beside(ceiling, tag)
            pair.update(self._measured_run(server, ep, env, tag, pg_database))
            beside = pair.get("ceiling_beside")
            if beside is not None:
                pair["ratio"] = pair["measured"]["rps"] / beside["rps"] if beside["rps"] else None
            if count > 1:
                print(
                    f"bench:   pair {number}/{count}: {pair['measured']['rps']:,.0f} req/s  "
                    f"ratio {_ratio_text(pair.get('ratio'))}",
                    flush=True,
                )
            pairs.append(pair)
        median = _median_pair(pairs)
        entry.update(pairs[median])
        if count > 1:
            entry["pairs"] = pairs
            entry["over_pairs"] = _over_pairs(pairs, median)
        # After the last pair: the peak covers every pair, the log lines every pair's requests.
        entry["memory"] = server.memory()
        entry["log_problems"] = server.new_log_problems()
        if args.profile == ep.name:
            entry["profile"] = self._profile(server, ep, env, prefix)
        m = entry["measured"]
        print(
            f"bench:   {m['rps']:,.0f} req/s  p50 {m['latency_ms']['p50']:.2f} ms  "
            f"p99 {m['latency_ms']['p99']:.2f} ms  errors {m['errors']}  non-2xx {m['non2xx']}  "
            f"peak RSS {[round(w.get('VmHWM', 0) / 1024) for w in entry['memory']]} MiB  "
            f"CPU ms/req {entry['cpu_ms_per_request']}  "
            f"others {entry['machine_cpu']['others_percent']}% of the machine",
            flush=True,
        )
        over = entry.get("over_pairs")
        if over is not None:
            print(
                f"bench:   median ratio {_ratio_text(entry.get('ratio'))} of {count} pairs "
                f"(pair {median + 1}, the figures above), "
                f"{_ratio_text(over['ratio_min'])}-{_ratio_text(over['ratio_max'])}; summed "
                f"over the pairs: errors {over['errors']}  non-2xx {over['non2xx']}; "
                f"worst p99 {over['p99_worst_ms']:.2f} ms",
                flush=True,
            )
        return entry

    def _measured_run(
        self,
        server: procs.Server,
        ep: Endpoint,
        env: dict[str, str],
        tag: str,
        pg_database: str | None,
    ) -> dict[str, Any]:
        """One measured run of wrk, with the CPU it took: the server's workers, PostgreSQL's
        backends, wrk, and every other process on the machine."""
        server_cpu = procs.CpuMeter(server.worker_pids)
        pg_cpu = procs.CpuMeter(lambda: procs.postgres_backends(pg_database or ""))
        server_cpu.start()
        pg_cpu.start()
        machine_before = procs.machine_cpu()
        run: dict[str, Any] = {}
        run["measured"] = m = self._wrk(server, ep, env, self.args.duration, tag)
        machine_after = procs.machine_cpu()
        cpu = {"server": server_cpu.stop(), "wrk": m.pop("wrk_cpu_s")}
        if pg_database:
            cpu["postgres"] = pg_cpu.stop()
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        ours = sum(user + system for user, system in cpu.values())
        # What else ran during the measured run, as a share of the whole machine.
        run["machine_cpu"] = {
            "busy_percent": round(100 * busy / total, 1) if total else None,
            "others_percent": round(100 * max(busy - ours, 0) / total, 1) if total else None,
        }
        # Milliseconds of CPU per answered request: user + system, and system alone.
        run["cpu_ms_per_request"] = {
            name: _ms_per_request(user + system, m["requests"])
            for name, (user, system) in cpu.items()
        }
        run["cpu_sys_ms_per_request"] = {
            name: _ms_per_request(system, m["requests"]) for name, (_, system) in cpu.items()
        }
        return run

    def _ceiling_beside(self, ceiling: procs.Server, tag: str) -> dict[str, Any]:
        """The ceiling again, just before an endpoint's measured run (its server has been up
        since the table began, so a short warm-up does)."""
        args = self.args
        self._wrk(ceiling, CEILING, {}, args.ceiling_warmup, f"{tag}-ceiling-beside-warmup")
        cpu = procs.CpuMeter(ceiling.worker_pids)
        cpu.start()
        m = self._wrk(ceiling, CEILING, {}, args.duration, f"{tag}-ceiling-beside")
        user, system = cpu.stop()
        beside = {key: m[key] for key in ("rps", "requests", "errors", "non2xx", "latency_ms")}
        beside["server_cpu_ms_per_request"] = _ms_per_request(user + system, m["requests"])
        print(f"bench:   ceiling beside it: {m['rps']:,.0f} req/s", flush=True)
        return beside

    def _profile(
        self, server: procs.Server, ep: Endpoint, env: dict[str, str], prefix: str
    ) -> dict[str, Any]:
        """A run of its own after the measured one, under py-spy: sampling competes with wrk
        and the server for the two cores, and would lower the figures it was taken with."""
        raw = self.out_dir / f"profile-{prefix}-{ep.name}.txt"
        pid = server.worker_pids()[0]
        process = pyspy.start(self.args.py_spy, pid, self.args.duration, raw)
        self._wrk(server, ep, env, self.args.duration, f"{prefix}-{ep.name}-profiled")
        return self._finish_profile(ep, process, raw, pid)

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
        # Relative to the repository when it is inside it (the default --out), else as given.
        info["raw"] = str(raw.relative_to(ROOT) if raw.is_relative_to(ROOT) else raw)
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
            env = seed.server_env(url, self.encryption_key, args.pool_size, self.source)
            block["tether_imported_from"] = seed.tether_source(PYTHON, env, workdir)
            block["database_url"] = url
            ceiling = procs.ceiling_server(
                env, workdir, workers, self.out_dir / f"{prefix}-ceiling.log", PYTHON
            )
            # Up through the whole table, idle while Tether is measured: each endpoint's ratio
            # is to the ceiling measured just before it.
            with self._serving(ceiling):
                block["endpoints"].append(self._measure(ceiling, CEILING, {}, prefix))
                block["endpoints"][0]["ratio"] = 1.0
                self._tether(block, prefix, env, workdir, url, ceiling)
        block["status"] = "ok"

    def _tether(
        self,
        block: dict[str, Any],
        prefix: str,
        env: dict[str, str],
        workdir: Path,
        url: str,
        ceiling: procs.Server,
    ) -> None:
        """Seed Tether, then measure each endpoint beside the ceiling, then the soak."""
        args = self.args
        pg_database = seed.database_name(url) if block["database"] == "postgres" else None
        first_ceiling_rps = block["endpoints"][0]["measured"]["rps"]
        print(f"bench: {prefix} seeding", flush=True)
        init = seed.tether_init(PYTHON, env, workdir)
        key = init["environments"]["development"]["secretKey"]
        tether = procs.tether_server(
            env, workdir, block["workers"], self.out_dir / f"{prefix}-tether.log", PYTHON
        )
        with self._serving(tether):
            started = time.monotonic()
            ids = seed.create_users(tether.url, key, args.users)
            if pg_database:
                seed.analyze(url)
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
                signing_key = seed.create_signing_key(
                    tether.url, init["email"], init["password"], "development"
                )
            # The set-up's peak (startup, seeding, and the admin login above, whose
            # Argon2id check allocates 64 MiB) is reported on its own; the rows' peaks
            # are what serving the measured endpoints takes.
            block["setup_memory"] = tether.memory()
            block["peaks_reset"] = tether.reset_peaks()
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
                    seed.check_tenant_token(tether.url, dev["publishableKey"], ids[0], tokens[0])
                    pairs_file = workdir / "tenant-tokens.txt"
                    pairs_file.write_text(
                        "".join(f"{i} {t}\n" for i, t in zip(ids, tokens, strict=True))
                    )
                    ep_env["BENCH_TENANT_TOKENS_FILE"] = str(pairs_file)
                    ep_env["BENCH_PUBLISHABLE_KEY"] = dev["publishableKey"]
                entry = self._measure(tether, ep, ep_env, prefix, pg_database, ceiling)
                entry["ratio_to_first_ceiling"] = entry["measured"]["rps"] / first_ceiling_rps
                if "profile" in entry:
                    block["profile"] = entry.pop("profile")
                block["endpoints"].append(entry)

            if args.soak:
                block["soak"] = self._soak(tether, wrk_env, prefix)
            block["supervisor_memory"] = tether.supervisor_memory()

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
