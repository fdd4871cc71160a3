"""Per-page profile of our operator's hot path, by ``perf_counter`` wrappers installed in the
benchmark's own process only (the package is not edited).

Each wrapped function is charged its *exclusive* time (its own time minus that of wrapped functions
it calls), so the steps add up without double counting; what no wrapper covers (the loop itself,
budget checks, Airflow's ``execute`` wrapper) is reported as the rest of the window. Functions that
a newer version of the package no longer has are simply not wrapped (listed as absent).
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable
from typing import Any

#: (module, class or None for a module-level function, attribute, step label, phase)
#: phase: "setup" runs once before the first page, "page" once per page, "finish" once at the end.
STEPS: tuple[tuple[str, str | None, str, str, str], ...] = (
    (
        "airflow_provider_unifapi.hooks.unifapi",
        "UnifAPIHook",
        "get_conn",
        "connection lookup + client",
        "setup",
    ),
    (
        "airflow_provider_unifapi.operators.hashtag_videos",
        "TikTokHashtagVideosOperator",
        "_run_folder",
        "output path (ObjectStoragePath, or a plain local path for file://)",
        "setup",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "__init__",
        "collector: prepare the folder, load the checkpoint",
        "setup",
    ),
    ("httpx", "Client", "send", "wait: send the request, wait for the response headers", "page"),
    (
        "airflow_provider_unifapi.client",
        "UnifAPIClient",
        "_attempt",
        "HTTP: read the body, build the request",
        "page",
    ),
    (
        "airflow_provider_unifapi.client.core",
        None,
        "decode_success",
        "parse + validate (pydantic validate_json)",
        "page",
    ),
    (
        "airflow_provider_unifapi.client",
        "UnifAPIClient",
        "get_video_page",
        "client: retry wrapper, argument checks",
        "page",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "_keep",
        "dedupe + serialise the new records",
        "page",
    ),
    (
        "airflow_provider_unifapi.storage.run_folder",
        "RunFolder",
        "add_page",
        "write: the page into its part",
        "page",
    ),
    (
        "airflow_provider_unifapi.storage.run_folder",
        "RunFolder",
        "stage_page",
        "write: stage the page file",
        "page",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "_close_part",
        "write: close a part",
        "page",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "_compact",
        "write: compact pages into a part",
        "page",
    ),
    (
        "airflow_provider_unifapi.storage.checkpoint",
        "CheckpointStore",
        "save",
        "write: checkpoint commit",
        "page",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "_log_page",
        "log one line per page",
        "page",
    ),
    (
        "airflow_provider_unifapi.collector",
        "HashtagVideoCollector",
        "_finish",
        "last part + manifest",
        "finish",
    ),
)

_seconds: dict[str, float] = {}
_calls: dict[str, int] = {}
_absent: list[str] = []
_stack: list[float] = []  # time spent in wrapped callees, per active wrapped frame
_installed = False
#: perf_counter marks: window opened, first page call started, last page call ended
_marks: dict[str, float] = {}
_PAGE_CALL = "UnifAPIClient.get_video_page"


def _wrap(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        _stack.append(0.0)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            inner = _stack.pop()
            _seconds[key] = _seconds.get(key, 0.0) + spent - inner
            if key == _PAGE_CALL:
                _marks.setdefault("first_page", start)
                _marks["last_page"] = start + spent
            _calls[key] = _calls.get(key, 0) + 1
            if _stack:
                _stack[-1] += spent

    return timed


def install() -> None:
    """Wrap every step that exists (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    for module_name, class_name, attribute, _label, _phase in STEPS:
        key = f"{class_name + '.' if class_name else ''}{attribute}"
        module = importlib.import_module(module_name)
        owner: Any = getattr(module, class_name, None) if class_name else module
        fn = getattr(owner, attribute, None) if owner is not None else None
        if fn is None:
            _absent.append(f"{module_name}.{key}")
            continue
        setattr(owner, attribute, _wrap(key, fn))


def mark_start() -> None:
    """Called as the window opens: what comes before the first page call is set-up."""
    _marks["window"] = time.perf_counter()


def report() -> dict[str, Any]:
    """``{"steps": [{key, label, calls, seconds}], "absent": [...], "setup_s", "loop_s", "teardown_s"}``.

    Step seconds are exclusive. ``setup_s`` runs from the window's start to the first page call
    (connection, client, folder, checkpoint), ``loop_s`` from there to the end of the last page call
    plus the bookkeeping of that page, ``teardown_s`` the rest (measured by the caller).
    """
    steps = []
    for _module, class_name, attribute, label, phase in STEPS:
        key = f"{class_name + '.' if class_name else ''}{attribute}"
        if key in _seconds:
            steps.append(
                {"key": key, "label": label, "phase": phase, "calls": _calls[key], "seconds": _seconds[key]}
            )
    now = time.perf_counter()
    window = _marks.get("window", now)
    first = _marks.get("first_page", window)
    return {
        "steps": steps,
        "absent": list(_absent),
        "setup_s": first - window,
        "loop_and_teardown_s": now - first,
    }
