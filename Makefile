# Two commands on a fresh machine: `make dev` runs the product, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install dev test lint format lock bench-provisioning bench-migrate bench-login bench-tasks bench-events bench-ratelimit bench-flags clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

install: $(STAMP)

dev: install
	$(BIN)/tenantflow dev

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-provisioning: install
	$(BIN)/python -m bench.provisioning.run

bench-migrate: install
	$(BIN)/python -m bench.migrate.run

bench-login: install
	$(BIN)/python -m bench.login.run

bench-tasks: install
	$(BIN)/python -m bench.tasks.run

bench-events: install
	$(BIN)/python -m bench.events.run

bench-ratelimit: install
	$(BIN)/python -m bench.ratelimit.run

bench-flags: install
	$(BIN)/python -m bench.flags.run

lock:
	$(BIN)/python -m pip freeze --exclude-editable --exclude tenantflow > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
