"""Collect several TikTok hashtags in parallel, once the workspace holds enough credits for all of them.

Copy this DAG and change the settings at the top. It runs as is against the local sandbox and
against the real API once the ``unifapi_default`` connection holds a real key.

How it works:

1. ``wait_for_credits`` (:class:`UnifAPIBalanceSensor`) waits until the balance covers every mapped
   task's ``max_credits``, so no hashtag stops half-way for want of credits. It is deferrable: it
   holds no worker slot while it waits, and reads the balance for free when a recent run left a
   fresh, high enough reading; otherwise each check costs 1 credit (see docs/balance-sensor.md).
2. ``collect`` fans out with dynamic task mapping: one mapped task per hashtag id, each writing
   its own folder ``hashtag=<id>/ds=<date>/`` (a retried try resumes there; a finished one is
   reused without a call), and each capped at ``MAX_CREDITS_PER_HASHTAG``.
3. ``report`` adds up records and credits from the mapped tasks' summaries.

The pool must exist before the first run (the scheduler does not queue tasks of a missing pool)::

    airflow pools set unifapi 4 "UnifAPI rate limit"

Why 4 slots: rate limits are per workspace (every key, task and DAG shares them): 600 requests a
minute (10/s) on pay-as-you-go, 60 a minute (1/s) on the free plan. Each ``collect`` task sends one
request at a time, a page after the page before, so the workspace sees at most as many requests in
flight as the pool has slots, and about ``slots / seconds per page`` requests a second. A 50-record
page takes roughly 0.4 s or more from a typical worker, so 4 slots stay near or under 10 requests a
second: inside pay-as-you-go. On the free plan use 1 slot. Where the arithmetic is off (a fast
network, other DAGs sharing the workspace), UnifAPI answers 429, which is not billed: the client
waits ``Retry-After`` and goes on. Put every UnifAPI task of the workspace in this one pool.
"""

from __future__ import annotations

import os

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor

# Numeric hashtag ids (defaults: the sandbox's #cats, #dogs and #travel).
HASHTAG_IDS = [
    h.strip() for h in os.environ.get("UNIFAPI_HASHTAG_IDS", "5050,4242,77001").split(",") if h.strip()
]
OUTPUT_BASE = os.environ.get("UNIFAPI_OUTPUT_BASE", "file:///tmp/unifapi-fan-out").rstrip("/")
OUTPUT_CONN_ID = os.environ.get("UNIFAPI_OUTPUT_CONN_ID") or None
# Hard budget of each hashtag's daily run (2,000 credits = $2); the sensor waits for all of them.
MAX_CREDITS_PER_HASHTAG = int(os.environ.get("UNIFAPI_MAX_CREDITS_PER_HASHTAG", "2000"))
POOL = os.environ.get("UNIFAPI_POOL", "unifapi")
# The run's day: the logical date of scheduled runs, and on Airflow 3 the trigger time of runs
# started from the UI, CLI or REST API without a logical date (where ``{{ ds }}`` is undefined).
RUN_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="example_unifapi_fan_out",
    description="Several TikTok hashtags in parallel through UnifAPI, behind a balance sensor and a pool",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two days at once would share the rate limit and the balance
    tags=["unifapi", "tiktok", "example"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
) as dag:
    wait_for_credits = UnifAPIBalanceSensor(
        task_id="wait_for_credits",
        unifapi_conn_id="unifapi_default",
        min_balance=len(HASHTAG_IDS) * MAX_CREDITS_PER_HASHTAG,
        deferrable=True,
        poke_interval=15 * 60,  # at most 96 one-credit readings a day while waiting
        timeout=6 * 60 * 60,  # then fail (or set soft_fail=True to skip the day)
        retries=0,  # a retry would only restart the same wait
    )

    collect = TikTokHashtagVideosOperator.partial(
        task_id="collect",
        unifapi_conn_id="unifapi_default",
        pool=POOL,
        # Rendered per mapped task, after hashtag_id: one folder per hashtag and day.
        output_path=f"{OUTPUT_BASE}/hashtag={{{{ task.hashtag_id }}}}/ds={RUN_DATE}/",
        output_conn_id=OUTPUT_CONN_ID,
        output_format="jsonl.gz",
        page_size=50,
        max_credits=MAX_CREDITS_PER_HASHTAG,
        # Name the mapped tasks after their hashtag in the UI instead of 0, 1, 2...
        map_index_template="{{ task.hashtag_id }}",
    ).expand(hashtag_id=HASHTAG_IDS)

    @task
    def report(summaries: list[dict]) -> dict:
        """Add up the mapped runs' summaries (small dicts; the records stay in object storage)."""
        summaries = list(summaries)
        for s in summaries:
            print(
                f"hashtag {s['hashtag_id']}: {s['records']} records, {s['credits_charged']} credits, "
                f"stop reason {s['stop_reason']} -> {s['output_path']}"
            )
        total = {
            "hashtags": len(summaries),
            "records": sum(s["records"] for s in summaries),
            "credits_charged": sum(s["credits_charged"] for s in summaries),
        }
        print(f"{total['hashtags']} hashtags, {total['records']} records, {total['credits_charged']} credits")
        return total

    wait_for_credits >> collect
    report(collect.output)
