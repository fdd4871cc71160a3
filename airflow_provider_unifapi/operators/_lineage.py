"""OpenLineage for both collection operators, imported only when that provider asks (README, "Lineage")."""

from __future__ import annotations

import contextlib
from typing import Any

from airflow.providers.common.compat.openlineage.facet import (
    Dataset,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    RunFacet,
)
from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset
from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define

from airflow_provider_unifapi._compat import Asset, ObjectStoragePath
from airflow_provider_unifapi.client import DEFAULT_BASE_URL
from airflow_provider_unifapi.collector import dollars
from airflow_provider_unifapi.storage.run_folder import RunFolder

CREDITS_FACET = "unifapi_credits"
_SCHEMA = "https://github.com/unifapi/airflow-provider-unifapi/blob/main/README.md#lineage"


@define
class UnifAPICreditsRunFacet(RunFacet):
    """What a run paid, in UnifAPI credits (1 credit = $0.001): the summary's keys, camel-cased
    (README, "Output layout and the summary"); ``creditsSpent`` is what ``max_credits`` counts."""

    hashtagId: str | None
    records: int
    pages: int
    creditsCharged: int
    possiblyBilledCredits: int
    creditsSpent: int
    dollarsSpent: str
    maxCredits: int | None
    stopReason: str | None
    tries: int
    reused: bool

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA


def _base_url(op: Any) -> str:
    with contextlib.suppress(Exception):  # lineage must never fail the task
        return str(op.hook.base_url)
    return DEFAULT_BASE_URL


def _endpoint(op: Any, hashtag_id: str) -> Any:
    return Dataset(namespace=_base_url(op), name=f"/tiktok/hashtags/{hashtag_id}/videos")


def _given_id(op: Any) -> str | None:
    value = getattr(op, "hashtag_id", None)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value.isdigit() else None


def lineage_on_start(op: Any) -> Any:
    """START: the inputs whose ids were given (names are resolved later); outputs only once written."""
    given = getattr(op, "hashtags", None)
    ids = [_given_id(op)] if given is None else [str(h) for h in given if str(h).isdigit()]
    if isinstance(given, str):
        ids = []
    return OperatorLineage(inputs=[_endpoint(op, i) for i in ids if i], outputs=[])


def file_dataset(path: Any, facets: dict[str, Any] | None = None) -> Any:
    """The OpenLineage dataset of one file (an ``ObjectStoragePath``), named as Airflow's lineage names it."""
    named = None
    with contextlib.suppress(Exception):  # no converter registered for the scheme
        named = translate_airflow_asset(Asset(uri=str(path)), None)
    if named is not None:
        namespace, name = named.namespace, named.name
    else:  # common.io FileTransferOperator's naming
        namespace, name = path.namespace, path.key
    return OutputDataset(namespace=namespace, name=name, outputFacets=facets or {})


def _outputs(op: Any, summary: dict[str, Any]) -> list[Any]:
    url = summary.get("output_path")
    if not url:
        return []
    folder = ObjectStoragePath(url, conn_id=op.output_conn_id)
    manifest = RunFolder(folder, "jsonl").read_manifest()
    if manifest is None:
        return []  # incomplete: nothing a reader may use yet
    datasets = []
    for part in manifest.get("parts", []):
        path = folder / part["name"]
        size = None
        with contextlib.suppress(Exception):
            size = int(path.stat().st_size)
        stats = OutputStatisticsOutputDatasetFacet(rowCount=part["records"], size=size, fileCount=1)
        datasets.append(file_dataset(path, {"outputStatistics": stats}))
    return datasets


def credits_facet(op: Any, summary: dict[str, Any]) -> UnifAPICreditsRunFacet:
    """The ``unifapi_credits`` run facet of a run's summary (``max_credits`` from the operator)."""
    charged = int(summary.get("credits_charged") or 0)
    possibly = int(summary.get("possibly_billed_credits") or 0)
    max_credits = op.max_credits
    with contextlib.suppress(TypeError, ValueError):
        max_credits = None if max_credits in (None, "") else int(max_credits)
    return UnifAPICreditsRunFacet(
        hashtagId=summary.get("hashtag_id"),
        records=int(summary.get("records") or 0),
        pages=int(summary.get("pages") or 0),
        creditsCharged=charged,
        possiblyBilledCredits=possibly,
        creditsSpent=charged + possibly,
        dollarsSpent=dollars(charged + possibly),
        maxCredits=max_credits if isinstance(max_credits, int) else None,
        stopReason=summary.get("stop_reason"),
        tries=int(summary.get("tries") or 0),
        reused=bool(summary.get("reused", False)),
    )


def _batch_facet(op: Any, manifest: dict[str, Any]) -> UnifAPICreditsRunFacet:
    t = manifest["totals"]
    rows = manifest.get("hashtags", [])
    summary = {
        **t,
        "pages": sum(int(r.get("pages") or 0) for r in rows),
        # the names' resolution is part of what the batch spent
        "possibly_billed_credits": int(t.get("possibly_billed_credits") or 0)
        + int(t.get("resolution_credits") or 0),
        "reused": bool(rows) and all(r.get("reused") for r in rows),
    }
    return credits_facet(op, summary)


def lineage_on_end(op: Any) -> Any:
    """COMPLETE / FAIL: resolved inputs, parts written, credits (a batch's from its batch manifest)."""
    summary: dict[str, Any] | None = getattr(op, "_run_summary", None)
    facet: UnifAPICreditsRunFacet | None
    if summary is not None and "hashtags" in summary:
        rows = [r for r in summary["hashtags"] if r.get("hashtag_id")]
        facet = _batch_facet(op, summary)
    else:
        hashtag_id = (
            (summary or {}).get("hashtag_id") or getattr(op, "_resolved_hashtag_id", None) or _given_id(op)
        )
        rows = [{**(summary or {}), "hashtag_id": hashtag_id}] if hashtag_id else []
        facet = None if summary is None else credits_facet(op, summary)
    inputs = [_endpoint(op, r["hashtag_id"]) for r in rows]
    if facet is None:
        return OperatorLineage(inputs=inputs, outputs=[])
    outputs: list[Any] = []
    with contextlib.suppress(Exception):  # lineage must never fail the task
        outputs = [dataset for r in rows for dataset in _outputs(op, r)]
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets={CREDITS_FACET: facet})
