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
from typing import Any, Callable, Optional

#: (module, class or None for a module-level function, attribute, step label)
STEPS: tuple[tuple[str, Optional[str], str, str], ...] = (
    ("httpx", "Client", "send", "wait: send the request, wait for the response headers"),
    ("airflow_provider_unifapi.client", "UnifAPIClient", "_attempt", "HTTP: read the body, build the request"),
    ("airflow_provider_unifapi.client", None, "decode_success", "parse + validate (pydantic validate_json)"),
    ("airflow_provider_unifapi.client", "UnifAPIClient", "get_video_page", "client: retry wrapper, argument checks"),
    ("airflow_provider_unifapi.collector", "HashtagVideoCollector", "_keep", "dedupe + serialise the new records"),
    ("airflow_provider_unifapi.storage.run_folder", "RunFolder", "stage_page", "write: stage the page file"),
    ("airflow_provider_unifapi.collector", "HashtagVideoCollector", "_compact", "write: compact pages into a part"),
    ("airflow_provider_unifapi.storage.checkpoint", "CheckpointStore", "save", "write: checkpoint"),
    ("airflow_provider_unifapi.collector", "HashtagVideoCollector", "_log_page", "log one line per page"),
    ("airflow_provider_unifapi.collector", "HashtagVideoCollector", "_finish", "finish: last part + manifest"),
)

_seconds: dict[str, float] = {}
_calls: dict[str, int] = {}
_absent: list[str] = []
_stack: list[float] = []  # time spent in wrapped callees, per active wrapped frame
_installed = False


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
    for module_name, class_name, attribute, _label in STEPS:
        key = f"{class_name + '.' if class_name else ''}{attribute}"
        module = importlib.import_module(module_name)
        owner: Any = getattr(module, class_name, None) if class_name else module
        fn = getattr(owner, attribute, None) if owner is not None else None
        if fn is None:
            _absent.append(f"{module_name}.{key}")
            continue
        setattr(owner, attribute, _wrap(key, fn))


def report() -> dict[str, Any]:
    """``{"steps": [{key, label, calls, seconds}], "absent": [...]}`` (exclusive seconds)."""
    steps = []
    for module_name, class_name, attribute, label in STEPS:
        key = f"{class_name + '.' if class_name else ''}{attribute}"
        if key in _seconds:
            steps.append({"key": key, "label": label, "calls": _calls[key], "seconds": _seconds[key]})
    return {"steps": steps, "absent": list(_absent)}
