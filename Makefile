# Every entry point of the project. Only Python 3.11+ and make are needed first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check fmt lint typecheck bench lock docs clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The first run writes .env with a new encryption key for secrets at rest: keep that file.
.env: | $(STAMP)
	@echo "Writing .env with a new TETHER_ENCRYPTION_KEYS entry (it decrypts stored secrets: keep it)."
	@echo "TETHER_ENCRYPTION_KEYS=$$($(BIN)/tether secrets generate-key)" > .env

# Serve on SQLite at http://127.0.0.1:8000; the first run prints the dashboard login and keys.
run: $(STAMP) .env
	$(BIN)/tether serve --bootstrap

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# The load benchmark: every database and worker count (about 30 minutes); writes
# bench/RESULTS.md. A quick look: make bench BENCH_ARGS="--db postgres --workers 1 --duration 10"
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Regenerate the configuration reference in docs/operations.md from the settings model
# (a test fails while it is out of date).
docs: $(STAMP)
	$(BIN)/tether config-reference --write docs/operations.md

# Re-pin after editing dependencies in pyproject.toml (needs network access to PyPI).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -q -o requirements-prod.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
