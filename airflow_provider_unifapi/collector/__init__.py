"""Paging hashtags into outputs under budgets, without Airflow: the operators' engine (see README, "Code layout")."""

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
