# Quick start:  make demo  |  make test
# Each target creates .venv on first use (torch 2.13.0 first, then the package under the
# constraint torch==2.13.0 so pip never swaps in a CUDA build); later runs reuse it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sam2elnet-installed
PIP    := $(PY) -m pip --disable-pip-version-check -q

# Label Studio (for the review-loop tests against a real server) lives in its own venv: its pins
# clash with ours. Best effort: when it cannot be installed, those tests skip and say why.
LS_VENV  ?= .venv-ls
LS_STAMP := $(LS_VENV)/.sam2elnet-ls-installed
LS_PIP   := $(LS_VENV)/bin/python -m pip --disable-pip-version-check -q

.PHONY: setup setup-ls oracle demo test browser lint format bench bench-full clean

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (first run takes a few minutes)..."
	$(PIP) install torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[dev,ray]"
	$(MAKE) --no-print-directory oracle
	@touch $(STAMP)

# Meta's SAM2 implementation, only for the oracle test (tests/model/test_oracle_sam2.py): an sdist whose
# metadata asks for torchvision, which must never be installed here (its only matching wheel breaks
# CPU torch), so it goes in without dependencies or CUDA build; hydra-core and iopath, which its
# import needs, come from the dev extra. Idempotent; a failure only makes the oracle tests skip.
oracle:
	@test -x $(PY) || { echo "run make setup first"; exit 1; }
	$(PIP) install -c constraints.txt "setuptools>=68" wheel
	SAM2_BUILD_CUDA=0 $(PIP) install -c constraints.txt --no-deps --no-build-isolation sam2==1.1.0 \
		|| echo "warning: sam2 1.1.0 could not be installed; the oracle tests will skip"
	@$(PY) -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is not None)" \
		|| { echo "error: torchvision is installed in $(VENV); remove it (pip uninstall torchvision)"; exit 1; }

setup: $(STAMP)

# label-studio + its SDK, and a migrated data folder (template/) the tests copy, so a test server
# starts in seconds instead of running every migration again.
$(LS_STAMP):
	@echo "setting up $(LS_VENV) (Label Studio for the review-loop tests; a few minutes once)..."
	@( test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV) ) \
	 && $(LS_PIP) install "label-studio>=1.23,<1.24" "label-studio-sdk>=2.1,<3" \
	 && rm -rf $(LS_VENV)/template \
	 && LATEST_VERSION_CHECK=false $(LS_VENV)/bin/label-studio init --data-dir $(LS_VENV)/template \
	    --username elnet@example.com --password elnet-test-pw --user-token elnet0test0token \
	    --enable-legacy-api-token > $(LS_VENV)/init.log 2>&1 \
	 && touch $(LS_STAMP) \
	 || echo "warning: Label Studio could not be set up; the tests against a real server will skip"

setup-ls: $(LS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/elnet demo --out demo-out

# pytest-xdist workers: `-n auto` is the usable CPUs, at most 2 and none on one CPU (tests/conftest.py);
# each worker takes one thread. --dist loadfile keeps a test file on one worker, so a module fixture
# (a trained micro model, the Label Studio server, the local Ray cluster) is built once.
# `make test PYTEST_ARGS=` runs the tests serially in one process; PYTEST_ARGS="-n auto -k oracle" etc.
PYTEST_ARGS ?= -n auto --dist loadfile

# the venvs and the browser are independent: set them up side by side (mostly download/unpack)
test:
	@$(MAKE) --no-print-directory -j3 $(STAMP) $(LS_STAMP) browser
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Headless Chromium for the report's browser test (tests/pipeline/test_report_browser.py). Installed from
# Debian only when missing, only as root and only where apt-get exists; otherwise that test skips.
browser:
	@if ! command -v chromedriver >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium + chromium-driver (apt) for the report's browser test..."; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null || \
		echo "warning: could not install chromium; the browser test will skip"; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

bench-full: $(STAMP)
	$(PY) benchmarks/run_all.py --full

clean:
	rm -rf $(VENV) $(LS_VENV) demo-out bench-out .pytest_cache .ruff_cache .hypothesis
