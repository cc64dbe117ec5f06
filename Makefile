# Two commands: `make demo` and `make test`. Both bootstrap their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo
NEZHA_ARCHIVE ?= ../shared/datasets/nezha-trainticket-2023-01-29.tar.xz
NEZHA_DIR ?= .cache/nezha
# pytest workers of `make test` (one test module per worker at a time: module fixtures stay shared)
TEST_WORKERS ?= 2

.PHONY: demo serve-demo test lint typecheck unit bench bench-engine bench-nezha bench-serve bench-raw-metrics clean system-packages lab test-lab bench-lab

# Debian packages the tests use: a real Prometheus and Alertmanager (live sources, the service's
# intake) and Chromium (the web room and the reports in a real browser). One install step for all:
# add a package to this list rather than a step of your own. Installed only when missing.
APT_PACKAGES ?= prometheus prometheus-alertmanager chromium
# The live lab (`warroom lab`) also runs the exporters of its database and host.
LAB_PACKAGES := prometheus-postgres-exporter prometheus-node-exporter

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT) $(DEMO_OUT).db
	WARROOM_DB=sqlite:///$(DEMO_OUT).db $(BIN)/warroom respond examples/checkout-pool-exhaustion --workflow critical-incident --out $(DEMO_OUT)
	@echo "Reports are in $(DEMO_OUT)/ (postmortem.md, postmortem.html, timeline.md, workflow.md, diagnosis.json, metrics.json)"

SERVE_DB ?= out/serve-demo.db
SERVE_PORT ?= 8080

# The service on the example bundle, replayed as if live; a commander token is printed once.
serve-demo: $(STAMP)
	rm -rf $(SERVE_DB) out/reports
	mkdir -p out
	@TOKEN=$$($(BIN)/warroom token create --role commander --name demo-commander --db sqlite:///$(SERVE_DB)) && \
	echo "warroom serve: http://127.0.0.1:$(SERVE_PORT)/  (log in with this token: $$TOKEN)" && \
	echo "send the example's alert:  curl -X POST -H \"Authorization: Bearer $$TOKEN\" http://127.0.0.1:$(SERVE_PORT)/api/v1/replay/alert" && \
	echo "stop with Ctrl-C"
	$(BIN)/warroom serve --replay examples/checkout-pool-exhaustion --db sqlite:///$(SERVE_DB) --port $(SERVE_PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

system-packages:
	@missing="$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing — run: sudo apt-get install -y $$missing"; exit 1; fi; \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The sources compiled to bytecode first (incremental; also where PYTHONDONTWRITEBYTECODE is set,
# since compileall writes regardless): the tests start `warroom` in many subprocesses, each of
# which would otherwise compile every module again, ~0.3 s of CPU per process.
unit: $(STAMP) system-packages
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test: lint typecheck unit

# The runs that kill, restart or execute a whole workflow (the suite's longest): kept out of
# `make test`'s five minutes, run by CI after it (.ci/run).
test-long: $(STAMP) system-packages
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m long

# The live lab's tools are Debian packages; installed when missing (root), else says how.
lab: $(STAMP)
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(APT_PACKAGES) $(LAB_PACKAGES)"
	@echo "lab ready: $(BIN)/warroom lab up --dir .lab"

test-lab: lab
	$(BIN)/pytest -m lab tests/test_lab_e2e.py tests/test_lab_loop.py

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/engine.py

bench-raw-metrics: $(STAMP)
	$(BIN)/python benchmarks/raw_metrics.py

$(NEZHA_DIR)/rca_data:
	mkdir -p $(NEZHA_DIR)
	tar -xJf $(NEZHA_ARCHIVE) -C $(NEZHA_DIR)

bench-serve: $(STAMP)
	$(BIN)/python benchmarks/serve_intake.py

# The live loop on the normal timeline, every fault (about 10 minutes each): `warroom bench lab`.
bench-lab: lab
	nice $(BIN)/warroom bench lab --dir .lab

bench-nezha: $(STAMP) $(NEZHA_DIR)/rca_data
	$(BIN)/warroom bench nezha $(NEZHA_DIR)

clean:
	rm -rf $(VENV) out .cache .mypy_cache .ruff_cache .pytest_cache
