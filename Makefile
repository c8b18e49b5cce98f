PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint format clean clients clients-python client-configs

EXAMPLE_TOOLS := examples/capgate-example-tools

$(STAMP): pyproject.toml $(EXAMPLE_TOOLS)/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "capgate needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet -e $(EXAMPLE_TOOLS)  # the tests load its tools through the entry point
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/capgate init
	$(BIN)/capgate serve

# Real MCP clients for tests/e2e/test_clients_*.py, cached in .cache/ (idempotent; see install.sh).
clients:
	bash tests/e2e/clients/install.sh

# LangChain's adapters pin mcp 1.x, so their venv is separate; make test needs it for the Python-client tests.
clients-python:
	@bash tests/e2e/clients/install.sh langchain

# Rewrites client-configs/ from server/cli/client_configs.py (a test fails when they differ).
client-configs: $(STAMP)
	$(BIN)/python -m server.cli.client_configs client-configs

# pytest exits 5 when it collects no test: that is not a failure.
# Node-client tests skip when `make clients` has not run; .ci/run installs them and makes them required.
test: $(STAMP) clients-python
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .cache
