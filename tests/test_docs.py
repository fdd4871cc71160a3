"""Every code block of README.md and docs/*.md is run or parsed, so the docs cannot rot.

By the block's language:

* ``python``: compiled. In docs/, a marker on the line before the fence says what else happens:
  ``<!-- docs-test: run -->`` executes it against the sandbox (``unifapi_default`` points there;
  ``requires=mod1,mod2`` only compiles it when a module is not installed; ``uses=NAME`` runs the
  page's block marked ``name=NAME`` first, in the same namespace), ``dag`` loads it as a
  DAG file, ``dag-run`` also runs the DAG with ``dag.test()``, ``compile`` only compiles (a fragment
  of a larger file). README blocks carry no marker: they are executed with the public imports and
  an ``api_key`` in scope, with ``https://api.unifapi.com`` pointing at the sandbox.
* ``bash``: ``bash -n``. ``sql``: not empty (DuckDB is not a dependency). ``json``: ``json.loads``;
  marked ``<!-- docs-test: manifest dag=NAME file=PATH -->`` (options as for ``log`` below) it must
  also equal the file ``PATH`` of that run's folder (``/tmp/unifapi-demo`` in the DAG), but for
  timestamps, request ids and compressed sizes.
* ``text``: output and pseudo-code, not checked, unless marked ``<!-- docs-test: log dag=NAME -->``
  (README included): then it is a sample of a real log, checked against the log of running the
  DAG block named ``NAME`` (any page) on the sandbox, on ``day=`` (default 2024-06-01), into an
  empty folder. ``run=N`` checks the N-th run of it into the same folder (the runs before it
  without conf), ``conf=KEY:VALUE`` gives that run a conf (``airflow dags test -c``). Every line of
  the sample but ``...`` must be a message of that log, in the same order (``order=any``: in any
  order, for a batch's concurrent chains, whose balances are then not compared); request ids,
  timestamps, records per second and the folder's real path may differ. Any other language, or
  none, fails.

In executed blocks, ``/tmp/unifapi-demo`` (the docs' output folder) is replaced by a temporary
folder holding complete runs of the sandbox's hashtags 5050 (``jsonl.gz``) and 4242 (``parquet``)
for ``ds=2024-06-01``, and an unfinished run of 77001; in DAG files, by an empty one.

Links: docs/index.md and README.md link every page of docs/, and every relative link or image of
the docs points to an existing file (and heading; the screenshots are in docs/img/).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, FAST_RETRY_EXTRAS, REPO

DOCS = REPO / "docs"
README = REPO / "README.md"
FILES = [README, *sorted(DOCS.glob("*.md"))]
LANGUAGES = {"python", "bash", "json", "sql", "text"}
PYTHON_MODES = {"run", "dag", "dag-run", "compile"}
DEMO_FOLDER = "/tmp/unifapi-demo"
SANDBOX_BASE_URL = "https://api.unifapi.com"

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<mode>[\w-]+)(?P<options>[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text (dedented) and its marker."""

    path: Path
    line: int
    lang: str
    code: str
    mode: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def __str__(self) -> str:  # pytest ids
        return f"{self.name}-{self.lang or 'none'}" + (f"-{self.mode}" if self.mode else "")


def _marker(lines: list[str], fence_index: int) -> tuple[str | None, dict[str, str]]:
    before = fence_index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    match = _MARKER.match(lines[before]) if before >= 0 else None
    if match is None:
        return None, {}
    options = dict(item.split("=", 1) for item in match["options"].split() if "=" in item)
    return match["mode"], options


def extract_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (indented ones in lists included)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence, info = len(match["indent"]), match["fence"], match["info"].strip()
        body: list[str] = []
        end = i + 1
        while end < len(lines):
            stripped = lines[end].strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
            end += 1
        else:
            raise AssertionError(f"{path.relative_to(REPO)}:{i + 1}: code block never closed")
        mode, options = _marker(lines, i)
        lang = info.split()[0] if info else ""
        blocks.append(Block(path, i + 1, lang, "\n".join(body) + "\n", mode, options))
        i = end + 1
    return blocks


BLOCKS = [block for path in FILES for block in extract_blocks(path)]


def test_every_file_has_blocks_and_the_guide_exists():
    assert (DOCS / "index.md").exists()
    by_file = {path: [b for b in BLOCKS if b.path == path] for path in FILES}
    assert all(by_file[path] for path in FILES if path.name not in ("index.md",)), {
        str(p.relative_to(REPO)): len(b) for p, b in by_file.items()
    }


# -- one test per block ----------------------------------------------------------------------------
@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_code_block(block: Block, request: pytest.FixtureRequest) -> None:
    if block.lang not in LANGUAGES:
        pytest.fail(
            f"{block.name}: code block language {block.lang!r} is not checked; use one of "
            f"{sorted(LANGUAGES)} (```text for output and pseudo-code)"
        )
    check = {
        "python": _check_python,
        "bash": _check_bash,
        "json": _check_json,
        "sql": _check_sql,
        "text": _check_text,
    }[block.lang]
    check(block, request)


def _check_bash(block: Block, request: pytest.FixtureRequest) -> None:
    result = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True, check=False)
    assert result.returncode == 0, f"{block.name}: bash -n: {result.stderr}"


def _check_json(block: Block, request: pytest.FixtureRequest) -> None:
    try:
        shown = json.loads(block.code)
    except ValueError as exc:
        pytest.fail(f"{block.name}: not JSON: {exc}")
    if block.mode is None:
        return
    assert block.mode == "manifest" and "file" in block.options, (
        f"{block.name}: a JSON block is marked `manifest dag=NAME file=PATH` (a real file's copy) or not at all"
    )
    folder = _real_run(block, request).folder
    real = json.dumps(json.loads((folder / block.options["file"]).read_text()), indent=1, sort_keys=True)

    def comparable(text: str) -> str:
        # the same keys and values, but for timestamps, request ids and compressed sizes (zlib or isal)
        return re.sub(r'"bytes": \d+', '"bytes": N', _normalize(text, False))

    assert comparable(json.dumps(shown, indent=1, sort_keys=True)) == comparable(
        real.replace(str(folder), DEMO_FOLDER)
    ), f"{block.name}: not the real {block.options['file']}"


def _check_sql(block: Block, request: pytest.FixtureRequest) -> None:
    statements = "\n".join(line.split("--", 1)[0] for line in block.code.splitlines()).strip()
    assert statements, f"{block.name}: empty SQL block"
    assert statements.count("(") == statements.count(")"), f"{block.name}: unbalanced parentheses"
    assert statements.count("'") % 2 == 0, f"{block.name}: unbalanced quotes"


def _check_python(block: Block, request: pytest.FixtureRequest) -> None:
    code = compile(block.code, block.name, "exec")  # a syntax error fails here, whatever the mode
    if block.path == README:
        assert block.mode is None, f"{block.name}: README blocks carry no marker"
        _run_readme_block(block, request)
        return
    assert block.mode in PYTHON_MODES, (
        f"{block.name}: mark the block with <!-- docs-test: MODE --> on the line before the fence, "
        f"MODE one of {sorted(PYTHON_MODES)}"
    )
    if block.mode == "compile":
        assert code is not None
        return
    # A block whose library is not installed here (DuckDB, pandas, Spark) is marked `compile`:
    # it is compiled above and never skipped.
    missing = [name for name in block.options.get("requires", "").split(",") if name and not _installed(name)]
    assert not missing, f"{block.name}: {', '.join(missing)} not installed here; mark the block `compile`"
    request.getfixturevalue("unifapi_conn")
    lake = request.getfixturevalue("tmp_path") / "unifapi-demo"
    if block.mode == "run" and any(DEMO_FOLDER in b.code for b in [block, *_used_blocks(block)]):
        lake = _demo_lake(request)
    source = block.code.replace(DEMO_FOLDER, str(lake))
    if block.mode == "run":
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))
        namespace: dict[str, Any] = {"__name__": "__docs__"}
        for used in _used_blocks(block):  # blocks it builds on (uses=NAME), run first
            exec(compile(used.code.replace(DEMO_FOLDER, str(lake)), used.name, "exec"), namespace)
        exec(compile(source, block.name, "exec"), namespace)
        return
    target, _ = _write_dag(block, source, request)
    if block.mode == "dag-run":
        result = request.getfixturevalue("dag_runner").run(target)
        assert result.state == "success", f"{block.name}: the DAG run ended {result.state}"
        # a run's summary, or a batch's manifest (its totals)
        summaries = [
            x.get("totals", x)
            for x in result.xcoms.values()
            if isinstance(x, dict) and ("stop_reason" in x or "totals" in x)
        ]
        assert summaries and all(s["records"] > 0 for s in summaries), result.xcoms


def _write_dag(block: Block, source: str, request: pytest.FixtureRequest) -> tuple[Path, list[Any]]:
    """Write a DAG block into the DAGs folder (one file per block) and load it; its DAGs."""
    stem = re.sub(r"\W", "_", f"docs_{block.path.stem}_{block.line}")
    target = Path(request.getfixturevalue("dag_runner").folder) / f"{stem}.py"
    target.write_text(source)
    module = _import(target, stem)
    dags = [v for v in vars(module).values() if type(v).__name__ in ("DAG", "SerializedDAG")]
    assert dags and all(d.task_ids for d in dags), f"{block.name}: no DAG with tasks"
    return target, dags


def _used_blocks(block: Block) -> list[Block]:
    """The blocks of the same page named (``name=NAME``) by the block's ``uses=NAME,...``."""
    used = []
    for name in filter(None, block.options.get("uses", "").split(",")):
        found = [b for b in BLOCKS if b.path == block.path and b.options.get("name") == name]
        assert len(found) == 1, f"{block.name}: uses={name} names {len(found)} blocks of the page"
        used.append(found[0])
    return used


def _run_readme_block(block: Block, request: pytest.FixtureRequest) -> None:
    sandbox = request.getfixturevalue("unifapi_conn")
    namespace: dict[str, Any] = {"__name__": "__docs__", "api_key": API_KEY}
    exec(
        "from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook\n"
        "from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator\n"
        "from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor\n"
        "from airflow_provider_unifapi.triggers.balance import UnifAPIBalanceTrigger\n"
        "from airflow_provider_unifapi.client import UnifAPIClient, AsyncUnifAPIClient\n",
        namespace,
    )
    source = block.code.replace(SANDBOX_BASE_URL, sandbox.url)
    exec(compile(source, block.name, "exec"), namespace)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _import(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _demo_lake(request: pytest.FixtureRequest) -> Path:
    """A temporary ``/tmp/unifapi-demo``: complete runs of 5050 (jsonl.gz) and 4242 (parquet), an
    unfinished one of 77001, all for ``ds=2024-06-01``, fetched from the sandbox."""
    from upath import UPath

    from airflow_provider_unifapi.client import UnifAPIClient
    from airflow_provider_unifapi.collector import HashtagVideoCollector, ObjectStorageOutput
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    sandbox = request.getfixturevalue("unifapi_conn")
    base = request.getfixturevalue("tmp_path") / "unifapi-demo"

    class Interrupted(Exception):
        pass

    def interrupt(page: Any, checkpoint: Any) -> None:
        if checkpoint.pages >= 3:
            raise Interrupted

    with UnifAPIClient(API_KEY, sandbox.url, **FAST_RETRY_EXTRAS) as client:
        for hashtag_id, output_format, complete in (
            ("5050", "jsonl.gz", True),
            ("4242", "parquet", True),
            ("77001", "jsonl.gz", False),
        ):
            folder = base / f"hashtag={hashtag_id}" / "ds=2024-06-01"
            url = f"file://{folder}/"
            output = ObjectStorageOutput(RunFolder(UPath(url), output_format), url=url)
            collector = HashtagVideoCollector(
                client, hashtag_id, output=output, on_page=None if complete else interrupt
            )
            with contextlib.suppress(Interrupted):
                collector.run()
            assert (folder / "_manifest.json").exists() == complete
    return base


# -- log samples -----------------------------------------------------------------------------------
LOG_DAY = "2024-06-01"


@dataclass(frozen=True)
class RealRun:
    """The last of a docs DAG's runs: its log's messages and the folder it wrote to."""

    messages: list[str]
    folder: Path


#: the runs already made, by (DAG block, day, conf of each run): several samples share one
_RUNS: dict[tuple[str, str, tuple[str | None, ...]], RealRun] = {}
#: seconds added to the day of each run: a DAG run per logical date (2.11), all on the same day
_LOG_SECONDS = itertools.count(1)
#: Airflow's decoration of a log line, around the message (Airflow 3's console, Airflow 2's format)
_DECORATIONS = (
    re.compile(r"^\d{4}-\d\d-\d\dT\S+ \[\w+ *\] (?P<message>.*?)(?: +\[[\w.]+\](?: loc=\S+)?)?$"),
    re.compile(r"^\[[^\]]+\] \{[^}]+\} [A-Z]+ - (?P<message>.*)$"),
)
#: what differs from run to run: request ids, timestamps, speeds, the pacer's waits, a writer's pid
_VOLATILE = (
    (re.compile(r"unif_[0-9a-f\u2026]+"), "unif_\u2026"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:[\d.]+(?:[+-]\d\d:\d\d|Z)?"), "TIME"),
    (re.compile(r"[\d,]+ rec/s"), "N rec/s"),
    (re.compile(r"seen \d+s ago"), "seen Ns ago"),
    (re.compile(r"waited [\d.]+ s over \d+ requests"), "waited N s over N requests"),
    (re.compile(r"pid \d+ on [^,]+,"), "pid N on HOST,"),
)
#: concurrent chains report the balance in any order
_CONCURRENT = ((re.compile(r"balance [\d,]+"), "balance N"),)


def _check_text(block: Block, request: pytest.FixtureRequest) -> None:
    if block.mode is None:
        return  # output and pseudo-code, not checked
    assert block.mode == "log", (
        f"{block.name}: a text block is marked `log` (a real log's sample) or not at all"
    )
    assert "dag" in block.options, f"{block.name}: name the DAG block the log comes from: log dag=NAME"
    _assert_sample(
        block.name,
        block.code,
        _real_run(block, request).messages,
        any_order=block.options.get("order") == "any",
    )


def _assert_sample(name: str, sample: str, messages: list[str], *, any_order: bool = False) -> None:
    """Every line of ``sample`` but ``...`` is one of ``messages`` (in order unless ``any_order``)."""
    wanted = [line.strip() for line in sample.splitlines() if line.strip() not in ("", "...")]
    assert wanted, f"{name}: the log sample is empty"
    real = [_normalize(message, any_order) for message in messages]
    at = 0
    for line in wanted:
        try:
            at = real.index(_normalize(line, any_order), 0 if any_order else at) + 1
        except ValueError:
            ours = [m for m in real if m and not m.startswith(("Task instance", "Marking", "Filling up"))]
            pytest.fail(
                f"{name}: the sample's line\n    {line}\nis not "
                + ("in the real log" if any_order else "in the real log after the sample's lines before it")
                + ", whose messages are (normalized):\n    "
                + "\n    ".join(ours[-150:])
            )


def _normalize(message: str, any_order: bool) -> str:
    for pattern, replacement in _VOLATILE + (_CONCURRENT if any_order else ()):
        message = pattern.sub(replacement, message)
    return message.strip()


def _message(line: str) -> str:
    """A log line's message, without Airflow's timestamp, level, logger and source location."""
    for decoration in _DECORATIONS:
        match = decoration.match(line)
        if match:
            return match["message"]
    return line


def _real_run(block: Block, request: pytest.FixtureRequest) -> RealRun:
    """The run a sample comes from (made once, shared by the samples of the same run)."""
    found = [b for b in BLOCKS if b.options.get("name") == block.options["dag"]]
    assert len(found) == 1, f"{block.name}: dag={block.options['dag']} names {len(found)} blocks"
    dag_block = found[0]
    assert dag_block.mode in ("dag", "dag-run"), f"{block.name}: {dag_block.name} is not a DAG block"
    run = int(block.options.get("run", "1"))
    confs = (None,) * (run - 1) + (block.options.get("conf"),)
    key = (dag_block.name, block.options.get("day", LOG_DAY), confs)
    if key not in _RUNS:
        _RUNS[key] = _run_for_log(dag_block, key[1], confs, request)
    return _RUNS[key]


def _run_for_log(
    dag_block: Block, day: str, confs: tuple[str | None, ...], request: pytest.FixtureRequest
) -> RealRun:
    """Run a docs DAG ``len(confs)`` times on ``day`` into one empty folder (in place of
    ``/tmp/unifapi-demo``), on a fresh sandbox workspace; the last run's log messages (the folder
    shown as ``/tmp/unifapi-demo``) and the folder."""
    import pendulum

    from airflow_provider_unifapi._compat import AIRFLOW_V_3

    request.getfixturevalue("unifapi_conn")  # a fresh workspace: 1,000,000 credits
    capfd = request.getfixturevalue("capfd")
    lake = request.getfixturevalue("tmp_path") / f"run-{len(_RUNS)}"
    _, dags = _write_dag(dag_block, dag_block.code.replace(DEMO_FOLDER, str(lake)), request)
    text = ""
    for conf in confs:
        run_conf = None
        if conf is not None:
            key, _, value = conf.partition(":")
            run_conf = {key: int(value) if value.isdigit() else value}
        when = pendulum.parse(day).add(seconds=next(_LOG_SECONDS))
        capfd.readouterr()
        dags[0].test(**{"logical_date" if AIRFLOW_V_3 else "execution_date": when}, run_conf=run_conf)
        captured = capfd.readouterr()
        text = captured.out + captured.err
    return RealRun([_message(line) for line in text.replace(str(lake), DEMO_FOLDER).splitlines()], lake)


def test_a_log_sample_must_match_the_real_log() -> None:
    """The comparison itself: what may differ between runs does, nothing else may."""
    real = [
        "2026-12-07T20:05:23.087710Z [info     ] Collecting hashtag 5050 into file:///x/: budget 3,000 "
        "credits ($3.00), pages of 50 [airflow.task.operators.x.Op] loc=progress.py:126",
        "[2024-06-01T00:00:01.000+0000] {progress.py:147} INFO - page 1: 50 records (+50); 50 of 3,000 "
        "credits ($0.05); balance 999,950; 1,204 rec/s",
        "page 2: 88 records (+38); 88 of 3,000 credits ($0.088); balance 999,912; 2,001 rec/s",
    ]
    messages = [_message(line) for line in real]
    sample = (
        "Collecting hashtag 5050 into file:///x/: budget 3,000 credits ($3.00), pages of 50\n...\n"
        "page 2: 88 records (+38); 88 of 3,000 credits ($0.088); balance 999,912; 924 rec/s\n"
    )
    _assert_sample("ok", sample, messages)
    for wrong in (
        sample.replace("88 records", "89 records"),  # a figure the run did not log
        sample.replace("3,000 credits ($3.00)", "3,000 credits"),  # a message changed
        "page 2: 88 records (+38)\n",  # a message cut short
        "page 2: 88 records (+38); 88 of 3,000 credits ($0.088); balance 999,912; 9 rec/s\n"
        "page 1: 50 records (+50); 50 of 3,000 credits ($0.05); balance 999,950; 9 rec/s\n",  # out of order
        "...\n",  # nothing to compare
    ):
        with pytest.raises((pytest.fail.Exception, AssertionError)):
            _assert_sample("wrong", wrong, messages)
    # concurrent chains: any order, balances not compared
    reordered = "page 2: 88 records (+38); 88 of 3,000 credits ($0.088); balance 1; 9 rec/s\npage 1: 50 records (+50); 50 of 3,000 credits ($0.05); balance 2; 9 rec/s\n"
    _assert_sample("any", reordered, messages, any_order=True)


# -- links -----------------------------------------------------------------------------------------
_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {
        _slug(line.lstrip("#"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }


def _links(path: Path) -> list[tuple[bool, str]]:
    text = path.read_text(encoding="utf-8")
    # Links inside code blocks are code, not links.
    text = re.sub(r"^ *```.*?^ *```", "", text, flags=re.S | re.M)
    return [(bang == "!", target) for bang, target in _LINK.findall(text)]


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    for _image, target in _links(path):
        if "://" in target or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), (
                f"{path.name}: no heading #{anchor} in {file_part or path.name}"
            )


def test_index_and_readme_link_every_page() -> None:
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    index = {target.partition("#")[0] for _, target in _links(DOCS / "index.md")}
    assert pages <= index, f"docs/index.md does not link {sorted(pages - index)}"
    readme = {target.partition("#")[0] for _, target in _links(README)}
    assert {f"docs/{p}" for p in pages | {"index.md"}} <= readme, (
        "README's Documentation section misses pages"
    )


def test_block_extraction_sees_languages_and_markers() -> None:
    counts: dict[str, int] = {}
    for block in BLOCKS:
        key = block.lang + (f"/{block.mode}" if block.mode else "")
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)
    assert counts.get("python/run") and counts.get("python/dag-run") and counts.get("bash")
