"""Server processes for the benchmark: start, wait until every worker is up, read their memory,
and stop them (always, and only the processes this harness started)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

# What uvicorn logs once per worker when its lifespan startup has finished.
STARTUP_LINE = "Application startup complete."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _ppid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User and system CPU time the process has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database` (local server only:
    their titles read `postgres: [cluster:] user database host(port) state`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        title = cmdline(int(entry.name)).split()
        if title[:1] == ["postgres:"] and database in title[1:5]:
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds used between start() and stop() by a set of processes, some of which may
    appear in between (PostgreSQL backends opened by the pool). A process that exits in
    between is missed, which only understates."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._before: dict[int, tuple[float, float]] = {}

    def start(self) -> None:
        self._before = {p: c for p in self._pids() if (c := cpu_seconds(p)) is not None}

    def stop(self) -> tuple[float, float]:
        """User and system seconds."""
        user = system = 0.0
        for pid in self._pids():
            now = cpu_seconds(pid)
            if now is not None:
                before = self._before.get(pid, (0.0, 0.0))
                user += now[0] - before[0]
                system += now[1] - before[1]
        return user, system


def machine_cpu() -> tuple[float, float]:
    """Seconds of CPU time the whole machine has spent busy (steal included) and in total,
    summed over all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / _CLOCK_TICKS, total / _CLOCK_TICKS


def busy_percent(seconds: float = 2.0) -> float:
    """How busy the whole machine is over the next `seconds`, as a share of all its CPUs."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return 100 * (busy1 - busy0) / max(total1 - total0, 1e-9)


def reset_peak_rss(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0+: "5" to /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set since the process started) and VmRSS (now), in KiB."""
    values: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0])
    return values


@dataclass
class Server:
    """A uvicorn server process: `tether serve` or the ceiling app."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    workers: int
    ready_path: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    seen_workers: set[int] = field(default_factory=set)
    _log_offset: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 90) -> None:
        with self.log_path.open("wb") as log:
            # A session of its own, so that its process group is exactly what we started.
            self.process = subprocess.Popen(
                list(self.argv),
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not become ready:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        self._log_offset = len(self.log())

    def _ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(self.url + self.ready_path, timeout=2).status_code != 200:
                return False
            # One worker answering is not all of them: wait for every worker's startup.
            if self.log().count(STARTUP_LINE) < self.workers:
                return False
            return len(self.worker_pids()) == self.workers
        return False

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the main process itself with one worker, else
        uvicorn's spawned children (not multiprocessing's resource tracker)."""
        assert self.process is not None
        if self.workers == 1:
            pids = [self.process.pid]
        else:
            pids = [p for p in children(self.process.pid) if "spawn_main" in cmdline(p)]
        self.seen_workers.update(pids)
        return pids

    def memory(self) -> list[dict[str, int]]:
        """Per worker: pid, VmHWM and VmRSS in KiB."""
        return [{"pid": pid, **memory_kib(pid)} for pid in self.worker_pids()]

    def reset_peaks(self) -> bool:
        """From now on, each worker's VmHWM is its peak since this call."""
        return all([reset_peak_rss(pid) for pid in self.worker_pids()])

    def supervisor_memory(self) -> dict[str, int] | None:
        if self.workers == 1 or self.process is None:
            return None
        return {"pid": self.process.pid, **memory_kib(self.process.pid)}

    def new_log_problems(self) -> list[str]:
        """Lines logged at WARNING or above (or tracebacks) since the last call."""
        text = self.log()
        fresh, self._log_offset = text[self._log_offset :], len(text)
        markers = ("ERROR", "WARNING", "CRITICAL", "Traceback")
        return [line for line in fresh.splitlines() if any(m in line for m in markers)]

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        with contextlib.suppress(Exception):
            self.worker_pids()  # remember the workers, to check they are gone afterwards
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # A worker left behind by a supervisor that died: our own process group only.
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in self.seen_workers):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        self.process = None


def tether_server(
    env: dict[str, str], workdir: Path, workers: int, log_path: Path, python: Path
) -> Server:
    port = free_port()
    argv = [
        str(python),
        "-m",
        "tether",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server("tether", argv, env, workdir, log_path, workers, "/readyz", port)


def ceiling_server(
    env: dict[str, str], workdir: Path, workers: int, log_path: Path, python: Path
) -> Server:
    """The bare FastAPI app with the flags `tether serve` gives uvicorn (see tether.cli)."""
    port = free_port()
    argv = [
        str(python),
        "-m",
        "uvicorn",
        "ceiling:app",
        "--app-dir",
        str(BENCH),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        # As `tether serve`: without it, uvicorn wraps the app in its proxy-headers layer.
        "--no-proxy-headers",
    ]
    return Server("ceiling", argv, env, workdir, log_path, workers, "/ping", port)
