# Everything runs from a virtual environment at .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dlgrade-installed

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

test: $(STAMP)
	$(PY) -m pytest tests reference

demo: $(STAMP)
	$(VENV)/bin/grade examples/cs1678-hw4 --assignment cs1678-hw4 --out demo-out

bench: $(STAMP)
	$(PY) benchmarks/grade_bench.py --assignment cs1678-hw4 --submission reference/cs1678_hw4

clean:
	rm -rf $(VENV) demo-out bench-out grade-out
