"""The one-process contestants, each run as ``python -m benchmarks.fleet.child SPEC.json``.

- ``ours-batched``: one :class:`TikTokHashtagBatchOperator` task (``dag.test()``, so the task runs in
  this process), ``max_concurrency`` chains sharing one paced client;
- ``dlt``: the ``rest_api`` source, one resource per hashtag, ``parallelized=True``, ``concurrency``
  extract workers, into the ``filesystem`` destination (jsonl);
- ``ceiling``: an asyncio httpx loop whose requests start exactly ``60 / R`` s apart (never faster,
  so no 429 by construction), ``concurrency`` chains at most, each hashtag to one JSON-lines file.

Exit code 0 when the contestant finished its job; what it wrote is checked by the parent.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.fleet.config import ChildSpec

DLT_DATASET = "tiktok"


def dlt_table(hashtag_id: str) -> str:
    """dlt's table (and resource) name of a hashtag."""
    return f"h{hashtag_id}"


#: The batched DAG's file: ``dag.test()`` serialises a DAG from the file it was defined in.
_BATCHED_DAG = """\
# Fleet benchmark DAG (airflow dag), written by benchmarks.fleet.child: one batch task.
import os

from benchmarks.fleet.child import build_batched_dag
from benchmarks.fleet.config import ChildSpec

dag = build_batched_dag(ChildSpec.load(os.environ["UNIFAPI_FLEET_SPEC"]))
"""


def build_batched_dag(spec: ChildSpec) -> Any:
    """One :class:`TikTokHashtagBatchOperator` task over every hashtag of the cell."""
    import pendulum

    from airflow_provider_unifapi._compat import DAG
    from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator

    with DAG(
        "fleet_ours_batched", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        TikTokHashtagBatchOperator(
            task_id="collect",
            hashtags=spec.hashtag_ids,
            output_path=f"file://{spec.out_dir}",
            max_concurrency=spec.concurrency,
            page_size=spec.page_size,
            pace_requests=True,
            retries=0,
        )
    return dag


def run_batched(spec: ChildSpec) -> int:
    """The batch DAG with ``dag.test()``: the task runs in this process (the home is the parent's)."""
    import importlib.util

    import pendulum

    from airflow_provider_unifapi._compat import dag_test

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fleet_ours_batched.py"
    path.write_text(_BATCHED_DAG)
    module_spec = importlib.util.spec_from_file_location("fleet_ours_batched_dag", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    run = dag_test(module.dag, pendulum.now("UTC"))
    state = str(run.state).split(".")[-1].lower()
    print(f"fleet child: ours-batched ended {state}", file=sys.stderr)
    return 0 if state == "success" else 1


def run_dlt(spec: ChildSpec) -> int:
    """dlt's rest_api source with a parallelized resource per hashtag."""
    # dlt reads its config from the environment: the extract thread pool is the "pool size".
    os.environ["EXTRACT__WORKERS"] = str(spec.concurrency)
    # dlt retries a 429 after its Retry-After, 5 attempts by default: with 8 parallel resources at
    # the limit a call can meet more, which failed the whole run (N = 1,000). 30, as for
    # HttpOperator's retry_args: the setting a user would raise.
    os.environ["RUNTIME__REQUEST_MAX_ATTEMPTS"] = "30"
    import dlt
    from dlt.sources.rest_api import rest_api_source

    from benchmarks.contestants.dlt_rest_api import rest_api_client

    resources: list[Any] = [
        {
            "name": dlt_table(hid),
            "parallelized": True,
            "endpoint": {
                "path": f"tiktok/hashtags/{hid}/videos",
                "params": {"limit": spec.page_size},
                "data_selector": "data",
            },
        }
        for hid in spec.hashtag_ids
    ]
    source = rest_api_source({"client": rest_api_client(spec.base_url, spec.api_key), "resources": resources})
    # dlt 1.31 drops ``parallelized`` of a rest_api resource that depends on no other (measured: its
    # pages came one at a time, ~0.3 R); ``DltResource.parallelize()`` is the documented way to ask
    # for the same, and does it.
    for resource in source.resources.values():
        resource.parallelize()
    pipeline = dlt.pipeline(
        pipeline_name="unifapi_fleet",
        destination=dlt.destinations.filesystem(bucket_url=f"file://{spec.out_dir}"),
        dataset_name=DLT_DATASET,
        pipelines_dir=spec.work_dir,
    )
    pipeline.run(source, loader_file_format="jsonl")
    return 0


class Pacer:
    """Request start times exactly ``interval`` apart, never earlier: the ceiling's clock."""

    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / per_minute
        self.next_at = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        # A slot nobody was ready for is not saved up: bunching later calls would provoke 429s.
        at = max(self.next_at, loop.time())
        self.next_at = at + self.interval
        await asyncio.sleep(at - loop.time())


async def _ceiling_chain(client: Any, pacer: Pacer, spec: ChildSpec, hid: str) -> None:
    params: dict[str, Any] = {"limit": spec.page_size}
    with open(Path(spec.out_dir) / f"{hid}.jsonl", "wb") as out:
        while True:
            await pacer.wait()
            response = await client.get(f"/tiktok/hashtags/{hid}/videos", params=params)
            if response.status_code == 429:  # not by construction; if it comes, wait and redo
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            body = json.loads(response.content)
            for record in body["data"]:
                out.write(json.dumps(record).encode() + b"\n")
            pagination = body["pagination"]
            if not pagination["has_more"] or not pagination["next_cursor"]:
                return
            params = {"limit": spec.page_size, "cursor": pagination["next_cursor"]}


async def _ceiling(spec: ChildSpec) -> int:
    import httpx

    queue: asyncio.Queue[str] = asyncio.Queue()
    for hid in spec.hashtag_ids:
        queue.put_nowait(hid)
    pacer = Pacer(spec.rate)
    headers = {"Authorization": f"Bearer {spec.api_key}"}
    limits = httpx.Limits(max_connections=spec.concurrency)
    async with httpx.AsyncClient(
        base_url=spec.base_url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                await _ceiling_chain(client, pacer, spec, queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return 0


def run_ceiling(spec: ChildSpec) -> int:
    return asyncio.run(_ceiling(spec))


RUNNERS = {"ours-batched": run_batched, "dlt": run_dlt, "ceiling": run_ceiling}


def main(argv: list[str]) -> int:
    os.environ["UNIFAPI_FLEET_SPEC"] = argv[0]
    spec = ChildSpec.load(argv[0])
    Path(spec.out_dir).mkdir(parents=True, exist_ok=True)
    return RUNNERS[spec.contestant](spec)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
