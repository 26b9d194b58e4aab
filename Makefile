# ntk_mlft — the two commands: `make demo` and `make test` (plus `make lint`, run by .ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all lint bench venv clean

demo: $(STAMP)
	$(VENV)/bin/ntk-mlft demo --out results/demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check .

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --out results/benchmarks

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,lint]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) results .pytest_cache build *.egg-info
