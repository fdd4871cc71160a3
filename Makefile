# The two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
AIRFLOW ?= 3.3
PYTEST_ARGS ?=

.PHONY: demo test test-all test-2.11 bench bench-smoke chaos lock clean

demo:
	@bash scripts/demo.sh

test:
	@venv=$$(bash scripts/bootstrap.sh $(AIRFLOW)) && bash scripts/run_tests.sh "$$venv" $(PYTEST_ARGS)

test-2.11:
	@$(MAKE) --no-print-directory test AIRFLOW=2.11

# What CI runs: the suite on the newest Airflow 3 and on Airflow 2.11.
test-all:
	@$(MAKE) --no-print-directory test AIRFLOW=3.3
	@$(MAKE) --no-print-directory test AIRFLOW=2.11

# Benchmarks (benchmarks/README.md): regenerates BENCHMARKS.md and benchmarks/chart.png.
# BENCH_ARGS="--sizes 10000,100000 --latency 0,50 --runs 5" picks the matrix; the default is the full one.
bench:
	@venv=$$(bash scripts/bootstrap.sh bench) && "$$venv/bin/python" -m benchmarks.run $(BENCH_ARGS)

# Seconds-to-minutes check of the harness: tiny sizes, one round, fails on a crash or wrong data.
bench-smoke:
	@venv=$$(bash scripts/bootstrap.sh bench) && "$$venv/bin/python" -m benchmarks.run --smoke

chaos:
	@venv=$$(bash scripts/bootstrap.sh $(AIRFLOW)) && CHAOS_RUNS=$${CHAOS_RUNS:-40} bash scripts/run_tests.sh "$$venv" -m chaos tests/chaos

# Regenerate the pinned environments (needs network access to PyPI).
lock:
	uv pip compile -q pyproject.toml --extra test --extra openlineage -c requirements/airflow-3.3.in --python-version 3.11 -o requirements/airflow-3.3.txt
	uv pip compile -q pyproject.toml --extra test --extra openlineage -c requirements/airflow-2.11.in --python-version 3.11 -o requirements/airflow-2.11.txt

clean:
	rm -rf .venv .venv-* .pytest_cache demo-output airflow-home
