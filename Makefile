PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint format clean mutants clients clients-python client-configs

EXAMPLE_TOOLS := examples/capgate-example-tools

# setuptools warns on every editable install of a flat layout; the warning is about imports from the checkout,
# which is exactly how capgate is meant to run here.
export PYTHONWARNINGS := ignore:Editable installation

$(STAMP): pyproject.toml $(EXAMPLE_TOOLS)/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: capgate needs Python 3.11 or newer; pick one with make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "capgate needs Python 3.11 or newer, $(PYTHON) is %d.%d; pick another with: make $(MAKECMDGOALS) PYTHON=python3.12" % sys.version_info[:2])'
	@echo "[1/3] creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "[2/3] installing capgate and its dependencies into $(VENV) (about a minute the first time)"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	@echo "[3/3] installing the example tools the tests load through their entry point"
	@$(BIN)/python -m pip install --quiet -e $(EXAMPLE_TOOLS)
	@touch $(STAMP)
	@echo "capgate is installed: $(BIN)/capgate (or run 'source $(BIN)/activate' to call it as capgate)"

serve: $(STAMP)
	$(BIN)/capgate init
	$(BIN)/capgate serve

# Real MCP clients for tests/e2e/test_clients_*.py and the MCP conformance suite for tests/e2e/test_conformance.py,
# cached in .cache/ (idempotent; see install.sh).
clients:
	bash tests/e2e/clients/install.sh

# LangChain's adapters pin mcp 1.x, so their venv is separate; make test needs it for the Python-client tests.
clients-python:
	@bash tests/e2e/clients/install.sh langchain

# Rewrites client-configs/ from server/cli/client_templates/ (a test fails when they differ).
client-configs: $(STAMP)
	$(BIN)/python -m server.cli.client_configs client-configs

# pytest exits 5 when it collects no test: that is not a failure.
# Node-client tests skip when `make clients` has not run; .ci/run installs them and makes them required.
test: $(STAMP) clients-python
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

bench: $(STAMP)
	$(BIN)/python -m bench

# Deliberate breaks of the security rules (mutants/breaks.py), each against its tests: all must be caught.
mutants: $(STAMP)
	$(BIN)/python -m mutants

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict server auth tools

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .cache
