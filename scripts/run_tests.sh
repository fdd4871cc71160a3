#!/usr/bin/env bash
# Run pytest inside a bootstrapped venv with an isolated, throw-away Airflow home.
set -euo pipefail
venv="$1"; shift
here="$(cd "$(dirname "$0")/.." && pwd)"
home="$(mktemp -d -t unifapi-airflow-home.XXXXXX)"
trap 'rm -rf "$home"' EXIT
export AIRFLOW_HOME="$home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__CORE__DAGS_FOLDER="$here/tests/dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$home/airflow.db"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
"$venv/bin/python" -c "import airflow, sys; print(f'Airflow {airflow.__version__} on Python {sys.version.split()[0]}')"
"$venv/bin/airflow" db migrate >/dev/null 2>&1 || "$venv/bin/airflow" db migrate
exec "$venv/bin/python" -m pytest "$@"
