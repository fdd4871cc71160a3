"""Collect many TikTok hashtags: an upstream task lists them, mapped batch tasks page them in chunks.

Copy this DAG and change the settings at the top. It runs as is against the local sandbox and
against the real API once the ``unifapi_default`` connection holds a real key.

How it works:

1. ``hashtag_chunks`` returns the day's hashtags cut into chunks of ``HASHTAGS_PER_TASK`` with
   :func:`~airflow_provider_unifapi.operators.hashtag_batch.chunk` (here from a setting; in real
   life from a table, an API, a file).
2. ``wait_for_credits`` (:class:`UnifAPIBalanceSensor`, deferrable) waits until the balance covers
   every batch's ``max_credits``.
3. ``collect`` maps :class:`TikTokHashtagBatchOperator` over the chunks: each mapped task pages its
   chunk with ``MAX_CONCURRENCY`` cursor chains sharing one paced client, one folder per hashtag
   (``<base>/ds=<date>/batch=<i>/hashtag=<id>/``), one ``max_credits`` for the chunk. A retried
   task resumes its unfinished hashtags and reuses the finished ones for 0 credits.

Sizing (see the README, "Many hashtags"): the workspace limit R is shared by everything. One chain
sends one request per page time L, so ``R * L / 60`` chains in flight fill R (600/min and 0.4 s:
4 chains; 60/min: 1). Give the pool ``slots * MAX_CONCURRENCY`` about that figure, a little more to
cover the page time's spread; each task's pacer keeps its chains from bursting into 429s, and the
429 handling keeps several tasks correct. Make chunks large (50-200 hashtags): per-task overhead
then disappears, and mapped tasks stay few for the scheduler.

    airflow pools set unifapi 2 "UnifAPI rate limit"
"""

from __future__ import annotations

import os

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator, chunk
from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor

# Hashtag ids and/or names (defaults: the sandbox's #cats, #dogs, #catsoftiktok and #emptytag).
HASHTAGS = [
    h.strip()
    for h in os.environ.get("UNIFAPI_HASHTAGS", "5050,4242,catsoftiktok,404040").split(",")
    if h.strip()
]
HASHTAGS_PER_TASK = int(os.environ.get("UNIFAPI_HASHTAGS_PER_TASK", "100"))
MAX_CONCURRENCY = int(os.environ.get("UNIFAPI_MAX_CONCURRENCY", "4"))
OUTPUT_BASE = os.environ.get("UNIFAPI_OUTPUT_BASE", "file:///tmp/unifapi-batches").rstrip("/")
OUTPUT_CONN_ID = os.environ.get("UNIFAPI_OUTPUT_CONN_ID") or None
# Hard budget of each batch (chunk) over all its tries, and the per-hashtag cap inside it.
MAX_CREDITS_PER_HASHTAG = int(os.environ.get("UNIFAPI_MAX_CREDITS_PER_HASHTAG", "3000"))
POOL = os.environ.get("UNIFAPI_POOL", "unifapi")
# Wait before a failed batch is retried (it then resumes from its checkpoints).
RETRY_DELAY_SECONDS = int(os.environ.get("UNIFAPI_RETRY_DELAY_SECONDS", "300"))
RUN_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="example_unifapi_batches",
    description="Many TikTok hashtags in mapped batches through UnifAPI, behind a balance sensor and a pool",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two days at once would share the rate limit and the balance
    tags=["unifapi", "tiktok", "example"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=RETRY_DELAY_SECONDS)},
) as dag:

    @task
    def hashtag_chunks() -> list[list[str]]:
        """The day's hashtags in chunks: one mapped batch task each."""
        return chunk(HASHTAGS, HASHTAGS_PER_TASK)

    wait_for_credits = UnifAPIBalanceSensor(
        task_id="wait_for_credits",
        unifapi_conn_id="unifapi_default",
        min_balance=len(HASHTAGS) * MAX_CREDITS_PER_HASHTAG,
        deferrable=True,
        poke_interval=15 * 60,
        timeout=6 * 60 * 60,
        retries=0,
    )

    chunks = hashtag_chunks()
    collect = TikTokHashtagBatchOperator.partial(
        task_id="collect",
        unifapi_conn_id="unifapi_default",
        pool=POOL,
        # One base folder per mapped task (its chunk) and day; each hashtag gets hashtag=<id>/ in it.
        output_path=f"{OUTPUT_BASE}/ds={RUN_DATE}/batch={{{{ ti.map_index }}}}/",
        output_conn_id=OUTPUT_CONN_ID,
        max_concurrency=MAX_CONCURRENCY,
        max_credits=HASHTAGS_PER_TASK * MAX_CREDITS_PER_HASHTAG,
        max_credits_per_hashtag=MAX_CREDITS_PER_HASHTAG,
        page_size=50,
    ).expand(hashtags=chunks)

    @task
    def report(manifests: list[dict]) -> dict:
        """Add up the batches' totals (small dicts; the records stay in object storage)."""
        totals = [m["totals"] for m in manifests]
        total = {
            "batches": len(totals),
            "hashtags": sum(t["hashtags"] for t in totals),
            "records": sum(t["records"] for t in totals),
            "credits_spent": sum(t["credits_spent"] for t in totals),
        }
        print(
            f"{total['batches']} batches, {total['hashtags']} hashtags, {total['records']} records, {total['credits_spent']} credits"
        )
        return total

    chunks >> wait_for_credits >> collect
    report(collect.output)
