# The two commands that must work on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_PATHS := registry tests migrations deploy $(wildcard bench)

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/registry init
	$(BIN)/registry demo
	@echo
	@echo "Registry running at http://127.0.0.1:8000"
	@echo "  clinics (public):      http://127.0.0.1:8000/api/v1/clinics"
	@echo "  API docs:              http://127.0.0.1:8000/docs"
	@echo "  readiness:             http://127.0.0.1:8000/readyz"
	@echo "  surveillance (ministry): http://127.0.0.1:8000/surveillance  (key: keys/demo/clients/demo-ministry-tj.jwk.json)"
	@echo "  demo client keys:      keys/demo/clients/ (see README: getting a token)"
	@echo
	$(BIN)/registry serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy registry

format: install
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
