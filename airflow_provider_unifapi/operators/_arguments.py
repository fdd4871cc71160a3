"""The operators' arguments, checked once rendered (start of ``execute``, before any paid call)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_unifapi._compat import ObjectStoragePath
from airflow_provider_unifapi.client import validate_hashtag_id, validate_limit
from airflow_provider_unifapi.collector import Budget, PagingSettings
from airflow_provider_unifapi.collector.results import HashtagTarget
from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.storage.fsio import local_folder
from airflow_provider_unifapi.storage.parts import check_format

_INTEGER = re.compile(r"-?[0-9]{1,18}")


def check_count(argument: str, value: Any, *, minimum: int) -> int | None:
    """``None``, or an int >= ``minimum``; a rendered template's string of digits is accepted."""
    if value is None:
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())  # Jinja renders to text
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UnifAPIInputError(argument, f"must be None or an integer >= {minimum}, got {value!r}")
    return value


def check_gzip_level(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise UnifAPIInputError("gzip_level", f"must be an integer from 0 to 9, got {value!r}")
    return value


def check_paging(op: Any) -> PagingSettings:
    return PagingSettings(
        page_size=validate_limit(check_count("page_size", op.page_size, minimum=1), "page_size"),
        max_empty_pages=check_count("max_empty_pages", op.max_empty_pages, minimum=1) or 1,
        fail_on_low_balance=bool(op.fail_on_low_balance),
    )


def output_folder(url: str, conn_id: str | None) -> Any:
    """The ``ObjectStoragePath`` of ``output_path`` (for ``file://`` without a connection, a UPath)."""
    try:
        return (None if conn_id else local_folder(url)) or ObjectStoragePath(url, conn_id=conn_id)
    except Exception as exc:
        raise UnifAPIInputError("output_path", f"{url!r} is not a usable object-storage URL: {exc}") from None


def writer_name(context: Any) -> str:
    """The task instance and try writing a folder, as a refused writer reads it in its error."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:
        return "a task"
    index = getattr(ti, "map_index", -1)
    mapped = f"[{index}]" if isinstance(index, int) and index >= 0 else ""
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}{mapped} try {ti.try_number}"


def parse_hashtags(value: Any) -> list[HashtagTarget]:
    """A batch's ids and names from a rendered ``hashtags``, deduplicated (case and ``#`` folded)."""
    if isinstance(value, str):
        value = _parse_list_text(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise UnifAPIInputError(
            "hashtags", f"must be a non-empty list of hashtag ids and/or names, got {value!r}"
        )
    targets: dict[str, HashtagTarget] = {}
    for entry in value:
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = str(entry)
        if not isinstance(entry, str) or not entry.strip().lstrip("#"):
            raise UnifAPIInputError("hashtags", f"holds {entry!r}: give numeric ids or names without #")
        text = entry.strip().lstrip("#")
        if text.isascii() and text.isdigit():
            targets.setdefault(text, HashtagTarget(text, hashtag_id=validate_hashtag_id(text)))
        else:
            targets.setdefault(text.lower(), HashtagTarget(text, hashtag_name=text))
    return list(targets.values())


def _parse_list_text(text: str) -> Any:
    text = text.strip()
    if not text.startswith(("[", "(")):
        return [v.strip() for v in text.split(",") if v.strip()]
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        # ``hashtags="{{ params.tags }}"`` renders a Python list: ['cats', '123']
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise UnifAPIInputError(
            "hashtags",
            f"{text[:200]!r} is neither a JSON nor a Python list; pass a list, an XComArg, or "
            "comma-separated text (with Jinja, render_template_as_native_obj=True passes the list itself)",
        ) from None


def _blank(value: Any) -> bool:
    return value is None or value == ""


@dataclass(frozen=True)
class CheckedArguments:
    """The single-hashtag operator's arguments once checked: what the run is made of."""

    target: HashtagTarget  # without hashtag_id when hashtag_name is to be resolved
    budget: Budget
    paging: PagingSettings
    output_path: str | None  # None: XCom mode
    output_format: str
    records_per_part: int
    gzip_level: int


def check_arguments(op: Any) -> CheckedArguments:
    """Every argument of a rendered :class:`TikTokHashtagVideosOperator`, or raise for the first bad one."""
    target = _check_hashtag(op.hashtag_id, op.hashtag_name)
    budget = Budget(
        max_records=check_count("max_records", op.max_records, minimum=1),
        max_pages=check_count("max_pages", op.max_pages, minimum=1),
        max_credits=check_count("max_credits", op.max_credits, minimum=1),
        min_balance=check_count("min_balance", op.min_balance, minimum=0),
    )
    output_format = check_format(op.output_format)
    records_per_part = check_count("records_per_part", op.records_per_part, minimum=1)
    xcom_max_records = check_count("xcom_max_records", op.xcom_max_records, minimum=1)
    gzip_level = check_gzip_level(op.gzip_level)
    output_path = None if _blank(op.output_path) else op.output_path
    if not (output_path is None or isinstance(output_path, str)):
        raise UnifAPIInputError("output_path", f"must be a folder URL string or None, got {output_path!r}")
    if output_path is None:
        _check_xcom_cap(budget.max_records, xcom_max_records or 1)
    return CheckedArguments(
        target=target,
        budget=budget,
        paging=check_paging(op),
        output_path=output_path,
        output_format=output_format,
        records_per_part=records_per_part or 1,
        gzip_level=gzip_level,
    )


def _check_hashtag(hashtag_id: Any, hashtag_name: Any) -> HashtagTarget:
    if _blank(hashtag_id) and _blank(hashtag_name):
        raise UnifAPIInputError("hashtag_id", "give hashtag_id (numeric id) or hashtag_name (name without #)")
    if not _blank(hashtag_id) and not _blank(hashtag_name):
        raise UnifAPIInputError("hashtag_name", "give hashtag_id or hashtag_name, not both")
    if not _blank(hashtag_id):
        checked = validate_hashtag_id(hashtag_id)
        return HashtagTarget(checked, hashtag_id=checked)
    if not isinstance(hashtag_name, str):
        raise UnifAPIInputError("hashtag_name", f"must be the hashtag's name without #, got {hashtag_name!r}")
    return HashtagTarget(hashtag_name, hashtag_name=hashtag_name)


def _check_xcom_cap(max_records: int | None, xcom_max_records: int) -> None:
    # Up front: never pay for records XCom could not return.
    if max_records is None or max_records > xcom_max_records:
        raise UnifAPIInputError(
            "output_path",
            f"is not set, so records go to XCom, which holds at most xcom_max_records="
            f"{xcom_max_records}; set max_records <= {xcom_max_records}, or set output_path "
            "(e.g. 's3://bucket/tiktok/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/' or 'file:///data/tiktok/') to write any number of records",
        )
