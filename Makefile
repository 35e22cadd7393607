# Two commands for a fresh machine with only Python: `make demo` and `make test`.
# Each creates .venv and installs what it needs on first use; both are safe to run again.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# The services CI provides; `make test` uses them when CI is set (or TEST_DATABASE_URL is given).
CI_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
CI_REDIS_URL    ?= redis://127.0.0.1:6379/15

.PHONY: install demo lint test test-sqlite test-services run migrate bench locales clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot demo

test: lint test-sqlite
ifneq ($(strip $(CI)$(TEST_DATABASE_URL)),)
test: test-services
endif

# Tests run on every core and one more (pytest-xdist): many tests wait on a bot process or a
# clock rather than compute. Each worker has its own database and Redis db.
WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check --quiet .

# SQLite and in-process fallbacks: what a laptop without services runs.
test-sqlite: $(STAMP)
	env -u TEST_DATABASE_URL -u REDIS_URL $(PYTEST)

# PostgreSQL + Redis; fails (never skips) when either is unreachable.
test-services: $(STAMP) test-sqlite
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(CI_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(CI_REDIS_URL)} \
	REQUIRE_SERVICES=1 $(PYTEST)

run: $(STAMP)
	$(BIN)/python -m bot run

migrate: $(STAMP)
	$(BIN)/python -m bot migrate

bench: $(STAMP)
	$(BIN)/python bench/foundation.py
	$(BIN)/python bench/orders_race.py
	$(BIN)/python bench/groupbuy_join_race.py
	$(BIN)/python bench/groupbuy_deadlines.py
	$(BIN)/python bench/workers.py

# Re-extract strings and merge them into both catalogs (then translate what is new).
locales: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -k translate --no-location --sort-output -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) .pytest_cache
