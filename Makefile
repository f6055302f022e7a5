# vecbackup — make demo | make test | make lint | make bench
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# run a command in a private network namespace (loopback only) with its own /run/milvus:
# milvus-server listens on all interfaces, so tests and benchmarks never run outside one
NETNS = unshare --net --mount --fork sh -c 'ip link set lo up && mkdir -p /run/milvus && mount -t tmpfs tmpfs /run/milvus && exec "$$0" "$$@"'

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

test: $(STAMP)
	$(NETNS) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check vecbackup tests benchmarks examples
	$(BIN)/mypy

bench: $(STAMP)
	$(NETNS) $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-data bench-data
