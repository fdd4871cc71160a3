"""What the sandbox answers: the :class:`Reply` the HTTP layer writes, JSON error bodies, the HTML
pages a proxy sends, and the billed faults that break a reply after it was computed and charged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_unifapi.sandbox.data import PageSource
from airflow_provider_unifapi.sandbox.faults import FaultRule

JSON = "application/json"

#: ``(generation, page source, start, limit, max_credits)`` of the page a sequential client asks for next.
PrefetchHint = tuple[int, PageSource, int, int, int | None]

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def reason(status: int) -> str:
    """HTTP reason phrase of ``status``.

    :param status: the HTTP status code.
    """
    return _REASONS.get(status, "OK" if status == 200 else "Error")


@dataclass
class Reply:
    """What to send back.

    ``action`` tells the HTTP layer to misbehave: ``"reset"`` (close with RST, send nothing),
    ``"truncate"`` (announce the full length, send half, close) or ``"drop"`` (the client already
    left; just close). ``prefetch`` names the page the client will most likely ask for next.
    """

    status: int
    body: bytes
    request_id: str
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str | None = None
    prefetch: PrefetchHint | None = None


def error_body(request_id: str, etype: str, message: str, **extra: Any) -> bytes:
    """JSON ``ErrorResponse`` envelope.

    :param request_id: the call's request id.
    :param etype: ``error.type``.
    :param message: ``error.message``.
    :param extra: more ``error`` fields (``billing``, ``issues``); ``None`` values are left out.
    """
    err: dict[str, Any] = {"type": etype, "message": message, "request_id": request_id}
    err.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps({"error": err}, separators=(",", ":")).encode("utf-8")


def html_body(status: int) -> bytes:
    """The kind of page a proxy in front of the API sends.

    :param status: the HTTP status code shown in the title.
    """
    title = f"{status} {reason(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
        f"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")


def break_reply(reply: Reply, rule: FaultRule) -> Reply:
    """Apply a billed fault (``reset``, ``truncated``, ``malformed``, ``shape``) to a reply that was
    computed, and charged, normally.

    :param reply: the normal reply.
    :param rule: the fault rule that fired for the call.
    """
    if rule.kind == "reset":
        return Reply(0, b"", reply.request_id, action="reset")
    # A broken reply is not what a sequential client asks after: no page is rendered ahead.
    reply.prefetch = None
    if rule.kind == "truncated":
        reply.action = "truncate"
    elif rule.kind == "malformed":
        # A strict prefix of a JSON object never parses; the tail makes sure it is not even close.
        cut = max(16, len(reply.body) // 3)
        reply.body = reply.body[:cut] + b' \x1f<!-- upstream reset: garbage follows --> {"id": '
        reply.content_type = JSON
    else:
        reply.body = _break_shape(reply.body, rule.variant)
    return reply


def _break_shape(body: bytes, variant: str) -> bytes:
    """Valid JSON that breaks the schema: no ``id`` in the records, or no ``pagination``."""
    doc = json.loads(body)
    if "error" in doc:
        doc["error"].pop("type", None)
    elif variant == "missing_id" and isinstance(doc.get("data"), dict):
        doc["data"].pop("id", None)
    elif variant == "missing_id" and doc.get("data"):
        for item in doc["data"]:
            item.pop("id", None)
    else:  # missing_pagination, or an empty page where there is no id to drop
        doc.pop("pagination" if "pagination" in doc else "billing", None)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
