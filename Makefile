# asyncpress — every target CI uses is here.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# uv on PATH, else uv installed for this Python (pip) and run as a module.
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help uv runtime install run migrate test test-sqlite test-fast test-lowest lint fmt typecheck check seed clean bench bench-quick bench-dry bench-notifications bench-features bench-realtime bench-render bench-versions

help:
	@echo "make run        set up, migrate the SQLite database and serve on http://$(HOST):$(PORT)"
	@echo "make test       lint, type-check and run the tests on SQLite, PostgreSQL and MariaDB"
	@echo "make test-fast  the tests that start no server process, on SQLite (about a minute)"
	@echo "make test-lowest the tests on the lowest dependency versions declared"
	@echo "make fmt        format the code"
	@echo "make seed       fill the database with demo data"
	@echo "make bench      the benchmark suite on PostgreSQL (needs wrk; < 20 min; bench-quick < 3 min)"

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --user --quiet uv \
		|| python3 -m pip install --user --quiet --break-system-packages uv

# Bytecode compiled at install: every process the tests and benchmarks start
# (and every server) would otherwise compile its imports from source, seconds
# of CPU each where PYTHONDONTWRITEBYTECODE is set.
# Two stamps: what serving needs (make run, migrate, seed: the package and its
# dependencies only), and everything the tests, linters and benchmarks need
# (the dev and bench groups on top). --inexact: a later `make run` leaves the
# development tools in place instead of removing them.
.venv/.runtime: pyproject.toml uv.lock | uv
	$(UV) sync --frozen --python python3 --compile-bytecode --no-default-groups --inexact
	@touch $@

.venv/.installed: pyproject.toml uv.lock | uv
	$(UV) sync --frozen --python python3 --compile-bytecode
	@touch $@ .venv/.runtime

runtime: .venv/.runtime

install: .venv/.installed

migrate: runtime
	ENVIRONMENT=development .venv/bin/asyncpress db upgrade

run: migrate
	ENVIRONMENT=development .venv/bin/asyncpress serve --host $(HOST) --port $(PORT)

seed: migrate
	ENVIRONMENT=development .venv/bin/asyncpress seed --users 100 --articles 1000

fmt: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: install
	.venv/bin/mypy

# Tests run in parallel: two workers more than cores, since many tests wait on
# servers and timers (docs/architecture.md, "Testing"); a worker takes tests
# as it frees up (worksteal), the longest start first.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))
PYTEST := .venv/bin/pytest -n $(TEST_WORKERS) --dist worksteal
# The project's own bytecode too, before the suite starts its processes.
BYTECODE := $(PY) -m compileall -q -j 0 src servers bench tests >/dev/null

test: lint typecheck
	$(BYTECODE)
	$(PYTEST)

test-sqlite: install
	$(BYTECODE)
	ASYNCPRESS_TEST_BACKENDS=sqlite $(PYTEST)

# The part that starts no server process of its own, on SQLite: the quick loop.
test-fast: install
	$(BYTECODE)
	ASYNCPRESS_TEST_BACKENDS=sqlite $(PYTEST) -m "not processes"

# The whole suite on the lowest versions pyproject.toml declares.
test-lowest: install
	$(BYTECODE)
	UV="$(UV)" bash .ci/lowest -n $(TEST_WORKERS) --dist worksteal

bench: install
	.venv/bin/python -m bench.suite

bench-quick: install
	.venv/bin/python -m bench.suite --quick

bench-dry: install
	.venv/bin/python -m bench.suite --dry --out "$$(mktemp -d)"

bench-notifications: install
	.venv/bin/python -m bench.notifications

bench-features: install
	.venv/bin/python -m bench.features

bench-realtime: install
	.venv/bin/python -m bench.realtime

bench-render: install
	.venv/bin/python -m bench.render

# This working tree against another revision, every RealWorld endpoint side by side.
BASE ?= origin/main
bench-versions: install
	.venv/bin/python -m bench.versions $(BASE)

clean:
	rm -rf .venv .mypy_cache .pytest_cache .ruff_cache
