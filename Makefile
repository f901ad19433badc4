# Skyfleet: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test check unit fuzz-long realstack-contract clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## Install and start Skyfleet (SQLite, in-process workers) with a demo fleet of simulated sites.
demo: $(STAMP)
	$(BIN)/skyfleet demo

## Static checks: lint, types, layer contracts.
check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/skyfleet
	$(BIN)/lint-imports

## The whole suite: static checks, then every test tier (PostgreSQL and RabbitMQ on this machine, the
## dashboard in Debian's headless chromium), then the contract suite against real OpenStack sites.
test: check
	bash scripts/ensure-services.sh
	bash scripts/install-browser.sh
	$(BIN)/pytest --durations=25
	bash testbed/realstack/contract.sh

## Fast loop while developing: no real OpenStack sites.
unit: $(STAMP)
	$(BIN)/pytest -x -q

## The long API fuzz run: more than 5,000 generated requests as fleet admin and as tenant (about 4 minutes).
fuzz-long: $(STAMP)
	SKYFLEET_FUZZ_EXAMPLES=50 $(BIN)/pytest tests/fuzz -p no:cacheprovider -s

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
