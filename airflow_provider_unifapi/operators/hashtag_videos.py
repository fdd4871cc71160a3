"""TikTokHashtagVideosOperator: page a hashtag's videos into object storage (or XCom) on a budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from airflow_provider_unifapi._compat import AirflowNotFoundException, add_outlet_extra, task_state_store
from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient
from airflow_provider_unifapi.collector import ObjectStorageOutput, RunOutput, RunStopped, XComOutput, dollars
from airflow_provider_unifapi.collector.budget import credits_spent
from airflow_provider_unifapi.collector.run import HashtagRun
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.operators._arguments import (
    CheckedArguments,
    check_arguments,
    output_folder,
    writer_name,
)
from airflow_provider_unifapi.operators._base import CollectionOperator, task_failure
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL
from airflow_provider_unifapi.storage.run_folder import RunFolder

#: Records XCom mode may return; past this, write to object storage (XCom lives in the metadata DB).
DEFAULT_XCOM_MAX_RECORDS = 1000


class TikTokHashtagVideosOperator(CollectionOperator):
    """Fetch every video of a TikTok hashtag through UnifAPI, resumably and under hard budgets.

    With ``output_path`` the records go to part files, checkpointed every page (a retry resumes:
    docs/resume.md), and the task returns a summary; without it, they are returned as XCom.

    :param hashtag_id: numeric id of the hashtag (templated). Give this or ``hashtag_name``.
    :param hashtag_name: hashtag name without ``#`` (templated); resolved by hashtag search, whose
        results cost credits (counted in the budget).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param page_size: records per call, 1 to 50 (templated).
    :param max_records: stop after exactly this many unique records (templated).
    :param max_pages: stop after this many page calls (templated).
    :param max_credits: never spend more credits than this over all tries (templated).
    :param min_balance: never let the workspace balance drop below this (templated).
    :param output_path: folder URL (``s3://bucket/tiktok/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/``,
        ``file:///data/tiktok/``...); ``None`` returns the records as XCom (templated).
    :param output_conn_id: connection of the object store, e.g. an ``aws`` one (templated).
    :param output_format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (needs the ``parquet`` extra).
    :param records_per_part: records per part file.
    :param fail_on_low_balance: fail when the balance runs out mid-run (retryable); False ends
        successfully with stop reason ``balance_truncated``.
    :param max_empty_pages: empty pages in a row (1 credit each) after which the run stops.
    :param overwrite: delete the folder's earlier run and fetch again (by default a done folder is
        reused for 0 credits and a stopped one continues from its cursor).
    :param xcom_max_records: the most records XCom mode may return.
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    """

    template_fields: Sequence[str] = (
        "hashtag_id",
        "hashtag_name",
        "page_size",
        "max_records",
        "max_pages",
        "max_credits",
        "min_balance",
        "output_path",
        "output_conn_id",
        "output_format",
    )

    def __init__(
        self,
        *,
        hashtag_id: str | None = None,
        hashtag_name: str | None = None,
        unifapi_conn_id: str = UnifAPIHook.default_conn_name,
        page_size: int | str = MAX_PAGE_SIZE,
        max_records: int | str | None = None,
        max_pages: int | str | None = None,
        max_credits: int | str | None = None,
        min_balance: int | str | None = None,
        output_path: str | None = None,
        output_conn_id: str | None = None,
        output_format: str = "jsonl.gz",
        records_per_part: int = 10_000,
        fail_on_low_balance: bool = True,
        max_empty_pages: int = 3,
        overwrite: bool = False,
        xcom_max_records: int = DEFAULT_XCOM_MAX_RECORDS,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hashtag_id = hashtag_id
        self.hashtag_name = hashtag_name
        self.unifapi_conn_id = unifapi_conn_id
        self.page_size = page_size
        self.max_records = max_records
        self.max_pages = max_pages
        self.max_credits = max_credits
        self.min_balance = min_balance
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.output_format = output_format
        self.records_per_part = records_per_part
        self.fail_on_low_balance = fail_on_low_balance
        self.max_empty_pages = max_empty_pages
        self.overwrite = overwrite
        self.xcom_max_records = xcom_max_records
        self.gzip_level = gzip_level

    def execute(self, context: Any) -> Any:
        # What lineage and asset events report; set as the run learns it (a failed try reports too).
        self._run_summary: dict[str, Any] | None = None
        self._resolved_hashtag_id: str | None = None
        try:
            args = check_arguments(self)
            client = self.hook.get_conn()
            try:
                result, summary = self._collect(client, args, context)
            finally:
                self.hook.remember_balance(client.last_balance)
        except (UnifAPIError, RunStopped, AirflowNotFoundException) as exc:
            hashtag = self._resolved_hashtag_id or self.hashtag_id or self.hashtag_name
            raise task_failure(exc, conn_id=self.unifapi_conn_id, hashtag=hashtag) from None
        finally:
            self.hook.close()
        self._run_summary = summary
        add_outlet_extra(context, self.outlets, asset_extra(summary))
        return result

    def _collect(
        self, client: UnifAPIClient, args: CheckedArguments, context: Any
    ) -> tuple[Any, dict[str, Any]]:
        """The task's return value and the run's summary."""
        output = self._output(args, context)
        # Only min_balance needs the remembered balance (a metadata-DB round trip, so skipped otherwise).
        floor, budget = args.budget.min_balance, args.budget
        remembered = None
        if floor is not None:
            remembered = self.hook.recall_fresh_balance(floor)
            budget = replace(budget, balance_max_age=self.hook.balance_max_age())
        run = HashtagRun(
            client,
            args.target,
            output,
            budget=budget,
            paging=args.paging,
            initial_balance=remembered,
            overwrite=bool(self.overwrite),
            owner=writer_name(context),
            logger=self.log,
        )
        outcome = run.run()
        self._resolved_hashtag_id = outcome.target.hashtag_id
        if outcome.error is not None:
            self._run_summary = outcome.summary
            raise outcome.error
        summary = outcome.summary
        return (output.records if isinstance(output, XComOutput) else summary), summary

    def _output(self, args: CheckedArguments, context: Any) -> RunOutput:
        if args.output_path is None:
            # Airflow >= 3.3 keeps XCom mode's spend across tries in the task state store.
            return XComOutput(task_state_store(context))
        path = output_folder(args.output_path, self.output_conn_id)
        folder = RunFolder(path, args.output_format, gzip_level=args.gzip_level)
        return ObjectStorageOutput(folder, records_per_part=args.records_per_part, url=args.output_path)


def asset_extra(summary: dict[str, Any]) -> dict[str, Any]:
    """What an asset event carries: the run's (or a reused folder's) summary, with the money spelled out."""
    spent = credits_spent(summary)
    return {
        **summary,
        "reused": bool(summary.get("reused", False)),
        # what the data cost (confirmed + possibly billed, all tries) and what this run paid for it:
        # a reused folder, or a stopped one run again with the same limits, costs nothing again
        "credits_spent": spent,
        "dollars_spent": dollars(spent),
        "credits_spent_this_run": int(summary.get("credits_spent_this_try", spent)),
    }
