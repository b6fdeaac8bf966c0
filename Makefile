# Two commands: `make run` starts everything, `make test` runs the tests.
# Both create .venv themselves; a fresh machine needs only Python 3.11+, gcc and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUICK ?=

.PHONY: run test bench browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/flask --app webapp run-all

# Debian's Chromium drives the browser tests; never a downloaded browser build.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests will fail (sudo apt-get install chromium)"; fi; }

# One process (-n 0): the soak and the multi-process tests time real retries and are kept off a
# machine busy with other tests; the quick loop (pytest -m "not slow") spreads over the cores.
test: $(VENV)/.installed-test browser-deps
	$(BIN)/python -m pytest -n 0 $(PYTEST_ARGS)

# The fast receiver is Debian's nginx (installed here when root; else an asyncio responder).
bench: $(VENV)/.installed-test
	@test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
	    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null || true; \
	  else echo "nginx missing: the fast receiver falls back to asyncio (sudo apt-get install nginx-light)"; fi; }
	@test $(VENV)/.installed-bench -nt pyproject.toml || { \
	  $(BIN)/python -m pip install --quiet -e '.[test,bench]' && touch $(VENV)/.installed-bench; }
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
