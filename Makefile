# `make demo` and `make test` each work alone on a fresh clone: they create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# The lock: exact versions with hashes of the dependencies and the `test` extra, for
# Python 3.11+ (universal). `make lock` regenerates it after a change of pyproject.toml,
# keeping every pin it can; `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest.
LOCK = requirements.lock
UV_VERSION = 0.13.10
LOCK_COMMAND = uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	--generate-hashes --output-file $(LOCK)

.PHONY: install lock demo test lint bench clean

# The venv's own pip, whatever its version (23.2 and newer are tested): every package comes
# pinned and hash-checked from the lock, then Liaison itself, editable, without dependencies.
$(BIN)/liaison: $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/liaison

install: $(BIN)/liaison

# uv in a throwaway venv, at the version the lock was made with.
lock:
	@tools=$$(mktemp -d) && trap 'rm -rf "$$tools"' EXIT && \
	$(PYTHON) -m venv "$$tools" && \
	"$$tools/bin/pip" install --quiet 'uv==$(UV_VERSION)' && \
	echo "$(LOCK_COMMAND) $(LOCK_FLAGS)" && \
	"$$tools/bin/"$(LOCK_COMMAND) --quiet $(LOCK_FLAGS) \
		--custom-compile-command 'make lock  (uv $(UV_VERSION): $(LOCK_COMMAND))'

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
