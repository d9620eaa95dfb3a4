# Two commands a new user needs: `make run` and `make test`. Both install first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format proto proto-check test-typescript fuzz-http compose-env bench bench-grpc

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# HTTP on 127.0.0.1:3002, gRPC on 127.0.0.1:50051, a Celery worker with embedded beat: one
# supervisor (balance_project/runall.py) prefixes their output and stops them all on Ctrl-C.
# On PostgreSQL (DATABASE_URL set) the migrations run as the owner role and the service as the
# runtime role (docs/db-roles.md): with MIGRATION_DATABASE_URL set, those are the two URLs; without
# it, DATABASE_URL is a role that may create roles (a local superuser) and `db_roles local` makes
# <database>_owner and <database>_app, their URLs kept in $(DB_ROLES_ENV).
DB_ROLES_ENV ?= $(or $(BALANCE_VAR_DIR),var)/db-roles.env
run: install
ifeq ($(strip $(DATABASE_URL)),)
	$(PY) manage.py migrate --noinput
	exec $(PY) -m balance_project.runall
else
	set -e; if [ -z "$${MIGRATION_DATABASE_URL:-}" ]; then \
	    $(PY) manage.py db_roles local --env-file "$(DB_ROLES_ENV)"; . "$(DB_ROLES_ENV)"; fi; \
	$(PY) manage.py db_roles migrate; \
	exec env -u MIGRATION_DATABASE_URL -u DB_ADMIN_URL $(PY) -m balance_project.runall
endif

# The whole suite on whatever DATABASE_URL / REDIS_URL select (SQLite alone by default), on
# TEST_WORKERS processes (pytest-xdist; each its own test database, var directory and Redis
# database: balance_project/pytest_plugin.py). Narrow it with `make test PYTEST_ARGS="tests/ops -x"`,
# or run it in one process with `make test TEST_WORKERS=0`.
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The checks CI and .pre-commit-config.yaml run: ruff's formatter and linter, then mypy (configured
# in pyproject.toml; generated code excluded). `make format` applies the formatter and the safe fixes.
lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# gRPC code generation. `-Ibalance_client/_pb=proto` maps the proto tree into the package that holds
# the generated modules, so protoc itself writes imports that resolve (balance_client._pb.balance.v1).
# balance_client/_pb holds generated files only: never edit them, run `make proto`.
PROTO_SRC := proto/balance/v1/balance.proto
PB_DIR := balance_client/_pb
PROTOC := $(PY) -m grpc_tools.protoc -I$(PB_DIR)=proto

# The TypeScript client (clients/typescript): its node_modules come from its lock file (npm ci) and
# carry buf and protoc-gen-es, which write its generated code (src/gen, clients/typescript/buf.gen.yaml)
# and check the contract (proto/buf.yaml).
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed
TS_BIN := $(CURDIR)/$(TS_DIR)/node_modules/.bin
BUF := $(TS_BIN)/buf
RELEASED := proto/descriptors/balance.v1.binpb

$(TS_STAMP): $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(TS_STAMP)

proto: install $(TS_STAMP)
	rm -rf $(PB_DIR)
	$(PROTOC) --python_out=. --grpc_python_out=. --pyi_out=. $(PROTO_SRC)
	cd $(TS_DIR) && PATH="$(TS_BIN):$$PATH" $(BUF) generate

# Fails when the committed generated code (Python or TypeScript) differs from a fresh generation,
# when buf lint finds a problem, or when the proto breaks the released contract (buf breaking).
proto-check: install $(TS_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PROTOC) --python_out="$$tmp" --grpc_python_out="$$tmp" --pyi_out="$$tmp" $(PROTO_SRC) && \
	diff -r --exclude=__pycache__ "$$tmp/$(PB_DIR)" $(PB_DIR) && \
	(cd $(TS_DIR) && PATH="$(TS_BIN):$$PATH" $(BUF) generate -o "$$tmp/ts") && \
	diff -r "$$tmp/ts/src/gen" $(TS_DIR)/src/gen && \
	$(BUF) lint proto && \
	$(BUF) breaking proto --against $(RELEASED) && \
	echo "proto-check: generated code current, lint clean, no breaking change against $(RELEASED)"

# The TypeScript client's tests (node --test) against real sidecars on fresh SQLite databases,
# examples/typescript included.
test-typescript: install $(TS_STAMP)
	cd $(TS_DIR) && npm test

# schemathesis over every operation of the OpenAPI schema, every check, a fixed seed, against a
# gunicorn on the embedded default (tests/fuzz/http_schema.py; CI runs it). Any failure fails.
FUZZ_SECONDS ?= 120
fuzz-http: install
	$(PY) tests/fuzz/http_schema.py --max-time $(FUZZ_SECONDS)

# docker/.env with keys of its own for `docker compose` (a configured database refuses public keys).
compose-env:
	test -f docker/.env || $(PYTHON) -c "import secrets; t = lambda: secrets.token_urlsafe(48); \
	print(f'DJANGO_SECRET_KEY={t()}\nLEDGER_HMAC_KEY={t()}\nPOSTGRES_PASSWORD={t()}'); \
	print(f'DB_OWNER_PASSWORD={t()}\nDB_APP_PASSWORD={t()}')" > docker/.env

# The service against PostgreSQL's own ceiling in one run (bench/ceiling.py; figures in bench/README.md):
# pgbench, the gRPC full mix (closed loop, then open loop at half its rate), round trips per call and
# the HTTP rates, each on a fresh database of the local PostgreSQL, with Redis as in production.
BENCH_ARGS ?=
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/11
bench: install
	REDIS_URL=$(BENCH_REDIS_URL) $(PY) bench/ceiling.py $(BENCH_ARGS)

# gRPC load benchmark (unloaded floor, closed and open loop); set DATABASE_URL to a PostgreSQL database.
BENCH_GRPC_ARGS ?= --mix full --processes 2 --sequential 400
bench-grpc: install
	$(PY) bench/grpc_load.py $(BENCH_GRPC_ARGS)
