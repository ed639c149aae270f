# syntax=docker/dockerfile:1
# Build: install the locked dependencies and Tether into a virtualenv.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/tether
COPY requirements-prod.lock ./
RUN /opt/tether/bin/pip install --require-hashes --no-deps -r requirements-prod.lock
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/tether/bin/pip install --no-deps .

# Run: the virtualenv alone, as an unprivileged user.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/tether/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --home-dir /var/lib/tether --create-home tether
COPY --from=build /opt/tether /opt/tether
USER tether
WORKDIR /var/lib/tether
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# `serve` applies pending migrations before it listens.
CMD ["tether", "serve", "--host", "0.0.0.0", "--port", "8000"]
