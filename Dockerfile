# syntax=docker/dockerfile:1
# Tether's image: the locked dependencies and Tether in a virtualenv, run as an unprivileged
# user. Build: docker build -t tether .   Run: see docker-compose.yml and docs/operations.md.

# Build: every dependency from requirements-prod.lock, by hash, as a prebuilt wheel (no
# compiler is needed, and none reaches the final image), then Tether itself.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/tether
COPY requirements-prod.lock ./
RUN /opt/tether/bin/pip install --require-hashes --no-deps --only-binary :all: \
        -r requirements-prod.lock
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
# The wheel carries the migrations inside the package. pip compiles the bytecode as it
# installs (the image runs with PYTHONDONTWRITEBYTECODE) and is not needed at run time.
RUN /opt/tether/bin/pip install --no-deps . \
    && /opt/tether/bin/pip uninstall --yes pip

# Run: the virtualenv alone on a slim Python, as uid 10001.
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="Tether" \
      org.opencontainers.image.description="Self-hosted authentication for embedded integrations" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/tether/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TETHER_HOST=0.0.0.0 \
    TETHER_PORT=8000 \
    TETHER_LOG_FORMAT=json
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tether --create-home \
        --shell /usr/sbin/nologin tether
COPY --from=build /opt/tether /opt/tether
USER 10001:10001
# The SQLite default lives here; mount a volume on it, or set TETHER_DATABASE_URL.
WORKDIR /var/lib/tether
EXPOSE 8000
# Ready, not just alive: the database answers and its schema is current. It reads the port
# the server was given, and needs nothing beyond the Python already in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('TETHER_PORT', '8000'), timeout=2).status != 200)"]
# docker stop sends SIGTERM: in-flight requests finish (up to 30 s), then the process exits.
# Give it the time: `docker stop -t 35`, or stop_grace_period in compose.
STOPSIGNAL SIGTERM
# `serve` applies pending migrations before it listens; TETHER_HOST, TETHER_PORT and
# TETHER_WORKERS choose where and how many.
CMD ["tether", "serve"]
