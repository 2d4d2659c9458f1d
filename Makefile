# `make dev` runs the whole system locally; `make test` runs the test tiers. Both install first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONPATH := $(CURDIR)

.PHONY: install dev test test-unit test-contract test-functional test-e2e test-load test-package lint bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

dev: install
	$(BIN)/python -m infra.local.dev

# The tiers that are independent per test (unit, contract, functional: every xdist worker starts its
# own emulator and every test makes its own table) run on TEST_WORKERS processes; then the tiers that
# start whole stacks (e2e, hostile), measure concurrency (load) or build the package run one at a
# time, on a machine the first group has left. Both groups always run; either failing fails the
# target. TEST_WORKERS=0 runs the first group in one process (measurements: docs/benchmarks.md).
TEST_WORKERS ?= 2
PARALLEL_TIERS := tests/unit tests/contract tests/functional
SERIAL_TIERS := tests/e2e tests/hostile tests/load tests/package

test: install
	$(BIN)/pytest -q -n $(TEST_WORKERS) $(PARALLEL_TIERS); parallel=$$?; \
	$(BIN)/pytest -q $(SERIAL_TIERS); serial=$$?; \
	test $$parallel -eq 0 && test $$serial -eq 0

test-unit: install
	$(BIN)/pytest -q tests/unit

test-contract: install
	$(BIN)/pytest -q tests/contract

test-functional: install
	$(BIN)/pytest -q tests/functional

test-e2e: install
	$(BIN)/pytest -q tests/e2e

test-load: install
	$(BIN)/pytest -q tests/load

test-package: install
	$(BIN)/pytest -q tests/package

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared functions
	$(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/python -m bench

# `make package` builds the dev stage; `make package stage=prod` the other one.
package: install
	$(BIN)/python -m infra.package --stage $(or $(stage),dev)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
