#!/usr/bin/env bash
# `make demo`: run the example DAG end to end with `airflow dags test` on a SQLite metadata DB.
#
# Without UNIFAPI_API_KEY it starts the local sandbox (free, offline) and points the
# `unifapi_default` connection at it. With UNIFAPI_API_KEY set it uses the real API at
# https://api.unifapi.com with a small budget (UNIFAPI_MAX_CREDITS, default 200 credits = $0.20) and
# the hashtag in UNIFAPI_HASHTAG_ID (or UNIFAPI_HASHTAG_NAME, default "cats").
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
venv="$(bash scripts/bootstrap.sh 3.3)"
py="$venv/bin/python"

export AIRFLOW_HOME="$here/.demo/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$here/example_dags"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
mkdir -p "$AIRFLOW_HOME"
export UNIFAPI_OUTPUT_BASE="file://$here/demo-output"
logical_date="${UNIFAPI_DEMO_DATE:-$(date -u +%Y-%m-%d)}"

echo "==> Preparing the Airflow metadata database (SQLite, $AIRFLOW_HOME)"
"$venv/bin/airflow" db migrate >/dev/null

sandbox_pid=""
cleanup() { [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null; true; }
trap cleanup EXIT

if [ -n "${UNIFAPI_API_KEY:-}" ]; then
  echo "==> UNIFAPI_API_KEY is set: using the REAL UnifAPI (budget ${UNIFAPI_MAX_CREDITS:-200} credits)"
  export UNIFAPI_MAX_CREDITS="${UNIFAPI_MAX_CREDITS:-200}"
  if [ -z "${UNIFAPI_HASHTAG_ID:-}" ]; then export UNIFAPI_HASHTAG_NAME="${UNIFAPI_HASHTAG_NAME:-cats}"; fi
  export AIRFLOW_CONN_UNIFAPI_DEFAULT="$("$py" -c 'import json, os; print(json.dumps({"conn_type": "unifapi", "host": os.environ.get("UNIFAPI_BASE_URL", "https://api.unifapi.com"), "password": os.environ["UNIFAPI_API_KEY"]}))')"
else
  echo "==> Starting the local UnifAPI sandbox (no key needed, nothing is billed)"
  fifo="$(mktemp -u)"; mkfifo "$fifo"
  "$py" -m airflow_provider_unifapi.sandbox --port 0 >"$fifo" &
  sandbox_pid=$!
  read -r line <"$fifo"; rm -f "$fifo"
  url="${line##* }"
  echo "    $line"
  export AIRFLOW_CONN_UNIFAPI_DEFAULT="{\"conn_type\": \"unifapi\", \"host\": \"$url\", \"password\": \"sk_sandbox_demo_key\"}"
fi

echo "==> Running the example DAG: airflow dags test example_unifapi_hashtag_videos $logical_date"
log="$AIRFLOW_HOME/demo-run.log"
if ! "$venv/bin/airflow" dags test example_unifapi_hashtag_videos "$logical_date" >"$log" 2>&1; then
  tail -n 40 "$log"; echo "The demo run failed; full log: $log" >&2; exit 1
fi
# Last page lines, the final summary line and the downstream task's top videos, without log decorations.
grep -E "balance reading|Remembered balance|Collecting hashtag|page [0-9,]+:|Done with hashtag|reused the finished folder|^ ?[0-9]+\. |videos of hashtag" "$log" \
  | sed -E 's/^[0-9T:.Z-]+ \[[a-z ]+\] //; s/ +\[[a-zA-Z0-9_.]+\] loc=.*$//' | tail -n 16 || true
reused=0; grep -q "reused the finished folder" "$log" && reused=1
"$py" - "$logical_date" "$reused" "${url:-}" <<'PY'
import glob, json, os, sys, urllib.request
date, reused, sandbox_url = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
base = os.environ["UNIFAPI_OUTPUT_BASE"].removeprefix("file://")
manifests = sorted(glob.glob(f"{base}/*/ds={date}/_manifest.json"))
if not manifests:
    sys.exit("no _manifest.json was written: the run did not complete")
m = json.load(open(manifests[-1]))
def usd(credits):
    whole, rest = divmod(credits, 1000)
    rest = f"{rest:03d}"
    return f"${whole:,}.{rest[:2] if rest.endswith('0') else rest}"
spent = m["credits_charged"] + m.get("possibly_billed_credits", 0)
print(f"==> Output: {os.path.dirname(manifests[-1])}")
for part in m["parts"]:
    print(f"    {part['name']}: {part['records']} records")
if reused:
    print(f"==> Reused the folder of an earlier run (it has _manifest.json): 0 credits ($0.00) spent on "
          f"records this time; it holds {m['records']} records that cost {spent} credits ({usd(spent)}) "
          "when fetched. Delete it (or make clean) to fetch again.")
else:
    print(f"==> Summary: {m['records']} records in {m['pages']} pages, {spent} credits spent ({usd(spent)}): "
          f"{m['credits_charged']} charged + {m.get('possibly_billed_credits', 0)} possibly billed; stop reason "
          f"{m['stop_reason']}, balance left {m['balance_remaining']}, {m['duplicates_dropped']} duplicates dropped")
if sandbox_url:  # the sandbox's own ledger: every call this demo made, the balance check included
    with urllib.request.urlopen(f"{sandbox_url}/_sandbox/ledger") as answer:
        total = json.load(answer)["totals"]["credits_charged"]
    print(f"==> The sandbox billed {total} credits ({usd(total)}) for this demo run, balance checks included")
PY
[ -n "$sandbox_pid" ] && echo "==> Stopping the sandbox"
