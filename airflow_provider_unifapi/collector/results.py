"""What one hashtag's run is given and what it ends with: :class:`HashtagTarget` and :class:`HashtagResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_unifapi.collector.budget import credits_spent
from airflow_provider_unifapi.collector.loop import RunStopped
from airflow_provider_unifapi.exceptions import UnifAPIError, is_retryable
from airflow_provider_unifapi.models import HashtagStatus


@dataclass(frozen=True)
class HashtagTarget:
    """One hashtag as the user gave it.

    :param key: how the user gave it (the id, or the name), used to name it in results and failures.
    :param hashtag_id: the numeric id, if given or resolved.
    :param hashtag_name: the name, if given.
    :param same_as: other inputs of a batch that turned out to be this hashtag (run once, as this one).
    """

    key: str
    hashtag_id: str | None = None
    hashtag_name: str | None = None
    same_as: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``#name (id 123)``, or the id: how log lines name the hashtag."""
        if self.hashtag_name and self.hashtag_id:
            return f"#{self.hashtag_name} (id {self.hashtag_id})"
        return self.hashtag_id or f"#{self.hashtag_name}"


@dataclass(frozen=True)
class HashtagResult:
    """How one hashtag's run ended: what both operators turn into their return value.

    :param target: the hashtag (its id once known).
    :param status: done, stopped, skipped or failed.
    :param summary: the run's summary (what ``_manifest.json`` holds, without the parts' details).
    :param reused: the folder held a finished run: nothing was paid for this time.
    :param error: the failure (``failed`` only).
    """

    target: HashtagTarget
    status: HashtagStatus
    summary: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    error: UnifAPIError | RunStopped | None = None

    @property
    def credits_spent(self) -> int:
        """Confirmed + possibly billed credits over all tries (name resolution included)."""
        return credits_spent(self.summary)

    @property
    def retryable(self) -> bool:
        """A failure a retry of the task may mend (transient, possibly billed, out of balance)."""
        e = self.error
        return isinstance(e, RunStopped) or (
            isinstance(e, UnifAPIError) and (is_retryable(e) or e.may_have_been_billed)
        )

    def row(self) -> dict[str, Any]:
        """The hashtag's line in a batch's result and ``_batch_manifest.json`` (JSON-safe)."""
        s = self.summary
        error = None
        if self.error is not None:
            error = {
                "message": str(self.error),
                "type": type(self.error).__name__,
                "retryable": self.retryable,
            }
        return {
            "hashtag": self.target.key,
            "hashtag_id": self.target.hashtag_id or s.get("hashtag_id"),
            "hashtag_name": self.target.hashtag_name,
            "status": self.status.value,
            "reused": self.reused,
            "same_as": list(self.target.same_as),
            "records": int(s.get("records") or 0),
            "pages": int(s.get("pages") or 0),
            "credits_charged": int(s.get("credits_charged") or 0),
            "possibly_billed_credits": int(s.get("possibly_billed_credits") or 0),
            "credits_spent": self.credits_spent,
            "credits_spent_this_try": int(s.get("credits_spent_this_try", self.credits_spent)),
            "stop_reason": s.get("stop_reason"),
            "output_path": s.get("output_path"),
            "files": s.get("files", []),
            "error": error,
        }
