# memex: `make run` starts the explorer and the API on an embedded PostgreSQL; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The CPU build of torch, installed before anything that depends on torch: a plain
# `pip install torch` would take a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
PORT   ?= 8501
API_PORT ?= 8700
# Test processes: each has its own embedded PostgreSQL and runs whole files (module fixtures stay
# whole). Two on this 2-core machine: 14 minutes instead of 17 to 22 run one at a time.
TEST_WORKERS ?= 2

.PHONY: install run test check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[local,explorer,api,openai,test]'
	touch $(STAMP)

install: $(STAMP)

# The API runs beside the explorer and stops with it; make waits for it, so the embedded
# PostgreSQL has stopped too when make returns (the last memex process to exit stops it).
run: install
	$(BIN)/memex migrate
	$(BIN)/memex demo --if-empty
	@echo "memex explorer: http://localhost:$(PORT)"
	@echo "memex API:      http://localhost:$(API_PORT)  (REST under /v1, docs at /docs, MCP at /mcp); a key: $(BIN)/memex keys create --tenant 'Acme Travel' --user alice"
	@$(BIN)/memex serve --port $(API_PORT) & api=$$!; trap "kill $$api 2>/dev/null; wait $$api 2>/dev/null" EXIT INT TERM; \
		$(BIN)/python -m core.explorer.serve --server.port $(PORT) --server.address localhost

# The Schemathesis file runs on its own: its cases share one test id, which pytest-xdist would run once.
test: check
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist loadfile --ignore tests/test_api_fuzz.py
	$(BIN)/python -m pytest tests/test_api_fuzz.py

# Lint, format, types and the layering contracts (pyproject.toml says what each enforces).
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/memex bench --memories 10k --stores 10 --dim 384

clean:
	rm -rf $(VENV) test-output .pytest_cache
