# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP_API := $(VENV)/.installed-api
STAMP_DEV := $(VENV)/.installed-dev

NEO4J_LAUNCHER := tools/neo4j-harness/target/neo4j-harness-launcher.jar

.PHONY: run test test-server test-ts lint typecheck pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_API): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[api]"
	touch $@

$(STAMP_DEV): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(STAMP_API)

## Start the service on the embedded tier at http://127.0.0.1:8765 (docs at /docs).
run: $(STAMP_API)
	$(PY) -m ww.api.server

## Lint, type-check and run the whole test suite.
test: $(STAMP_DEV)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest

## Start a test Neo4j (JDK 17 + Maven), run the server-tier suites against it, stop it.
test-server: $(STAMP_DEV) $(NEO4J_LAUNCHER)
	$(PY) -m pytest --server-tier tests/contract/test_record_store.py \
		tests/contract/test_entity_store.py tests/contract/test_skill_store.py \
		tests/contract/test_learning_store.py tests/contract/test_consolidation_store.py \
		tests/contract/test_idempotency_store.py tests/contract/test_control_store.py \
		tests/contract/test_external_ids.py \
		tests/contract/test_vector_index.py tests/contract/test_vector_congruence.py \
		tests/server tests/api

## The TypeScript SDK (clients/typescript, Node 20+): install its dev tools, build it, run its
## tests against a server started from this checkout's venv.
test-ts: $(STAMP_API)
	@command -v node >/dev/null && command -v npm >/dev/null \
		|| { echo "test-ts needs Node.js 20+ and npm on PATH" >&2; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
		|| { echo "test-ts needs Node.js 20+, found $$(node --version)" >&2; exit 1; }
	cd clients/typescript && npm ci --no-audit --no-fund
	cd clients/typescript && WW_TEST_PYTHON="$(abspath $(PY))" npm test

$(NEO4J_LAUNCHER): tools/neo4j-harness/pom.xml $(wildcard tools/neo4j-harness/src/main/java/ww/harness/*.java)
	mvn -B -q -f tools/neo4j-harness/pom.xml package

lint: $(STAMP_DEV)
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

typecheck: $(STAMP_DEV)
	$(PY) -m mypy

pytest: $(STAMP_DEV)
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tools/neo4j-harness/target
