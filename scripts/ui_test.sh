#!/usr/bin/env bash
# make ui-test: the unifapi connection in Airflow 3's UI, in a real browser (tests/ui/).
# Installs what it needs (Debian's chromium via apt-get, Playwright for Python from requirements/ui.txt
# into the 3.3 venv), starts the sandbox and Airflow's api-server on 127.0.0.1 with a throw-away
# AIRFLOW_HOME (SQLite, simple auth manager, all admins, [core] test_connection = Enabled), runs the
# Playwright tests (screenshots into docs/img/), and stops both servers.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
started=$(date +%s)

if ! command -v chromium >/dev/null 2>&1; then
  echo "ui-test: installing chromium with apt-get" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
venv=$(bash scripts/bootstrap.sh 3.3)
"$venv/bin/python" -m uv pip install -q -p "$venv/bin/python" -r requirements/ui.txt >&2

work="$(mktemp -d -t unifapi-ui-test.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

export AIRFLOW_HOME="$work/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__CORE__DAGS_FOLDER="$work/dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$AIRFLOW_HOME" "$AIRFLOW__CORE__DAGS_FOLDER"
"$venv/bin/airflow" db migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }

# The sandbox accepts only this run's key, so the test proves the form sent it.
api_key="sk_test_ui_$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
setsid "$venv/bin/python" -m airflow_provider_unifapi.sandbox --port 0 --api-key "$api_key" \
  >"$work/sandbox.out" 2>"$work/sandbox.err" &
pids+=($!)
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "$venv/bin/airflow" api-server --host 127.0.0.1 --port "$port" >"$work/api-server.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do grep -q "listening on" "$work/sandbox.out" && break; sleep 0.1; done
sandbox_url=$(sed -n 's/^UnifAPI sandbox listening on //p' "$work/sandbox.out")
[ -n "$sandbox_url" ] || { echo "ui-test: the sandbox did not start" >&2; cat "$work/sandbox.err" >&2; exit 1; }
airflow_url="http://127.0.0.1:$port"
for i in $(seq 1 180); do
  curl -fsS -o /dev/null "$airflow_url/api/v2/monitor/health" 2>/dev/null && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "ui-test: the api-server exited" >&2; tail -40 "$work/api-server.log" >&2; exit 1; }
  [ "$i" -lt 180 ] || { echo "ui-test: the api-server did not answer in 180 s" >&2; tail -40 "$work/api-server.log" >&2; exit 1; }
  sleep 1
done
echo "ui-test: Airflow $airflow_url, sandbox $sandbox_url (ready after $(( $(date +%s) - started )) s)" >&2

status=0
UNIFAPI_UI_TEST=1 UNIFAPI_UI_AIRFLOW_URL="$airflow_url" UNIFAPI_UI_SANDBOX_URL="$sandbox_url" \
  UNIFAPI_UI_API_KEY="$api_key" UNIFAPI_UI_SCREENSHOTS="$here/docs/img" \
  "$venv/bin/python" -m pytest -p no:cacheprovider -m ui tests/ui "$@" || status=$?
echo "ui-test: $(( $(date +%s) - started )) s in all; screenshots in docs/img/" >&2
exit "$status"
