"""The operator's constructor only stores: XComArgs, mapped values and Jinja strings parse and run.

Every test runs a real DAG file from ``tests/dags/`` (copied into the session's DAGs folder) with
``dag.test()`` against the sandbox, and checks what the sandbox's ledger charged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_operator import read_output

DAG_FILES = Path(__file__).parent / "dags"
TAG, OTHER = "4242", "4243"


@pytest.fixture
def sb(unifapi_conn, tmp_path, monkeypatch):
    """The sandbox with two hashtags, and the DAG files' output root under ``tmp_path``."""
    unifapi_conn.add_hashtag(TAG, "templating", 430)
    unifapi_conn.add_hashtag(OTHER, "templating2", 120)
    monkeypatch.setenv("UNIFAPI_TEST_OUTPUT", str(tmp_path))
    monkeypatch.setenv("UNIFAPI_TEST_TAG", TAG)
    monkeypatch.setenv("UNIFAPI_TEST_TAGS", f"{TAG},{OTHER}")
    return unifapi_conn


def run_dag_file(dag_runner, name: str, **kwargs):
    target = dag_runner.folder / name
    shutil.copy(DAG_FILES / name, target)
    return dag_runner.run(target, **kwargs)


def videos_paid(sb) -> int:
    return sum(c["credits_charged"] for c in sb.calls("videos"))


def test_xcomargs_as_hashtag_id_and_max_credits(sb, dag_runner, tmp_path):
    result = run_dag_file(dag_runner, "operator_xcomarg.py")
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["hashtag_id"] == TAG
    assert summary["stop_reason"] == "max_credits"
    assert summary["credits_charged"] == 120 == sb.credits_charged()  # the budget from XCom held
    _manifest, records = read_output(tmp_path / "xcomarg")
    assert [r["id"] for r in records] == sb.truth(TAG)[: len(records)]


def test_expand_over_upstream_ids_and_expand_kwargs(sb, dag_runner, tmp_path):
    result = run_dag_file(dag_runner, "operator_mapped.py")
    assert result.state == "success"
    # .expand(hashtag_id=tags()): one mapped task per id, each in its own folder ({{ ti.map_index }})
    for index, tag in enumerate((TAG, OTHER)):
        manifest, records = read_output(tmp_path / "expand" / str(index))
        assert manifest["hashtag_id"] == tag and manifest["stop_reason"] == "max_records"
        assert [r["id"] for r in records] == sb.truth(tag)[:60]
    # .expand_kwargs(jobs()): each dict a task, budgets included (one given as text)
    first, records_a = read_output(tmp_path / "kwargs" / "a")
    assert first["hashtag_id"] == TAG and first["records"] == 30 == len(records_a)
    second, records_b = read_output(tmp_path / "kwargs" / "b")
    assert second["hashtag_id"] == OTHER and second["stop_reason"] == "max_credits"
    assert second["credits_charged"] == 45
    assert [r["id"] for r in records_b] == sb.truth(OTHER)[: len(records_b)]
    manifests = [json.loads(p.read_text()) for p in tmp_path.rglob("_manifest.json")]
    assert len(manifests) == 4
    assert sum(m["credits_charged"] for m in manifests) == sb.credits_charged() == videos_paid(sb)


def test_jinja_strings_render_from_params(sb, dag_runner, tmp_path):
    result = run_dag_file(dag_runner, "operator_jinja.py")
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["hashtag_id"] == TAG and summary["output_format"] == "jsonl"
    assert summary["stop_reason"] == "max_credits"
    assert summary["credits_charged"] == 77 == sb.credits_charged()
    assert all(int(c["limit"]) <= 20 for c in sb.calls("videos"))  # page_size "20" as rendered
    _manifest, records = read_output(tmp_path / "jinja" / TAG)
    assert [r["id"] for r in records] == sb.truth(TAG)[: len(records)]


def test_bad_rendered_values_fail_at_once_naming_the_argument_and_cost_nothing(
    sb, dag_runner, tmp_path, capfd
):
    result = run_dag_file(dag_runner, "operator_bad_input.py", capsys=capfd)
    assert result.state == "failed"
    for task_id in ("bad_jinja_id", "bad_xcom_budget", "bad_gzip_level"):
        assert result.ti_state(task_id) == "failed"
        assert result.tis[task_id].try_number == 1  # AirflowFailException: no retry of bad input
    for argument, got in (("hashtag_id", "'abc'"), ("max_credits", "0"), ("gzip_level", "12")):
        line = next(ln for ln in result.log_text.splitlines() if f"Invalid {argument}: " in ln)
        assert "AirflowFailException" in line and line.endswith(f"got {got}")
    assert sb.calls() == [] and sb.credits_charged() == 0  # nothing was asked, nothing paid
    assert not list(tmp_path.rglob("part-*"))
