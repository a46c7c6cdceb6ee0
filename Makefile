# `make demo` and `make test` each work alone on a fresh clone: they create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test lint bench clean

$(BIN)/liaison: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/liaison

install: $(BIN)/liaison

demo: install
	$(BIN)/liaison demo

test: install
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff check

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) liaison-data
