# The two commands a newcomer runs: `make demo` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INFRA_VENV := .venv-infra

.PHONY: setup demo test lint bench clean requirements

setup: $(VENV)/.installed node_modules/.installed $(INFRA_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins an old Bicep parser; it gets a virtualenv of its own, with the newer parser beside it.
$(INFRA_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet -r requirements-infra.txt
	$(INFRA_VENV)/bin/pip install --quiet --no-deps pycep-parser==0.7.1
	touch $@

demo: $(VENV)/.installed node_modules/.installed
	$(PY) scripts/demo.py

test: setup lint
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed node_modules/.installed
	$(PY) scripts/benchmark.py

# requirements.txt pins what Azure Functions installs: one resolution for every Python the code supports
# (3.10 to 3.12; the deployed 3.12 gets the newest pins), every platform (--universal).
requirements: $(VENV)/.installed
	$(VENV)/bin/uv pip compile requirements.in --universal --python-version 3.10 -o requirements.txt

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .demo .pytest_cache .ruff_cache
