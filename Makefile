# The two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
AIRFLOW ?= 3.3
PYTEST_ARGS ?=

.PHONY: demo test test-all test-2.11 lint package-check bench bench-smoke bench-fleet bench-tracking chaos cluster-test lock clean ui-test

demo:
	@bash scripts/demo.sh

test:
	@venv=$$(bash scripts/bootstrap.sh $(AIRFLOW)) && bash scripts/run_tests.sh "$$venv" $(PYTEST_ARGS)

# ruff (lint and format check), mypy and the module/function size gate; tools pinned in the 3.3 environment; zero findings is the bar.
lint:
	@venv=$$(bash scripts/bootstrap.sh 3.3) && cd $(CURDIR) && "$$venv/bin/ruff" check . && \
	  "$$venv/bin/ruff" format --check . && "$$venv/bin/mypy" && \
	  "$$venv/bin/python" scripts/check_sizes.py

# Build sdist and wheel, install the wheel into a fresh venv with Airflow, `airflow providers get`.
package-check:
	@bash scripts/package_check.sh

# The connection form, Test button and masked key in Airflow 3's UI, in Debian's Chromium driven by
# Playwright (tests/ui/); installs chromium and playwright if missing; screenshots into docs/img/.
ui-test:
	@bash scripts/ui_test.sh

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

# The rate-limit scenario (issue 14): N hashtags, latency L +- jitter, workspace limit R; ours batched
# and mapped, HttpOperator mapped, dlt, and an asyncio ceiling at exactly R/min (benchmarks/fleet/).
bench-fleet:
	@venv=$$(bash scripts/bootstrap.sh bench) && "$$venv/bin/python" -m benchmarks.fleet $(FLEET_ARGS)

# Tracking hashtags day after day (benchmarks/tracking/): the sandbox's timeline feed, D days of N
# hashtags, both entry models; the daily full re-pull and dlt's merge now, tracking contestants later.
# TRACKING_ARGS="--hashtags 5 --days 10" (default 20 x 30; --smoke for seconds); report in the work folder.
bench-tracking:
	@venv=$$(bash scripts/bootstrap.sh bench) && "$$venv/bin/python" -m benchmarks.tracking $(TRACKING_ARGS)

# Seconds-to-minutes check of the harness: tiny sizes, one round, fails on a crash or wrong data.
bench-smoke:
	@venv=$$(bash scripts/bootstrap.sh bench) && "$$venv/bin/python" -m benchmarks.run --smoke

# The reliability suite at full length (RELIABILITY.md): CHAOS_RUNS seeded chaos runs, the full
# operator, kill and concurrency runs, the 1M-record soak, then the fuzzers and security tests with
# FUZZ_MAX_EXAMPLES examples; renders the figures into RELIABILITY.md. ~15 minutes on 2 cores.
chaos:
	@venv=$$(bash scripts/bootstrap.sh $(AIRFLOW)) || exit 1; \
	work=$$(mktemp -d -t unifapi-chaos.XXXXXX); report=$${CHAOS_REPORT:-$$work/report.json}; \
	examples=$${FUZZ_MAX_EXAMPLES:-300}; \
	CHAOS_RUNS=$${CHAOS_RUNS:-40} CHAOS_SOAK=$${CHAOS_SOAK:-1} CHAOS_REPORT="$$report" \
	  bash scripts/run_tests.sh "$$venv" -m chaos tests/chaos --junitxml="$$work/chaos.xml" $(PYTEST_ARGS); chaos=$$?; \
	FUZZ_MAX_EXAMPLES=$$examples bash scripts/run_tests.sh "$$venv" tests/test_fuzz_client.py tests/test_fuzz_inputs.py \
	  tests/test_security.py --junitxml="$$work/fuzz.xml" $(PYTEST_ARGS); fuzz=$$?; \
	if [ -f "$$report" ]; then "$$venv/bin/python" scripts/chaos_report.py "$$report" RELIABILITY.md \
	  --junit "$$work/chaos.xml" --junit "$$work/fuzz.xml" --fuzz-examples $$examples; fi; \
	echo "chaos report: $$report"; exit $$(( chaos || fuzz ))

# A real cluster: CeleryExecutor, Redis broker, two Celery workers, moto S3, the batches example DAG
# over a few hundred sandbox hashtags; one worker SIGKILLed mid-run (tests/cluster/).
# CLUSTER_HASHTAGS sets the size (CI runs a small one); figures into RELIABILITY.md.
cluster-test:
	@bash scripts/cluster_test.sh

# Regenerate the pinned environments (needs network access to PyPI).
lock:
	uv pip compile -q pyproject.toml --extra test --extra openlineage --extra fast --extra lint --extra cluster -c requirements/airflow-3.3.in --python-version 3.11 -o requirements/airflow-3.3.txt
	uv pip compile -q pyproject.toml --extra test --extra openlineage --extra fast -c requirements/airflow-2.11.in --python-version 3.11 -o requirements/airflow-2.11.txt
	uv pip compile -q pyproject.toml --extra test --extra bench --extra openlineage --extra fast -c requirements/airflow-bench.in --python-version 3.11 -o requirements/airflow-bench.txt

# Everything `make demo` and `make test` leave behind: the environments, the demo's Airflow home and
# SQLite DB (.demo/), its output (demo-output/), caches and bytecode.
clean:
	rm -rf .venv .venv-* .pytest_cache .demo demo-output airflow-home
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
