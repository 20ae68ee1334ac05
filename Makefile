# Two commands: `make run` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint typecheck unit bench clean tools audit

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The whole product on embedded defaults: SQLite, the Auth0 emulator, a mail catcher.
run: install
	$(BIN)/resetrelay demo

lint: install requirements-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The browser tests drive Debian's Chromium; the Action test runs under Node.js 22,
# the version Auth0 runs Actions on (scripts/ensure-node22 puts it in .tools/node22).
tools:
	scripts/ensure-browser
	scripts/ensure-node22

unit: install tools
	$(BIN)/python -m pytest -n 2

# Lint, types, then every test: on SQLite, and on PostgreSQL too when
# TEST_DATABASE_URL is set (.ci/run sets it).
test: lint typecheck unit

# requirements.txt: the runtime pins that Heroku's Python buildpack and the Dockerfile
# install, compiled from pyproject.toml for .python-version, then `.` (the project).
.PHONY: requirements requirements-check
requirements: install
	$(BIN)/uv pip compile pyproject.toml --quiet --universal \
		--python-version "$$(cat .python-version)" \
		--custom-compile-command "make requirements" --output-file requirements.txt
	echo . >> requirements.txt

# Offline: every runtime dependency of pyproject.toml is pinned, and satisfies it.
requirements-check: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_deploy.py -k "requirements or python_version"

# Known vulnerabilities in the pinned runtime set (PyPI's advisory data, from OSV).
# Needs pypi.org's JSON API; CI's network reaches only a package mirror, so CI
# cannot run it: run it before you deploy.
audit: install
	grep -vx '\.' requirements.txt > $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off \
		-r $(VENV)/audit-requirements.txt

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache resetrelay.db*
