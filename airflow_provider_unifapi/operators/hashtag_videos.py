"""TikTokHashtagVideosOperator: page a hashtag's videos into object storage (or XCom) on a budget."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    Context,
    ObjectStoragePath,
)
from airflow_provider_unifapi.balance_memory import recall_balance, remember_balance
from airflow_provider_unifapi.client import MAX_PAGE_SIZE, validate_hashtag_id, validate_limit
from airflow_provider_unifapi.collector import Budget, HashtagVideoCollector, RunStopped, check_budget_value
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError, is_retryable
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.storage.fsio import local_folder
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL, check_format
from airflow_provider_unifapi.storage.run_folder import RunFolder

#: Records XCom mode may return; past this, write to object storage (XCom lives in the metadata DB).
DEFAULT_XCOM_MAX_RECORDS = 1000


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


class TikTokHashtagVideosOperator(BaseOperator):
    """Fetch every video of a TikTok hashtag through UnifAPI, resumably and under hard budgets.

    With ``output_path`` the records go to part files in object storage with a checkpoint after
    every page, so a retried try resumes instead of paying again; a ``_manifest.json`` written last
    marks the folder complete, and the task returns a small summary. Without ``output_path`` the
    records are returned as XCom (capped; no resume).

    :param hashtag_id: numeric id of the hashtag (templated). Give this or ``hashtag_name``.
    :param hashtag_name: hashtag name without ``#`` (templated); resolved to an id by exact match
        through hashtag search, which costs the search results read (counted in the budget).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param page_size: records per call, 1 to 50 (templated).
    :param max_records: stop after exactly this many unique records (templated).
    :param max_pages: stop after this many page calls (templated).
    :param max_credits: never spend more credits than this over all tries (templated).
    :param min_balance: never let the workspace balance drop below this (templated).
    :param output_path: folder URL for ``ObjectStoragePath`` (``s3://bucket/tiktok/{{ ds }}/``,
        ``file:///data/tiktok/``...); ``None`` returns the records as XCom (templated).
    :param output_conn_id: connection for the object store (e.g. an ``aws`` connection) (templated).
    :param output_format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (needs the ``parquet`` extra).
    :param records_per_part: records per part file (pages are checkpointed one by one regardless).
    :param fail_on_low_balance: fail when the balance runs out mid-run (default), so a retry or the
        balance sensor takes over; False ends successfully with stop reason ``balance_truncated``.
    :param max_empty_pages: empty pages in a row (1 credit each) after which the run stops.
    :param overwrite: delete a complete earlier output in ``output_path`` and fetch again; by default
        a folder with ``_manifest.json`` is reused and its summary returned without any call.
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
    ui_color = "#25f4ee"

    def __init__(
        self,
        *,
        hashtag_id: str | None = None,
        hashtag_name: str | None = None,
        unifapi_conn_id: str = UnifAPIHook.default_conn_name,
        page_size: int = MAX_PAGE_SIZE,
        max_records: int | None = None,
        max_pages: int | None = None,
        max_credits: int | None = None,
        min_balance: int | None = None,
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
        # Fail at DAG parse time for what is already known; templated values are checked in execute.
        self._validate(rendered=False)

    # -- argument checks --------------------------------------------------------------------------
    def _validate(self, *, rendered: bool) -> None:
        def ready(value: Any) -> bool:
            return rendered or not _is_template(value)

        if self.hashtag_id in (None, "") and self.hashtag_name in (None, ""):
            raise UnifAPIInputError(
                "hashtag_id", "give hashtag_id (numeric id) or hashtag_name (name without #)"
            )
        if self.hashtag_id not in (None, "") and self.hashtag_name not in (None, ""):
            raise UnifAPIInputError("hashtag_name", "give hashtag_id or hashtag_name, not both")
        if self.hashtag_id not in (None, "") and ready(self.hashtag_id):
            self.hashtag_id = validate_hashtag_id(self.hashtag_id)
        if ready(self.page_size):
            self.page_size = validate_limit(
                check_budget_value("page_size", self.page_size, minimum=1), "page_size"
            )
        for name, minimum in (("max_records", 1), ("max_pages", 1), ("max_credits", 1), ("min_balance", 0)):
            value = getattr(self, name)
            if ready(value):
                setattr(self, name, check_budget_value(name, value, minimum=minimum))
        if ready(self.output_format):
            check_format(self.output_format)
        check_budget_value("records_per_part", self.records_per_part, minimum=1)
        check_budget_value("max_empty_pages", self.max_empty_pages, minimum=1)
        check_budget_value("xcom_max_records", self.xcom_max_records, minimum=1)
        if not isinstance(self.gzip_level, int) or not 0 <= self.gzip_level <= 9:
            raise UnifAPIInputError("gzip_level", f"must be an integer from 0 to 9, got {self.gzip_level!r}")
        if self.output_path in (None, "") and ready(self.max_records):
            # XCom mode must know up front that it cannot pass the cap: never pay for records that
            # could not be returned.
            if self.max_records is None or self.max_records > self.xcom_max_records:
                raise UnifAPIInputError(
                    "output_path",
                    f"is not set, so records go to XCom, which holds at most xcom_max_records="
                    f"{self.xcom_max_records}; set max_records <= {self.xcom_max_records}, or set output_path "
                    "(e.g. 's3://bucket/tiktok/{{ ds }}/' or 'file:///data/tiktok/') to write any number of records",
                )

    @cached_property
    def hook(self) -> UnifAPIHook:
        return UnifAPIHook(self.unifapi_conn_id)

    # -- execution --------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        try:
            self._validate(rendered=True)
        except UnifAPIInputError as exc:
            raise AirflowFailException(str(exc)) from None
        client = self.hook.get_conn()
        try:
            return self._execute(client)
        except RunStopped as stop:
            raise AirflowException(str(stop)) from None
        except UnifAPIError as exc:
            message = f"UnifAPI call failed for hashtag {self.hashtag_id or self.hashtag_name}: {exc}"
            if is_retryable(exc) or exc.may_have_been_billed:
                # Transient or lost-in-transit: an Airflow retry resumes from the checkpoint.
                raise AirflowException(message) from None
            raise AirflowFailException(message) from None
        finally:
            remember_balance(self.unifapi_conn_id, client.last_balance)

    def _execute(self, client: Any) -> Any:
        folder = self._run_folder()
        if folder is not None:
            if self.overwrite:
                folder.clear()
            else:
                manifest = folder.read_manifest()
                if manifest is not None:
                    self.log.info(
                        "%s already holds a complete run (_manifest.json): returning its summary without "
                        "calling UnifAPI (0 credits). Use overwrite=True to fetch again.",
                        self.output_path,
                    )
                    manifest.pop("parts", None)
                    manifest.pop("request_ids", None)
                    manifest.pop("written_at", None)
                    return manifest
        hashtag_id, resolution_credits = self._hashtag_id(client, folder)
        # Only min_balance needs a balance before the first answer (else it costs a 1-record first call);
        # reading the Variable is a round trip to the metadata DB (~8 ms), so skip it otherwise.
        remembered = recall_balance(self.unifapi_conn_id) if self.min_balance is not None else None
        collector = HashtagVideoCollector(
            client,
            hashtag_id,
            folder=folder,
            budget=Budget(self.max_records, self.max_pages, self.max_credits, self.min_balance),
            page_size=self.page_size,
            records_per_part=self.records_per_part,
            fail_on_low_balance=self.fail_on_low_balance,
            max_empty_pages=self.max_empty_pages,
            hashtag_name=self.hashtag_name or None,
            initial_balance=remembered.balance if remembered is not None else None,
            resolution_credits=resolution_credits,
            output_path=self.output_path or None,
            logger=self.log,
        )
        summary = collector.run()
        if folder is None:
            return collector.records_in_memory
        return summary

    def _run_folder(self) -> RunFolder | None:
        if self.output_path in (None, ""):
            return None
        try:
            path = (None if self.output_conn_id else local_folder(self.output_path)) or ObjectStoragePath(
                self.output_path, conn_id=self.output_conn_id
            )
        except Exception as exc:
            raise UnifAPIInputError(
                "output_path", f"{self.output_path!r} is not a usable object-storage URL: {exc}"
            ) from None
        return RunFolder(path, self.output_format, gzip_level=self.gzip_level)

    def _hashtag_id(self, client: Any, folder: RunFolder | None) -> tuple[str, int]:
        """The id to page, resolving ``hashtag_name`` once (a resumed run reads it from the checkpoint)."""
        if self.hashtag_id not in (None, ""):
            return str(self.hashtag_id), 0
        if folder is not None:
            from airflow_provider_unifapi.storage.checkpoint import CheckpointStore

            earlier = CheckpointStore(folder.io).load()
            if earlier is not None and earlier.hashtag_name == self.hashtag_name:
                return earlier.hashtag_id, earlier.resolution_credits
        resolved = client.resolve_hashtag_id(self.hashtag_name)
        self.log.info(
            "Resolved hashtag name %r to id %s with %d search call(s) costing %d credits",
            self.hashtag_name,
            resolved.hashtag.id,
            resolved.calls,
            resolved.credits_charged,
        )
        return resolved.hashtag.id, resolved.credits_charged

    # -- lineage ----------------------------------------------------------------------------------
    def get_openlineage_facets_on_start(self) -> Any:
        """OpenLineage: input = the API endpoint of the hashtag, output = the object-storage folder."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        hook_url = "https://api.unifapi.com"
        try:
            hook_url = self.hook.client_kwargs()["base_url"]
        except Exception:  # lineage must never fail the task
            pass
        inputs = [
            Dataset(
                namespace=hook_url,
                name=f"/tiktok/hashtags/{self.hashtag_id or self.hashtag_name}/videos",
            )
        ]
        outputs = []
        if self.output_path:
            path = ObjectStoragePath(self.output_path, conn_id=self.output_conn_id)
            outputs.append(Dataset(namespace=f"{path.protocol}://{path.bucket}", name=path.key))
        return OperatorLineage(inputs=inputs, outputs=outputs)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self.get_openlineage_facets_on_start()
