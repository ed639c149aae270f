"""The published deployment files: both compose files parse with a Compose client, the image's
CMD and HEALTHCHECK work outside Docker, and the nginx config keeps /metrics private."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jsonschema_rs
import pytest
import yaml

from tests.support import ROOT, free_port, run_server

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.scale.yml")
COMPOSE_SCHEMA = Path(__file__).parent / "compose_spec" / "compose_spec.json"
VENV_BIN = Path(sys.executable).parent


# --- docker compose config ----------------------------------------------------------------------


def compose_client() -> list[str] | None:
    """The Compose v2 plugin (`docker compose`) if the Docker client has it, else Debian's
    `docker-compose` package (which .ci/run installs); both parse a file without an engine."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.fixture
def compose() -> list[str]:
    client = compose_client()
    if client is None:
        pytest.skip(
            "no Compose client: install the docker compose plugin or Debian's docker-compose"
        )
    return client


def compose_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    return {**env, "TETHER_ENCRYPTION_KEYS": "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}


class TestComposeFiles:
    @pytest.mark.parametrize("name", COMPOSE_FILES)
    def test_docker_compose_config_accepts_it(self, compose: list[str], name: str) -> None:
        result = subprocess.run(
            [*compose, "-f", name, "config", "-q"],
            cwd=ROOT,
            env=compose_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr

    @pytest.mark.parametrize("name", COMPOSE_FILES)
    def test_it_refuses_to_start_without_the_encryption_keys(
        self, compose: list[str], name: str
    ) -> None:
        env = {k: v for k, v in compose_env().items() if k != "TETHER_ENCRYPTION_KEYS"}
        result = subprocess.run(
            [*compose, "-f", name, "config", "-q"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0
        assert "TETHER_ENCRYPTION_KEYS" in result.stderr

    @pytest.mark.parametrize("name", COMPOSE_FILES)
    def test_it_follows_the_compose_specification_schema(self, name: str) -> None:
        """Runs everywhere, with or without a Compose client."""
        validator = jsonschema_rs.validator_for(json.loads(COMPOSE_SCHEMA.read_text()))
        spec = yaml.safe_load((ROOT / name).read_text())
        errors = [
            f"{error.instance_path}: {error.message}" for error in validator.iter_errors(spec)
        ]
        assert errors == []

    def test_the_schema_catches_a_misspelt_key(self) -> None:
        validator = jsonschema_rs.validator_for(json.loads(COMPOSE_SCHEMA.read_text()))
        spec = yaml.safe_load((ROOT / "docker-compose.scale.yml").read_text())
        spec["services"]["tether"]["replica"] = 2
        assert not validator.is_valid(spec)

    def test_the_scaled_shape(self) -> None:
        spec = yaml.safe_load((ROOT / "docker-compose.scale.yml").read_text())
        services = spec["services"]
        tether, migrate, proxy = services["tether"], services["migrate"], services["proxy"]
        assert tether["deploy"]["replicas"] == 2
        assert tether["command"] == ["tether", "serve", "--no-migrate"]
        assert migrate["command"] == ["tether", "db", "upgrade"]
        assert tether["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        # Only the proxy (and the opt-in Prometheus) publish a port; replicas stay private.
        published = {name for name, service in services.items() if service.get("ports")}
        assert published == {"proxy", "prometheus"}
        assert all(p.startswith("127.0.0.1:") for p in proxy["ports"])
        mounted = [v.split(":")[0] for v in proxy["volumes"]]
        assert "./deploy/nginx.conf" in mounted
        assert (ROOT / "deploy" / "nginx.conf").is_file()
        assert (ROOT / "deploy" / "prometheus.yml").is_file()
        proxy_ip = proxy["networks"]["backend"]["ipv4_address"]
        assert tether["environment"]["TETHER_TRUSTED_PROXIES"] == proxy_ip
        for service in (tether, services["postgres"], services["redis"]):
            assert "backend" in service["networks"]
        assert tether["stop_grace_period"] == "35s"


# --- the Dockerfile ------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    instructions: dict[str, str] = field(default_factory=dict)


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages, with their logical lines (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text()
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=rest.split()[0]))
            continue
        stage = stages[-1]
        stage.lines.append(line)
        stage.instructions[keyword] = rest.strip()
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage.env[key] = value
    return stages


def exec_form(instruction: str) -> list[str]:
    argv = json.loads(instruction)
    assert isinstance(argv, list), "use the exec form: a JSON array"
    return [str(arg) for arg in argv]


class TestDockerfile:
    def test_it_is_multi_stage_from_the_prod_lock_and_runs_unprivileged(self) -> None:
        build, final = dockerfile_stages()
        installs = " ".join(line for line in build.lines if line.startswith("RUN"))
        assert "--require-hashes" in installs
        assert "requirements-prod.lock" in installs
        assert "--only-binary :all:" in installs
        assert "slim" in final.base
        assert any(line.startswith("COPY --from=") for line in final.lines)
        user = final.instructions["USER"].split(":")[0]
        assert user not in ("root", "0")
        final_runs = " ".join(line for line in final.lines if line.startswith("RUN"))
        for tool in ("apt-get", "gcc", "build-essential", "pip install"):
            assert tool not in final_runs

    @pytest.mark.slow
    def test_its_cmd_and_healthcheck_work_outside_docker(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        final = dockerfile_stages()[-1]
        cmd = exec_form(final.instructions["CMD"])
        healthcheck = final.instructions["HEALTHCHECK"]
        probe = exec_form(healthcheck[healthcheck.index("CMD ") + 4 :])
        port = free_port()
        image_env = {k: v for k, v in final.env.items() if k != "PATH"}
        env = {
            **os.environ,
            **image_env,
            # The image's /opt/tether/bin is this virtualenv's bin here.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TETHER_ENCRYPTION_KEYS": server_env["TETHER_ENCRYPTION_KEYS"],
            # A scratch database, as a new container on a new volume would have.
            "TETHER_DATABASE_URL": f"sqlite:///{tmp_path / 'image.db'}",
            "TETHER_PORT": str(port),
            "TMPDIR": str(tmp_path),
        }
        log = tmp_path / "cmd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                cmd, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                    if ready.status_code == 200:
                        break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert ready.json() == {"status": "ready"}
            checked = subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False)
            assert checked.returncode == 0, checked.stderr
            # The image logs JSON: every line a JSON object.
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    json.loads(line)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        # uvicorn ends by the signal it handled (one worker), or 0 (a supervisor of several).
        assert code in (0, -signal.SIGTERM), log.read_text()
        assert "Application shutdown complete" in log.read_text()
        # One worker keeps its metrics in memory: nothing is left behind in TMPDIR.
        assert list(tmp_path.glob("tether-metrics-*")) == []
        # Stopped, the health check fails.
        assert subprocess.run(probe, env=env, capture_output=True, check=False).returncode != 0


# --- nginx in front of a real server ---------------------------------------------------------


@contextlib.contextmanager
def nginx_in_front_of(upstream: str, tmp_path: Path) -> Iterator[str]:
    """deploy/nginx.conf, with Docker's DNS name for the replicas replaced by `upstream`."""
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    port = free_port()
    config = re.sub(r"\n\s*resolver [^;]*;", "\n", config)
    config = config.replace("set $tether http://tether:8000;", f"set $tether {upstream};")
    config = config.replace("listen 80;", f"listen 127.0.0.1:{port};")
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "site.conf").write_text(config)
    main = prefix / "nginx.conf"
    temp = "".join(
        f"{name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main.write_text(
        f"pid {prefix / 'nginx.pid'}; error_log {prefix / 'logs' / 'error.log'};\n"
        f"events {{}}\nhttp {{ access_log off; {temp} include {prefix / 'site.conf'}; }}\n"
    )
    process = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, (prefix / "logs" / "error.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{url}/healthz", timeout=1)
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
class TestProxy:
    def test_the_proxy_passes_the_api_and_hides_metrics(
        self, server_env: dict[str, str], tmp_path: Path
    ) -> None:
        if shutil.which("nginx") is None:
            pytest.skip("nginx is not installed (.ci/run installs Debian's)")
        with (
            run_server(server_env, tmp_path) as server,
            nginx_in_front_of(server.url, tmp_path) as proxy,
        ):
            assert httpx.get(f"{server.url}/metrics").status_code == 200
            for path in ("/metrics", "/2024-03/metrics", "/metrics/", "//metrics", "/%6detrics"):
                response = httpx.get(f"{proxy}{path}")
                assert response.status_code == 404, path
                assert "tether_http_requests_total" not in response.text
            ready = httpx.get(f"{proxy}/readyz")
            assert ready.status_code == 200
            # nginx names the request; Tether echoes the id, so both logs share it.
            assert re.fullmatch(r"[0-9a-f]{32}", ready.headers["x-request-id"])
            mine = httpx.get(f"{proxy}/healthz", headers={"x-request-id": "client-abc"})
            assert mine.headers["x-request-id"] == "client-abc"
