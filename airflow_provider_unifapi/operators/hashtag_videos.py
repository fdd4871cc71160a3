"""TikTokHashtagVideosOperator: page a hashtag's videos into object storage (or XCom) on a budget."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    ObjectStoragePath,
)
from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient
from airflow_provider_unifapi.collector import (
    HashtagVideoCollector,
    ObjectStorageOutput,
    RunOutput,
    RunStart,
    RunStopped,
    XComOutput,
)
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError, is_retryable
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.operators._arguments import CheckedArguments, check_arguments
from airflow_provider_unifapi.storage.fsio import local_folder
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL
from airflow_provider_unifapi.storage.run_folder import RunFolder

#: Records XCom mode may return; past this, write to object storage (XCom lives in the metadata DB).
DEFAULT_XCOM_MAX_RECORDS = 1000


class TikTokHashtagVideosOperator(BaseOperator):
    """Fetch every video of a TikTok hashtag through UnifAPI, resumably and under hard budgets.

    With ``output_path`` the records go to part files in object storage with a checkpoint after
    every page, so a retried try resumes instead of paying again; a ``_manifest.json`` written last
    marks the folder complete, and the task returns a small summary. Without ``output_path`` the
    records are returned as XCom (capped; no resume).

    The constructor only stores its arguments (a templated one may be a Jinja string, an
    ``XComArg`` or a mapped value until the task runs); every check runs at the start of
    ``execute``, before any paid call, and a bad value fails the task without retry.

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

    @cached_property
    def hook(self) -> UnifAPIHook:
        """The hook of ``unifapi_conn_id``; it owns the client and closes it when the task ends."""
        return UnifAPIHook(self.unifapi_conn_id)

    # -- execution --------------------------------------------------------------------------------
    def execute(self, context: Any) -> Any:
        try:
            args = check_arguments(self)
        except UnifAPIInputError as exc:
            raise AirflowFailException(str(exc)) from None  # bad input: a retry would fail the same way
        try:
            client = self.hook.get_conn()
            try:
                return self._collect(client, args)
            except RunStopped as stop:
                raise AirflowException(str(stop)) from None
            except UnifAPIError as exc:
                message = f"UnifAPI call failed for hashtag {args.hashtag_id or args.hashtag_name}: {exc}"
                if is_retryable(exc) or exc.may_have_been_billed:
                    # Transient or lost-in-transit: an Airflow retry resumes from the checkpoint.
                    raise AirflowException(message) from None
                raise AirflowFailException(message) from None
            finally:
                self.hook.remember_balance(client.last_balance)
        finally:
            self.hook.close()

    def _collect(self, client: UnifAPIClient, args: CheckedArguments) -> Any:
        output = self._output(args)
        if isinstance(output, ObjectStorageOutput):
            done = self._reuse_or_clear(output)
            if done is not None:
                return done
        hashtag_id, resolution_credits = self._hashtag_id(client, args, output)
        # Only min_balance needs a balance before the first answer (else it costs a 1-record first
        # call); reading the Variable is a metadata-DB round trip, so skip it otherwise.
        remembered = self.hook.recall_balance() if args.budget.min_balance is not None else None
        collector = HashtagVideoCollector(
            client,
            hashtag_id,
            output=output,
            budget=args.budget,
            paging=args.paging,
            start=RunStart(
                hashtag_name=args.hashtag_name,
                initial_balance=remembered.balance if remembered is not None else None,
                resolution_credits=resolution_credits,
            ),
            logger=self.log,
        )
        summary = collector.run()
        return output.records if isinstance(output, XComOutput) else summary

    def _output(self, args: CheckedArguments) -> RunOutput:
        if args.output_path is None:
            return XComOutput()
        try:
            path = (None if self.output_conn_id else local_folder(args.output_path)) or ObjectStoragePath(
                args.output_path, conn_id=self.output_conn_id
            )
        except Exception as exc:
            raise UnifAPIInputError(
                "output_path", f"{args.output_path!r} is not a usable object-storage URL: {exc}"
            ) from None
        folder = RunFolder(path, args.output_format, gzip_level=args.gzip_level)
        return ObjectStorageOutput(folder, records_per_part=args.records_per_part, url=args.output_path)

    def _reuse_or_clear(self, output: ObjectStorageOutput) -> dict[str, Any] | None:
        """The stored summary of a complete folder (0 credits), unless ``overwrite`` clears it."""
        if self.overwrite:
            output.folder.clear()
            return None
        manifest = output.folder.read_manifest()
        if manifest is None:
            return None
        self.log.info(
            "%s already holds a complete run (_manifest.json): returning its summary without "
            "calling UnifAPI (0 credits). Use overwrite=True to fetch again.",
            output.url,
        )
        for key in ("parts", "request_ids", "written_at"):
            manifest.pop(key, None)
        return manifest

    def _hashtag_id(
        self, client: UnifAPIClient, args: CheckedArguments, output: RunOutput
    ) -> tuple[str, int]:
        """The id to page, resolving ``hashtag_name`` once (a resumed run reads it from the checkpoint)."""
        if args.hashtag_id is not None:
            return args.hashtag_id, 0
        assert args.hashtag_name is not None
        earlier = output.earlier_checkpoint()
        if earlier is not None and earlier.hashtag_name == args.hashtag_name:
            return earlier.hashtag_id, earlier.resolution_credits
        resolved = client.resolve_hashtag_id(args.hashtag_name)
        self.log.info(
            "Resolved hashtag name %r to id %s with %d search call(s) costing %d credits",
            args.hashtag_name,
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
        with contextlib.suppress(Exception):  # lineage must never fail the task
            hook_url = self.hook.base_url
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
        """The same datasets as at start (the folder and the endpoint do not change during a run)."""
        return self.get_openlineage_facets_on_start()
