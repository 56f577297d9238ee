# leadml — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := .demo
# uv installs what pip would, in seconds rather than a minute; `make setup UV=` installs with pip
# alone (where only pip's own configuration reaches a package index). Both compile the bytecode
# at install: where PYTHONDONTWRITEBYTECODE is set, as here, every process would otherwise
# compile pandas, scikit-learn and MLflow again (+2.7 s each; the suite starts hundreds).
UV ?= uv
# Every core, one test file per worker at a time: a file's shared fixtures are built once. (Not
# `--dist loadgroup`: under pytest 9.2 it ignores its groups, pytest-xdist issue 1386.)
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast check lint format ui bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ -n "$(UV)" ]; then \
		$(BIN)/python -m pip install --quiet uv && \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]"; \
	else \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -e ".[dev]"; \
	fi
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install leadml with its dev extra (no-op when up to date)

# Past nights the demo scores so its report can compare the model's MQLs with the rules' on
# known outcomes: every third Monday of the model's test window (out of sample).
DEMO_NIGHTS := 2026-01-05 2026-01-26 2026-02-16 2026-03-09 2026-03-30

demo: setup ## Sample history -> validate -> funnel -> train vs rules -> promote -> nightly scores -> report
	rm -rf $(DEMO)
	# The demo's exports live with its store: a new store's version 1 never meets an old one's.
	mkdir -p $(DEMO) && echo "tracking: {export_dir: $(DEMO)/models}" > $(DEMO)/leadml.yaml
	$(BIN)/leadml synth --out $(DEMO)/data --leads 5000 --seed 7
	$(BIN)/leadml validate --data $(DEMO)/data
	$(BIN)/leadml summary --data $(DEMO)/data
	MLFLOW_TRACKING_URI=sqlite:///$(DEMO)/mlflow.db $(BIN)/leadml train --data $(DEMO)/data -c $(DEMO)/leadml.yaml
	MLFLOW_TRACKING_URI=sqlite:///$(DEMO)/mlflow.db $(BIN)/leadml promote -c $(DEMO)/leadml.yaml
	for night in $(DEMO_NIGHTS); do \
		MLFLOW_TRACKING_URI=sqlite:///$(DEMO)/mlflow.db $(BIN)/leadml score --data $(DEMO)/data \
			--as-of $$night --out $(DEMO)/scores --no-track --top 0 -c $(DEMO)/leadml.yaml || exit 1; \
	done
	MLFLOW_TRACKING_URI=sqlite:///$(DEMO)/mlflow.db $(BIN)/leadml score --data $(DEMO)/data \
		--as-of 2026-06-30 --out $(DEMO)/scores -c $(DEMO)/leadml.yaml
	$(BIN)/leadml report --data $(DEMO)/data --scores $(DEMO)/scores --out $(DEMO)/report
	@echo "Open $(DEMO)/report/index.html; the notebooks in notebooks/ read $(DEMO) too."

# leadml's own bytecode, for the same reason as at install (the processes the suite starts).
COMPILE := $(BIN)/python -m compileall -q -j 0 src > /dev/null

test: setup ## Run the whole test suite (unit, property, doctests, notebooks) on every core
	$(COMPILE)
	$(PYTEST)

test-fast: setup ## The suite without its slow end-to-end tests: the edit-test loop
	$(COMPILE)
	$(PYTEST) -m "not slow"

lint: setup ## Check style with ruff
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

check: lint test ## Lint, format check and the whole suite: what CI runs

format: setup ## Reformat the code with ruff
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

ui: setup ## Open the MLflow UI on the local tracking database (DB=.demo/mlflow.db for the demo's)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(or $(DB),mlflow.db)

bench: setup ## Run the speed and memory benchmarks (minutes) and print a table
	$(BIN)/python bench/run.py

clean: ## Remove the virtual environment and generated files
	rm -rf $(VENV) $(DEMO) .pytest_cache
