# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-fast check wheels bench bench-budget bench-notify bench-idle bench-upstream bench-validation bench-replicas bench-keyed browser clean
KEYSTONE_VENV := .venv-keystone
TEMPEST_VENV := .venv-tempest
FUNCTIONAL_VENV := .venv-zaqar-functional
CONFORMANCE := tests/conformance

# SQLAlchemy's pure-Python wheel, named by path in requirements.txt: the Lambda package and the
# virtualenv both install it (chalice would otherwise pick the compiled wheel, 3x its size)
SQLALCHEMY_WHEEL := wheels/sqlalchemy-2.1.9-py3-none-any.whl
$(SQLALCHEMY_WHEEL):
	$(PYTHON) -m pip download --disable-pip-version-check --no-deps --only-binary :all: --platform any \
	  --implementation py --abi none --python-version 3.11 -d wheels sqlalchemy==2.1.9

## wheels: the wheels requirements.txt names by path
wheels: $(SQLALCHEMY_WHEEL)

# pip prints each package as it goes (no --quiet): the first install takes a few minutes
$(STAMP): requirements.txt requirements-dev.txt $(SQLALCHEMY_WHEEL)
	@echo "==> Installing the pinned packages of requirements-dev.txt into $(VENV) (first time only: about 4 minutes; pip lists each package below)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

## run: the service on 127.0.0.1:8888 with an embedded Redis and a SQLite catalog
run: $(STAMP)
	$(BIN)/python -m infra.local

## test: lint, type checks and every test (starts the services the tests need)
test: check browser $(KEYSTONE_VENV)/.installed $(TEMPEST_VENV)/.installed $(FUNCTIONAL_VENV)/.installed
	bash infra/local/ensure-services.sh
	$(BIN)/python -m pytest

## browser: Debian's Chromium for the web console's browser tests (apt-get, when missing; about a minute)
CHROMIUM_BIN := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM_BIN) || { \
	  echo "==> Installing Debian's chromium and chromium-driver for the console's browser tests (first time only: about a minute)"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$sudo apt-get install -y --no-install-recommends chromium chromium-driver \
	    || { $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium chromium-driver; } \
	    || echo "warning: Chromium could not be installed: the browser tests skip (under CI they fail)"; }

## test-fast: lint, type checks and the in-process tests (unit, contract, functional: about 4.5 minutes)
test-fast: check
	bash infra/local/ensure-services.sh
	$(BIN)/python -m pytest tests/unit tests/contract tests/functional

check: $(STAMP)
	$(BIN)/ruff check app.py chalicelib infra tests bench
	$(BIN)/mypy

## bench: start the local stack against $$BENCH_REDIS_URL (or an embedded Redis) and measure
bench: $(STAMP)
	$(BIN)/python -m bench.run

## bench-notify: post-to-delivery latency of webhook notifications in the local stack
bench-notify: $(STAMP)
	$(BIN)/python -m bench.notify_latency

## bench-idle: CPU the local stack's processes use per second while idle (make bench-idle ARGS="--messages 20000")
bench-idle: $(STAMP)
	$(BIN)/python -m bench.idle $(ARGS)

## bench-validation: what checking a post against its JSON Schema costs, jsonschema against fastjsonschema
bench-validation: $(STAMP)
	$(BIN)/python -m bench.validation

## bench-replicas: what wait_replicas=1 costs a post (a primary and a replica from redis-server)
bench-replicas: $(STAMP)
	$(BIN)/python -m bench.replicas $(ARGS)

## bench-keyed: what an Idempotency-Key costs a post (plain, keyed, repeated; Redis from redis-server)
bench-keyed: $(STAMP)
	$(BIN)/python -m bench.keyed $(ARGS)

## bench-budget: deployment package size and cold-start import time
bench-budget: $(STAMP)
	$(BIN)/python -m bench.budget

## bench-upstream: the same benchmark, also run against upstream Zaqar 23.0.1 under uWSGI (4 processes)
UPSTREAM := .venv-upstream
$(UPSTREAM)/.installed:
	@echo "==> Installing upstream Zaqar 23.0.1 and uWSGI into $(UPSTREAM) (first time only: a few minutes)"
	test -x $(UPSTREAM)/bin/python || $(PYTHON) -m venv $(UPSTREAM)
	$(UPSTREAM)/bin/python -m pip install --quiet --disable-pip-version-check zaqar==23.0.1 pyuwsgi==2.0.30.post1 redis==8.1.0
	touch $@

bench-upstream: $(STAMP) $(UPSTREAM)/.installed
	$(BIN)/python -m bench.run --upstream $(UPSTREAM) $(ARGS)

clean:
	rm -rf $(VENV) $(UPSTREAM) $(KEYSTONE_VENV) $(TEMPEST_VENV) $(FUNCTIONAL_VENV) .local .mypy_cache .ruff_cache .pytest_cache

## the real Keystone the identity tests start (its own virtualenv: keystone pins its own dependencies)
$(KEYSTONE_VENV)/.installed:
	@echo "==> Installing Keystone into $(KEYSTONE_VENV) for the identity tests (first time only: a few minutes)"
	test -x $(KEYSTONE_VENV)/bin/python || $(PYTHON) -m venv $(KEYSTONE_VENV)
	$(KEYSTONE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check keystone==30.0.0 gunicorn==27.0.1
	touch $@

## upstream's own suites, run by tests/conformance against the local stack (each in its own virtualenv, every version pinned)
$(TEMPEST_VENV)/.installed: $(CONFORMANCE)/requirements-tempest.txt
	@echo "==> Installing tempest and zaqar-tempest-plugin into $(TEMPEST_VENV) (first time only: a few minutes)"
	test -x $(TEMPEST_VENV)/bin/python || $(PYTHON) -m venv $(TEMPEST_VENV)
	$(TEMPEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(CONFORMANCE)/requirements-tempest.txt
	touch $@

$(FUNCTIONAL_VENV)/.installed: $(CONFORMANCE)/requirements-zaqar-functional.txt
	@echo "==> Installing upstream Zaqar's functional tests into $(FUNCTIONAL_VENV) (first time only: a few minutes)"
	test -x $(FUNCTIONAL_VENV)/bin/python || $(PYTHON) -m venv $(FUNCTIONAL_VENV)
	$(FUNCTIONAL_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(CONFORMANCE)/requirements-zaqar-functional.txt
	touch $@
