# The only interface to the project. `make serve` and `make test` install what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# The Deps layer's lock: every runtime dependency, transitive ones included, pinned with the sha256 of each
# distribution. The test environment installs it first (hashes checked), so tests run the layer's versions.
LOCK := layers/deps/requirements.txt
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)/local
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help serve test lint format typecheck validate unit integration e2e invoke build deploy bench lock template clean

help:
	@echo "make serve | test | invoke FN=<LogicalId> EVENT=events/<file>.json | build | deploy | bench | lock | template | format | clean"

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(SAM_VENV)/.installed:
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

# `make serve` keeps the local runtime's tables in $(DORA_LOCAL_DATA) across restarts (empty: in memory
# only); `make serve FRESH=1` empties it first (local/dora_local/persistence.py).
DORA_LOCAL_DATA ?= .dora-local
serve: $(VENV)/.installed
	$(BIN)/python -m dora_local $(if $(DORA_LOCAL_DATA),--data '$(DORA_LOCAL_DATA)') $(if $(filter 1 yes true,$(FRESH)),--fresh)

test: lint typecheck validate
	@test -x /usr/bin/chromium || echo "Chromium not found at /usr/bin/chromium: browser tests skipped (apt-get install -y chromium runs them)"
	$(BIN)/python -m pytest -q -n 2 tests

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed
	$(BIN)/mypy
	$(BIN)/mypy tools/fourkeys/compare.py template/generate.py
	$(BIN)/mypy --python-version 3.10 cli/src/dora_insights_cli  # the CI command: 3.10 is the oldest mypy checks

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --template template.yaml

unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/unit

integration: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/integration

e2e: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/e2e

invoke: $(VENV)/.installed
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<LogicalId> EVENT=events/<file>.json"; exit 2; }
	$(BIN)/python -m dora_local.invoke $(FN) $(EVENT)

build: $(SAM_VENV)/.installed
	$(SAM) build --template template.yaml

deploy: build
	$(SAM) deploy --guided

bench: $(VENV)/.installed
	$(BIN)/python -m bench

# Re-resolve the lock from pyproject.toml's runtime pins for the Lambda platform (python3.11, arm64),
# keeping the current transitive pins where they still fit; `make lock UPGRADE=1` takes the newest.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
		--python-platform aarch64-manylinux2014 --custom-compile-command 'make lock' \
		$(if $(UPGRADE),--upgrade) --output-file $(LOCK)

# template.yaml from template/base.yaml (hand-written) and template/functions.yaml (the route table);
# tests/unit/test_template_current.py fails while the committed template.yaml is not current.
template: $(VENV)/.installed
	$(BIN)/python template/generate.py

# The dashboard's third-party browser files (uPlot, Swagger UI) from their npm packages, at the versions
# pinned in tools/vendor.py, into functions/dora_insights/static/vendor/ with their SHA-256 in vendor.json
# (committed: serve and test need no npm; tests/unit/test_app_vendor.py checks the hashes). Needs npm.
.PHONY: vendor
vendor: $(VENV)/.installed
	$(BIN)/python tools/vendor.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis
