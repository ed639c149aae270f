"""A PostgreSQL cluster of a test's own: initdb into a fresh folder, served on a free port,
stopped and started at will, removed afterwards. Never the shared cluster on 5432.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
(through `runuser`), in a folder under /tmp that user can reach."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

BIN = Path(os.environ.get("TETHER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing() -> str | None:
    """Why no cluster can be made here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (BIN / tool).is_file():
            return f"PostgreSQL binaries not found in {BIN} (set TETHER_TEST_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to own a cluster"
        if shutil.which("runuser") is None:
            return "running as root without `runuser`"
    return None


class Cluster:
    def __init__(self, root: Path, port: int, as_postgres: bool) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.as_postgres = as_postgres
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        command = [str(BIN / argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and deleted at the end."""
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="tether-pg-"))
    if as_postgres:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(root, free_port(), as_postgres)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
