# Two commands: `make demo` and `make test`. Both bootstrap their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo
NEZHA_ARCHIVE ?= ../shared/datasets/nezha-trainticket-2023-01-29.tar.xz
NEZHA_DIR ?= .cache/nezha

.PHONY: demo test lint typecheck unit bench bench-engine bench-nezha clean system-packages

# Debian packages the tests use (chromium: the report's browser checks). One install step for all:
# add a package to this list rather than a step of your own. Installed only when missing.
APT_PACKAGES ?= chromium

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

system-packages:
	@missing="$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

unit: $(STAMP) system-packages
	$(BIN)/pytest

test: lint typecheck unit

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/engine.py

$(NEZHA_DIR)/rca_data:
	mkdir -p $(NEZHA_DIR)
	tar -xJf $(NEZHA_ARCHIVE) -C $(NEZHA_DIR)

bench-nezha: $(STAMP) $(NEZHA_DIR)/rca_data
	$(BIN)/warroom bench nezha $(NEZHA_DIR)

clean:
	rm -rf $(VENV) out .cache .mypy_cache .ruff_cache .pytest_cache
