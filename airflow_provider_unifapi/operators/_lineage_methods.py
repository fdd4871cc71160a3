"""OpenLineage methods shared by both collection operators (the OpenLineage provider calls them).

Kept apart from :mod:`._lineage`, which imports the optional OpenLineage provider: these methods
import it only when called, so the provider stays optional.
"""

from __future__ import annotations

from typing import Any


class CollectionLineage:
    """``get_openlineage_facets_*`` of an operator that keeps its run's summary in ``_run_summary``."""

    def get_openlineage_facets_on_start(self) -> Any:
        """START: the endpoints of the hashtags given by id (a name is resolved during execute)."""
        from airflow_provider_unifapi.operators._lineage import lineage_on_start

        return lineage_on_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """COMPLETE: the resolved inputs, every part written (rows, bytes), the credits."""
        from airflow_provider_unifapi.operators._lineage import lineage_on_end

        return lineage_on_end(self)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """FAIL: a failed try spent credits too: the same facets, with what it had when it stopped."""
        from airflow_provider_unifapi.operators._lineage import lineage_on_end

        return lineage_on_end(self)
