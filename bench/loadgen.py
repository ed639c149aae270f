"""wrk: installed from Debian's packages when missing, run with a Lua script from bench/lua,
and its output parsed (the script's JSON line plus wrk's own summary lines as a cross-check)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"

_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package if it is missing (nothing from elsewhere)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: install Debian's package (apt-get install wrk).")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    print("bench: installing wrk from Debian's packages", flush=True)
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install wrk.")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def parse(stdout: str) -> dict[str, Any]:
    result: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON ") :])
    if result is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{stdout}")
    match = _NON2XX.search(stdout)
    # wrk's own count: answers with a status of 400 or more (3xx are not counted, despite the
    # wording). The script's count (non2xx) is every answer outside 200-299.
    result["wrk_non2xx_or_3xx"] = int(match.group(1)) if match else 0
    match = _SOCKET_ERRORS.search(stdout)
    result["wrk_socket_errors"] = [int(g) for g in match.groups()] if match else [0, 0, 0, 0]
    match = _RPS.search(stdout)
    result["wrk_rps"] = float(match.group(1)) if match else None
    return result


def run(
    wrk: str,
    url: str,
    script: str,
    *,
    duration: float,
    connections: int,
    threads: int,
    env: dict[str, str],
    timeout_s: int = 10,
    max_requests: int = 0,
) -> dict[str, Any]:
    """One wrk run. With `max_requests`, each thread stops after its share and wrk is ended
    as soon as every thread has (wrk's main thread would otherwise sleep for the duration)."""
    per_thread = -(-max_requests // threads) if max_requests else 0
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{round(duration)}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(LUA / script),
        url,
    ]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as done_dir:
        full_env = {
            **os.environ,
            **env,
            "BENCH_MAX_REQUESTS": str(per_thread),
            "BENCH_DONE_DIR": done_dir,
        }
        started = time.monotonic()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = subprocess.Popen(
            argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            if per_thread:
                while process.poll() is None and len(os.listdir(done_dir)) < threads:
                    time.sleep(0.05)
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
            stdout, stderr = process.communicate(timeout=duration + 120)
            children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0 or "BENCH_JSON" not in stdout:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    result = parse(stdout)
    result["wall_s"] = round(time.monotonic() - started, 3)
    # Only wrk can have been reaped in between: the servers are still running.
    result["wrk_cpu_s"] = (
        children_after.ru_utime - children_before.ru_utime,
        children_after.ru_stime - children_before.ru_stime,
    )
    result["command"] = " ".join(argv)
    result["stdout"] = stdout
    if stderr.strip():
        result["stderr"] = stderr
    return result
