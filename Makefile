# vecbackup — make demo | make test | make lint | make bench | make fuzz
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# run a command in a private network namespace (loopback only) with its own /run/milvus:
# milvus-server listens on all interfaces, so tests and benchmarks never run outside one.
# Its local ports (outgoing connections, free ports) start at 54000 there: milvus-server checks its listen ports
# (2379-53100, and the next ones up for a second server) free, then starts the server, and an outgoing connection
# of the other test session took root coord's 53100 in between once (CI, "bind: address already in use")
NETNS = unshare --net --mount --fork sh -c 'ip link set lo up && echo 54000 65535 > /proc/sys/net/ipv4/ip_local_port_range && mkdir -p /run/milvus && mount -t tmpfs tmpfs /run/milvus && exec "$$0" "$$@"'

AZURITE := .tools/node_modules/.bin/azurite-blob

.PHONY: demo test test-serial lint bench bench-scale fuzz install clean docs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Azurite (Microsoft's Azure Storage emulator) for the Azure store tests; 3.35.0 is the last for Node 20
$(AZURITE):
	npm install --silent --no-audit --no-fund --prefix .tools azurite@3.35.0

# nginx, the TLS terminator of the TLS tests (Debian's package; needs root and apt, as .ci/run has)
NGINX := /usr/sbin/nginx
$(NGINX):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

# three pytest sessions at once (scripts/run_tests.py): the Milvus 2.3 server's tests, halved between two servers, and
# the rest (docs/TESTING.md)
test: $(STAMP) $(AZURITE) $(NGINX)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(NETNS) $(BIN)/python -m scripts.run_tests $(PYTEST_ARGS)

# the same tests as one pytest session: about twice the wall time, one stream of output
test-serial: $(STAMP) $(AZURITE) $(NGINX)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(NETNS) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check vecbackup tests benchmarks examples scripts fuzz
	$(BIN)/mypy

bench: $(STAMP) $(AZURITE)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(NETNS) $(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# not in CI: 1,000,000 x 768-d (about 3 GB of vectors) and smaller runs beside their yardsticks (~1 hour)
bench-scale: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(NETNS) $(BIN)/python -m benchmarks.scale $(SCALE_ARGS)

# not in CI: every parser of hostile input under atheris (or hypothesis without it), 5 minutes a target by default;
# summary in fuzz/RESULTS.md, exit 1 on a crash (FUZZ_ARGS="--seconds 60 chunk urls" for fewer or shorter runs)
fuzz: $(STAMP)
	$(BIN)/python -m fuzz.run $(FUZZ_ARGS)

docs: $(STAMP)
	$(BIN)/python -m scripts.gen_cli_docs

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache demo-data bench-data fuzz/.work
