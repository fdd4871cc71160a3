"""The operator's arguments, checked once they are final (after Jinja and XCom rendering).

The operator's constructor only stores what it is given: a template field may still be a Jinja
string, an ``XComArg`` or a mapped value there. Everything is checked here, at the start of
``execute``, before any paid call, with errors that name the argument and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_unifapi.client import validate_hashtag_id, validate_limit
from airflow_provider_unifapi.collector import Budget, PagingSettings
from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.storage.parts import check_format

_INTEGER = re.compile(r"-?[0-9]{1,18}")


def check_count(argument: str, value: Any, *, minimum: int) -> int | None:
    """``None``, or an int >= ``minimum``; a rendered template's string of digits is accepted.

    :param argument: the argument's name, for the error.
    :param value: the value as given or rendered.
    :param minimum: the smallest accepted value.
    :raises UnifAPIInputError: naming the argument and what it accepts.
    """
    if value is None:
        return None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())  # Jinja renders to text
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UnifAPIInputError(argument, f"must be None or an integer >= {minimum}, got {value!r}")
    return value


def _blank(value: Any) -> bool:
    return value is None or value == ""


@dataclass(frozen=True)
class CheckedArguments:
    """The operator's arguments once checked: what the run is made of.

    :param hashtag_id: the numeric id, or ``None`` when ``hashtag_name`` is to be resolved.
    :param hashtag_name: the name to resolve, or ``None``.
    :param budget: the run's hard limits.
    :param paging: page size, empty-page bound, what a low balance does.
    :param output_path: the folder URL, or ``None`` for XCom mode.
    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
    :param records_per_part: records per part file.
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    """

    hashtag_id: str | None
    hashtag_name: str | None
    budget: Budget
    paging: PagingSettings
    output_path: str | None
    output_format: str
    records_per_part: int
    gzip_level: int


def check_arguments(op: Any) -> CheckedArguments:
    """Check every argument of a :class:`TikTokHashtagVideosOperator` (rendered) and return them.

    :param op: the operator, after its template fields were rendered.
    :raises UnifAPIInputError: naming the first bad argument and the fix.
    """
    hashtag_id, hashtag_name = _check_hashtag(op.hashtag_id, op.hashtag_name)
    page_size = validate_limit(check_count("page_size", op.page_size, minimum=1), "page_size")
    budget = Budget(
        max_records=check_count("max_records", op.max_records, minimum=1),
        max_pages=check_count("max_pages", op.max_pages, minimum=1),
        max_credits=check_count("max_credits", op.max_credits, minimum=1),
        min_balance=check_count("min_balance", op.min_balance, minimum=0),
    )
    output_format = check_format(op.output_format)
    records_per_part = check_count("records_per_part", op.records_per_part, minimum=1)
    max_empty_pages = check_count("max_empty_pages", op.max_empty_pages, minimum=1)
    xcom_max_records = check_count("xcom_max_records", op.xcom_max_records, minimum=1)
    gzip_level = op.gzip_level
    if isinstance(gzip_level, bool) or not isinstance(gzip_level, int) or not 0 <= gzip_level <= 9:
        raise UnifAPIInputError("gzip_level", f"must be an integer from 0 to 9, got {gzip_level!r}")
    output_path = None if _blank(op.output_path) else op.output_path
    if not (output_path is None or isinstance(output_path, str)):
        raise UnifAPIInputError("output_path", f"must be a folder URL string or None, got {output_path!r}")
    if output_path is None:
        _check_xcom_cap(budget.max_records, xcom_max_records or 1)
    return CheckedArguments(
        hashtag_id=hashtag_id,
        hashtag_name=hashtag_name,
        budget=budget,
        paging=PagingSettings(
            page_size=page_size,
            max_empty_pages=max_empty_pages or 1,
            fail_on_low_balance=bool(op.fail_on_low_balance),
        ),
        output_path=output_path,
        output_format=output_format,
        records_per_part=records_per_part or 1,
        gzip_level=gzip_level,
    )


def _check_hashtag(hashtag_id: Any, hashtag_name: Any) -> tuple[str | None, str | None]:
    if _blank(hashtag_id) and _blank(hashtag_name):
        raise UnifAPIInputError("hashtag_id", "give hashtag_id (numeric id) or hashtag_name (name without #)")
    if not _blank(hashtag_id) and not _blank(hashtag_name):
        raise UnifAPIInputError("hashtag_name", "give hashtag_id or hashtag_name, not both")
    if not _blank(hashtag_id):
        return validate_hashtag_id(hashtag_id), None
    if not isinstance(hashtag_name, str):
        raise UnifAPIInputError("hashtag_name", f"must be the hashtag's name without #, got {hashtag_name!r}")
    return None, hashtag_name


def _check_xcom_cap(max_records: int | None, xcom_max_records: int) -> None:
    # XCom mode must know up front that it cannot pass the cap: never pay for records that could
    # not be returned.
    if max_records is None or max_records > xcom_max_records:
        raise UnifAPIInputError(
            "output_path",
            f"is not set, so records go to XCom, which holds at most xcom_max_records="
            f"{xcom_max_records}; set max_records <= {xcom_max_records}, or set output_path "
            "(e.g. 's3://bucket/tiktok/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/' or 'file:///data/tiktok/') to write any number of records",
        )
