# Livestage: `make run` starts the whole stack locally, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Where the bootstrap installs or finds its tools (uv, Go, livekit-server), so that `make run` and
# `make test` work from a plain shell with the default PATH, on the first run and every later one.
# Keep in step with the PATH line in scripts/bootstrap.sh.
TOOL_PATH := $(CURDIR)/.cache/bin:$(HOME)/.local/bin:/usr/local/go/bin:$(HOME)/go/bin
export PATH := $(TOOL_PATH):$(PATH)
export UV_PYTHON_DOWNLOADS := never
UV_RUN := uv run --frozen --all-packages

.PHONY: help bootstrap run test test-python test-web lint typecheck web bench clean

help:
	@echo "make bootstrap  install/check everything (uv, Python deps, nats, redis, livekit-server, chromium, espeak-ng, web/)"
	@echo "make run        start nats, redis, livekit and every service (http://127.0.0.1:8080)"
	@echo "make run OBSERVE=1  the same plus a local OpenTelemetry Collector and Prometheus"
	@echo "make test       bootstrap, then the web unit tests and every Python test"
	@echo "make lint       ruff;  make typecheck: mypy"
	@echo "make bench      benchmarks (JSON in bench/results/, tables in docs/benchmarks.md); BENCH_SMOKE=1 for seconds each"

bootstrap:
	@bash scripts/bootstrap.sh

# Where `make run` keeps its data (NATS JetStream store, Redis AOF); `make run VAR_DIR=/tmp/x`.
VAR_DIR ?= var
# `make run OBSERVE=1` adds a local OpenTelemetry Collector and Prometheus (scripts/observe.sh).
OBSERVE ?=

# Processes start in dependency order and `ready` prints the URLs once everything answers
# (scripts/stack.py); Ctrl-C stops them all.
ifeq ($(OBSERVE),1)
run: bootstrap
	@bash scripts/observe.sh
	@mkdir -p $(VAR_DIR)/nats $(VAR_DIR)/redis $(VAR_DIR)/otel $(VAR_DIR)/prometheus
	@cat Procfile deploy/Procfile.observe > $(VAR_DIR)/Procfile.observe
	LIVESTAGE_OBSERVE=1 LIVESTAGE_VAR_DIR=$(VAR_DIR) $(UV_RUN) honcho -d $(CURDIR) start -f $(VAR_DIR)/Procfile.observe
else
run: bootstrap
	@mkdir -p $(VAR_DIR)/nats $(VAR_DIR)/redis
	LIVESTAGE_VAR_DIR=$(VAR_DIR) $(UV_RUN) honcho start -f Procfile
endif

test: bootstrap lint typecheck test-web test-python

test-web:
	cd web && npm test --silent

test-python:
	$(UV_RUN) pytest

lint:
	$(UV_RUN) ruff check shared services tests bench conftest.py

typecheck:
	$(UV_RUN) mypy shared/livestage

web:
	cd web && npm run build

# Benchmarks: JSON to stdout and bench/results/; `make bench B=moderation`. Full runs are never part
# of `make test`; their smoke mode (`BENCH_SMOKE=1 make bench`, seconds each) is: tests/repo/test_bench_smoke.py.
bench: bootstrap
	$(UV_RUN) python -m bench $(B)

clean:
	rm -rf var web/dist .pytest_cache .mypy_cache .ruff_cache
