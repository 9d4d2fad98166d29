# Two commands on a fresh machine: `make demo` and `make test`. Both create/refresh .venv from pinned versions.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FEAST_VENV := .venv-feast
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export SODA_CORE_TELEMETRY_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint install clean seeds feast-venv

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The Spark pieces (dbt-spark, pyspark, delta-spark, soda-sparkdf) are an optional extra, installed only where Spark
# runs: the test suite (tests/test_spark.py) and `FS_TARGET=spark make demo`. Spark itself needs Java 17.
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $(SPARK_STAMP)

# The demo (demo/, beside the package, not installed with it) runs from the repository's root.
demo: $(STAMP) $(if $(filter spark,$(FS_TARGET)),$(SPARK_STAMP))
	$(BIN)/python -m demo

# The suite also drives Feast 0.67's own client against our push endpoint: its venv is built first (below).
# --no-loadscope-reorder: xdist would start the modules with the most tests first; the order of tests/conftest.py
# (SLOW_FIRST: the longest modules, Spark's first) keeps a 10-minute module from running alone at the end.
test: $(SPARK_STAMP) $(FEAST_VENV)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25 tests

# Feast 0.67's own client, for the push test (tests/test_push.py::test_feast_client_writes_and_reads_back). A venv of its
# own: Feast pins packages that conflict with ours, so it is never a dependency of the project.
feast-venv: $(FEAST_VENV)/.installed
$(FEAST_VENV)/.installed:
	test -x $(FEAST_VENV)/bin/python || $(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet "feast==0.67.0"
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .

seeds: $(STAMP)
	$(BIN)/python seeds/generate.py

clean:
	rm -rf target logs .pytest_cache .hypothesis
