# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,spark
OUT ?= demo-output
PEOPLE ?= 20000
# pytest-xdist workers for `make test` (auto: one per core)
TEST_WORKERS ?= auto

.PHONY: venv demo test lint typecheck unit bench lock clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Installs revloop (editable) with the versions tested together (constraints.txt).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/activate
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/revloop demo --people $(PEOPLE) --out $(OUT)

lint: venv
	$(BIN)/ruff check src tests benches
	$(BIN)/ruff format --check src tests benches

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

test: lint typecheck unit

bench: venv
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python benches/bench_rule_based.py

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install -q --upgrade "pip>=24"
	.lockenv/bin/python -m pip install -q -e ".[dev,spark,bench]"
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(OUT)
