# Humiao — every target installs what it needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN_STAMP := services/humiao/api/.generated

.DEFAULT_GOAL := help
.PHONY: browser screenshots help install proto demo demo-shuffled demo-workbooks test test-unit test-integration test-faults lint bench up down status clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) $(GEN_STAMP) ## Create the virtual environment, install packages, generate code

$(GEN_STAMP): $(STAMP) $(PROTOS)
	$(PY) -m humiao_dev.tools.genproto
	touch $(GEN_STAMP)

proto: $(STAMP) ## Generate Python code and .pyi stubs from protos/
	$(PY) -m humiao_dev.tools.genproto
	touch $(GEN_STAMP)

demo: install ## The main job: a synthetic city through the real stack, with precision and recall
	$(PY) -m humiao_dev.demo $(DEMO_ARGS)

demo-shuffled: install ## The same city, shuffled with duplicates: must print identical results
	$(PY) -m humiao_dev.demo --shuffled $(DEMO_ARGS)

demo-workbooks: install ## The same city as the .xlsx workbooks a bureau receives, fed from them: same table
	$(PY) -m humiao_dev.demo --from-workbooks $(DEMO_ARGS)

browser: ## Debian's chromium (and a CJK font) for the console's browser tests, when missing
	@test -x "$${HUMIAO_CHROMIUM:-/usr/bin/chromium}" || (apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei) \
	  || { echo "make: the console's browser tests need Debian's chromium: run (as root)"; \
	       echo "  apt-get install chromium fonts-wqy-microhei   (or set HUMIAO_CHROMIUM=/path/to/chromium)"; exit 1; }

screenshots: install browser ## The README's console screenshots, made by the browser test
	HUMIAO_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/console/test_console_live.py -k day

test: install browser ## Run the whole test suite (unit, integration, e2e, faults)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## Only the pure domain tests
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install ## Only tests against the real broker and PostgreSQL
	$(PY) -m pytest tests/integration tests/e2e $(PYTEST_ARGS)

test-faults: install ## Only the fault-injection suite
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check services tests
	$(VENV)/bin/mypy

bench: install ## Throughput, latency and memory against the machine's limit -> bench-results.json
	$(PY) -m humiao_dev.bench $(BENCH_ARGS)

up: install ## Start the local stack in the background (humiao up)
	$(VENV)/bin/humiao up

status: install ## Health of each service and the verifier's lag
	$(VENV)/bin/humiao status

down: install ## Stop the local stack
	$(VENV)/bin/humiao down

clean: ## Remove the virtual environment, generated code and local state
	rm -rf $(VENV) services/humiao/api .humiao
