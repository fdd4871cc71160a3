#!/usr/bin/env bash
# make cluster-test: the batches example DAG on a real CeleryExecutor cluster (tests/cluster/).
# Installs Debian's redis-server with apt-get if missing, then runs tests/cluster with the 3.3 venv;
# the test's fixtures start Redis, moto's S3 server, the sandbox and Airflow (api-server,
# dag-processor, scheduler, two Celery workers), all on 127.0.0.1, SIGKILL one worker mid-run, judge
# the run on the sandbox's ledger and truth, and stop everything.
#
#   CLUSTER_HASHTAGS     hashtags in the run (default 300; CI runs 40)
#   CLUSTER_REPORT_MD    1: write the figures into RELIABILITY.md; default 1 for the default size
#                        only, so a smaller run (CI) leaves the file alone
#   CLUSTER_LATENCY_MS, CLUSTER_HASHTAGS_PER_TASK, CLUSTER_TIMEOUT: see tests/cluster/test_cluster_run.py
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
started=$(date +%s)

if ! command -v redis-server >/dev/null 2>&1; then
  echo "cluster-test: installing redis-server with apt-get" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
venv=$(bash scripts/bootstrap.sh 3.3)

report="${CLUSTER_REPORT_MD:-}"
if [ -z "$report" ]; then
  if [ -z "${CLUSTER_HASHTAGS:-}" ]; then report=1; else report=0; fi
fi
report_md=""
[ "$report" = "1" ] && report_md="$here/RELIABILITY.md"

status=0
UNIFAPI_CLUSTER_TEST=1 UNIFAPI_CLUSTER_REPORT_MD="$report_md" \
  UNIFAPI_CLUSTER_REDIS_VERSION="$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')" \
  PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
  "$venv/bin/python" -m pytest -p no:cacheprovider -m cluster tests/cluster -s "$@" || status=$?
[ "$status" -eq 0 ] || report_md=""
echo "cluster-test: $(( $(date +%s) - started )) s in all${report_md:+; figures in RELIABILITY.md}" >&2
exit "$status"
