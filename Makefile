# memex: `make run` starts the explorer on an embedded PostgreSQL; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The CPU build of torch, installed before anything that depends on torch: a plain
# `pip install torch` would take a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
PORT   ?= 8501

.PHONY: install run test check bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[local,explorer,api,openai,test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/memex migrate
	$(BIN)/memex demo --if-empty
	@echo "memex explorer: http://localhost:$(PORT)"
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: check
	$(BIN)/python -m pytest

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
