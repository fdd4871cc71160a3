#!/usr/bin/env bash
# Create (or refresh) a virtual environment with the pinned test environment of one Airflow line.
# Usage: scripts/bootstrap.sh [3.3|2.11|bench]  -> prints the venv path on its last line.
# The pins live in requirements/airflow-<line>.txt because Airflow's constraint files are not
# reachable from every machine; regenerate them with `make lock`.
set -euo pipefail
line="${1:-3.3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
lock="$here/requirements/airflow-$line.txt"
[ -f "$lock" ] || { echo "no lock file $lock (known lines: 3.3, 2.11, bench)" >&2; exit 2; }
venv="$here/.venv"
[ "$line" = "3.3" ] || venv="$here/.venv-$line"
py="${PYTHON:-python3}"
stamp="$venv/.installed-$(sha256sum "$lock" "$here/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" >&2
  # uv installs the ~300 MB Airflow environment about six times faster than pip.
  "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >&2
  "$venv/bin/python" -m uv pip install -q -p "$venv/bin/python" -r "$lock" >&2
  "$venv/bin/python" -m uv pip install -q -p "$venv/bin/python" --no-deps -e "$here" >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
echo "$venv"
