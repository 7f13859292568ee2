# Quick start:  make demo  |  make test
# Each target creates .venv on first use (torch 2.13.0 first, then the package under the
# constraint torch==2.13.0 so pip never swaps in a CUDA build); later runs reuse it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sam2elnet-installed
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: setup demo test lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (first run takes a few minutes)..."
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[dev,ray]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/elnet demo --out demo-out

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_infer.py --quick
	$(PY) benchmarks/bench_train.py --quick
	$(PY) benchmarks/bench_scale.py --quick

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache .hypothesis
