"""The contestants: one small module each, all doing the identical job (every record of one hashtag
to local files), each run in a process of its own by :mod:`benchmarks.child`.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass


@dataclass(frozen=True)
class Contestant:
    """How to run one contestant and how to read back what it delivered.

    :param name: id used on the command line and in results.
    :param label: name shown in tables.
    :param module: module with ``run(spec)`` (executed inside the child process).
    :param needs: distributions (name, minimum major.minor) that must be installed.
    :param airflow: runs as a real Airflow task (``dag.test()``).
    :param dedupes: promises each unique record exactly once, in the order of first appearance.
    :param output: how the harness reads the output: ``none``, ``ours``, ``jsonl`` or ``dlt``.
    :param option: variant passed to the module (our output format).
    :param restart: how the tool restarts after being killed (what the kill test does).
    """

    name: str
    label: str
    module: str
    needs: tuple[tuple[str, tuple[int, int]], ...]
    airflow: bool
    dedupes: bool
    output: str
    option: str = ""
    restart: str = ""

    def missing(self) -> str | None:
        """Why this contestant cannot run in this environment, or ``None`` when it can."""
        for dist, minimum in self.needs:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                return f"{dist} is not installed"
            parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
            if parts < minimum:
                return f"{dist} {version} is older than {'.'.join(map(str, minimum))}"
        return None


_AIRFLOW = ("apache-airflow", (2, 11))

CONTESTANTS: tuple[Contestant, ...] = (
    Contestant(
        "ceiling",
        "ceiling (bare httpx loop)",
        "benchmarks.contestants.ceiling",
        needs=(("httpx", (0, 25)),),
        airflow=False,
        dedupes=False,
        output="none",
        restart="n/a (writes nothing)",
    ),
    Contestant(
        "ours-jsonl.gz",
        "ours jsonl.gz",
        "benchmarks.contestants.ours",
        needs=(_AIRFLOW,),
        airflow=True,
        dedupes=True,
        output="ours",
        option="jsonl.gz",
        restart="same output folder: resumes from its checkpoint",
    ),
    Contestant(
        "ours-parquet",
        "ours parquet",
        "benchmarks.contestants.ours",
        needs=(_AIRFLOW, ("pyarrow", (14, 0))),
        airflow=True,
        dedupes=True,
        output="ours",
        option="parquet",
        restart="same output folder: resumes from its checkpoint",
    ),
    Contestant(
        "http-operator",
        "HttpOperator + pagination_function",
        "benchmarks.contestants.http_operator",
        # pagination_function arrived in apache-airflow-providers-http 4.10
        needs=(_AIRFLOW, ("apache-airflow-providers-http", (4, 10))),
        airflow=True,
        dedupes=False,
        output="jsonl",
        restart="from scratch (it keeps no state)",
    ),
    Contestant(
        "dlt",
        "dlt rest_api -> filesystem",
        "benchmarks.contestants.dlt_rest_api",
        needs=(_AIRFLOW, ("dlt", (1, 0))),
        airflow=True,
        dedupes=False,
        output="dlt",
        restart="same pipeline and pipelines_dir: dlt finishes pending packages, then extracts again "
        "from the first page (a cursor paginator keeps no resumable state)",
    ),
)

BY_NAME = {c.name: c for c in CONTESTANTS}


def select(names: list[str] | None = None) -> tuple[list[Contestant], dict[str, str]]:
    """The contestants to run (all by default) that this environment has; and why others are left out."""
    wanted = [BY_NAME[n] for n in names] if names else list(CONTESTANTS)
    chosen: list[Contestant] = []
    skipped: dict[str, str] = {}
    for c in wanted:
        why = c.missing()
        if why is None:
            chosen.append(c)
        else:
            skipped[c.name] = why
    return chosen, skipped
