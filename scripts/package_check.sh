#!/usr/bin/env bash
# `make package-check`: build the sdist and wheel, install the wheel into a fresh venv with the
# pinned Airflow 3.3 environment, and check that Airflow lists the provider and that the public
# imports work from the installed wheel (not from this checkout).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$here/scripts/bootstrap.sh" 3.3)"
work="$(mktemp -d -t unifapi-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$here"
"$venv/bin/python" -m uv build -q --out-dir "$work/dist" "$here"
wheel="$(ls "$work"/dist/*.whl)"; sdist="$(ls "$work"/dist/*.tar.gz)"
echo "==> built $(basename "$wheel") and $(basename "$sdist")"
# The sdist carries what the README links to.
tar -tzf "$sdist" > "$work/sdist.txt"
for member in LICENSE CHANGELOG.md README.md docs/ example_dags/; do
  grep -q "^[^/]*/$member" "$work/sdist.txt" || { echo "sdist lacks $member" >&2; exit 1; }
done
"$venv/bin/python" -m uv venv -q -p "$venv/bin/python" "$work/venv"
# Airflow and its pinned dependencies from the lock, then the wheel itself (no editable checkout).
grep -v '^-e ' requirements/airflow-3.3.txt > "$work/pins.txt"
"$venv/bin/python" -m uv pip install -q -p "$work/venv/bin/python" -r "$work/pins.txt"
"$venv/bin/python" -m uv pip install -q -p "$work/venv/bin/python" --no-deps --reinstall "$wheel"
export AIRFLOW_HOME="$work/airflow-home" AIRFLOW__CORE__LOAD_EXAMPLES=False
cd "$work"  # away from the checkout: imports must come from the installed wheel
"$work/venv/bin/airflow" providers get airflow-provider-unifapi -o json > providers.json
"$work/venv/bin/python" - "$here" <<'PY'
import json, sys
from pathlib import Path

info = json.load(open("providers.json"))
info = info[0] if isinstance(info, list) else info
assert info["Provider"] == "airflow-provider-unifapi", info
import airflow_provider_unifapi as pkg
from airflow_provider_unifapi.client import AsyncUnifAPIClient, UnifAPIClient
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor
from airflow_provider_unifapi.triggers.balance import UnifAPIBalanceTrigger

where = Path(pkg.__file__).resolve()
assert Path(sys.argv[1]).resolve() not in where.parents, f"imported from the checkout: {where}"
assert (where.parent / "py.typed").exists(), "py.typed is missing from the wheel"
assert info["Version"] == pkg.__version__, (info["Version"], pkg.__version__)
print(f"==> airflow providers get: {info['Provider']} {info['Version']}; public imports OK from {where.parent}")
PY
