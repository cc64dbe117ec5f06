# Two commands: `make demo` and `make test`. Both bootstrap their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo
NEZHA_ARCHIVE ?= ../shared/datasets/nezha-trainticket-2023-01-29.tar.xz
NEZHA_DIR ?= .cache/nezha

.PHONY: demo test lint typecheck unit bench bench-engine bench-nezha clean lab test-lab
LAB_PACKAGES := prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-node-exporter

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT) $(DEMO_OUT).db
	WARROOM_DB=sqlite:///$(DEMO_OUT).db $(BIN)/warroom respond examples/checkout-pool-exhaustion --workflow critical-incident --out $(DEMO_OUT)
	@echo "Reports are in $(DEMO_OUT)/ (postmortem.md, postmortem.html, timeline.md, workflow.md, diagnosis.json, metrics.json)"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# The live lab's tools are Debian packages; installed when missing (root), else says how.
lab: $(STAMP)
	@missing=""; for p in $(LAB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "the lab needs:$$missing — run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi
	@echo "lab ready: $(BIN)/warroom lab up --dir .lab"

test-lab: lab
	$(BIN)/pytest -m lab tests/test_lab_e2e.py

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/engine.py

$(NEZHA_DIR)/rca_data:
	mkdir -p $(NEZHA_DIR)
	tar -xJf $(NEZHA_ARCHIVE) -C $(NEZHA_DIR)

bench-nezha: $(STAMP) $(NEZHA_DIR)/rca_data
	$(BIN)/warroom bench nezha $(NEZHA_DIR)

clean:
	rm -rf $(VENV) out .cache .mypy_cache .ruff_cache .pytest_cache
