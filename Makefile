# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when it is missing and install recexp into it.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export RECEXP_DATA_DIR ?= $(abspath ../shared/data)
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: install demo test lab lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "recexp needs Python >= 3.11; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/recexp demo

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/python -m ipykernel install --sys-prefix --name recexp --display-name "recexp (.venv)"
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --allow-root

lint: $(STAMP)
	$(BIN)/ruff check recexp tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
