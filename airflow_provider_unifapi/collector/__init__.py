"""The paging loop behind the operator (no Airflow): budgets, outputs, and the loop itself.

- :mod:`.budget`: the run's hard limits and what they allow for the next call;
- :mod:`.output`: where records go, an object-storage folder or XCom, behind one protocol;
- :mod:`.progress`: the log lines a person reads (money in credits and dollars);
- :mod:`.loop`: :class:`HashtagVideoCollector`, which pages one hashtag under a budget.
"""

from __future__ import annotations

from airflow_provider_unifapi.collector.budget import Budget, CallPlan, dollars
from airflow_provider_unifapi.collector.loop import (
    HashtagVideoCollector,
    PagingSettings,
    RunStart,
    RunStopped,
)
from airflow_provider_unifapi.collector.output import ObjectStorageOutput, RunOutput, XComOutput
from airflow_provider_unifapi.collector.progress import ProgressLog

__all__ = [
    "Budget",
    "CallPlan",
    "HashtagVideoCollector",
    "ObjectStorageOutput",
    "PagingSettings",
    "ProgressLog",
    "RunOutput",
    "RunStart",
    "RunStopped",
    "XComOutput",
    "dollars",
]
