# Both quick-start commands create .venv and install the project into it first.
PYTHON ?= python3
# the repository, wherever make is run from (`make -f path/to/Makefile demo` works from any folder)
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
VENV ?= $(HERE).venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

# compiles every numba kernel once, in one process, before the test workers start (they would all compile
# the same kernels at once on a clean clone)
WARM ?= $(BIN)/python -m tests.warm

$(STAMP): $(HERE)pyproject.toml $(HERE)constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# constraints.txt: every package at the version this project was tested with
	$(BIN)/python -m pip install --quiet -c $(HERE)constraints.txt -e "$(HERE)[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/evo run $(HERE)examples/default.toml
	$(BIN)/evo report default --out report.html

# three workers on two cores: a third of the suite waits (servers starting, a heartbeat timing out); the
# tests marked long start first, on different workers (tests/conftest.py), so none of them is the tail
test: install
	cd $(HERE) && $(WARM) && $(BIN)/python -m pytest -n 3 --dist worksteal $(PYTEST_ARGS)

# the inner loop: everything but the tests marked slow (subprocesses, Prefect servers, long parity runs)
test-fast: install
	cd $(HERE) && $(WARM) && $(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(HERE)*.egg-info $(HERE).pytest_cache
