"""Every code block of README.md and docs/*.md is run or parsed, so the docs cannot rot.

By the block's language:

* ``python``: compiled. In docs/, a marker on the line before the fence says what else happens:
  ``<!-- docs-test: run -->`` executes it against the sandbox (``unifapi_default`` points there;
  ``requires=mod1,mod2`` only compiles it when a module is not installed; ``uses=NAME`` runs the
  page's block marked ``name=NAME`` first, in the same namespace), ``dag`` loads it as a
  DAG file, ``dag-run`` also runs the DAG with ``dag.test()``, ``compile`` only compiles (a fragment
  of a larger file). README blocks carry no marker: they are executed with the public imports and
  an ``api_key`` in scope, with ``https://api.unifapi.com`` pointing at the sandbox.
* ``bash``: ``bash -n``. ``json``: ``json.loads``. ``sql``: not empty (DuckDB is not a dependency).
* ``text``: output and pseudo-code, not checked. Any other language, or none, fails.

In executed blocks and DAG files, ``/tmp/unifapi-demo`` (the docs' output folder) is replaced by a
temporary folder holding complete runs of the sandbox's hashtags 5050 (``jsonl.gz``) and 4242
(``parquet``) for ``ds=2024-06-01``, and an unfinished run of 77001.

Links: docs/index.md and README.md link every page of docs/, and every relative link or image of
the docs points to an existing file (and heading; the screenshots are in docs/img/).
"""

from __future__ import annotations

import contextlib
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
        "text": lambda block, request: None,
    }[block.lang]
    check(block, request)


def _check_bash(block: Block, request: pytest.FixtureRequest) -> None:
    result = subprocess.run(["bash", "-n"], input=block.code, text=True, capture_output=True, check=False)
    assert result.returncode == 0, f"{block.name}: bash -n: {result.stderr}"


def _check_json(block: Block, request: pytest.FixtureRequest) -> None:
    try:
        json.loads(block.code)
    except ValueError as exc:
        pytest.fail(f"{block.name}: not JSON: {exc}")


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
    dag_runner = request.getfixturevalue("dag_runner")
    stem = re.sub(r"\W", "_", f"docs_{block.path.stem}_{block.line}")
    target = Path(dag_runner.folder) / f"{stem}.py"
    target.write_text(source)
    module = _import(target, stem)
    dags = [v for v in vars(module).values() if type(v).__name__ in ("DAG", "SerializedDAG")]
    assert dags and all(d.task_ids for d in dags), f"{block.name}: no DAG with tasks"
    if block.mode == "dag-run":
        result = dag_runner.run(target)
        assert result.state == "success", f"{block.name}: the DAG run ended {result.state}"
        summaries = [x for x in result.xcoms.values() if isinstance(x, dict) and "stop_reason" in x]
        assert summaries and all(s["records"] > 0 for s in summaries), result.xcoms


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
