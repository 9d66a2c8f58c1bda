# The two commands of the README: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup system-deps lint typecheck pytest clean

# Two test processes: most of a test's time is spent waiting on git, ssh and servers, so two
# keep two cores busy (`make pytest PYTEST_ARGS=` runs them in one process). The slowest
# cases are listed at the end: the suite must stay well under 15 minutes on 2 cores.
PYTEST_ARGS ?= -n 2 --durations=15

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "repolink needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# Byte-code written once, as a regular install does: an editable install leaves it to the
	@# first run, which never writes it where PYTHONDONTWRITEBYTECODE is set, and every command
	@# then compiles its modules again before it starts (issue 10 §2).
	$(BIN)/python -m compileall -q src >/dev/null
	@touch $@

setup: $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

run: setup
	@bash scripts/run.sh

lint: setup
	$(BIN)/ruff check src tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup system-deps
	@# pytest exits 5 when it collected nothing; that is a failure here, as is any other non-zero.
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
		if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$status

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
