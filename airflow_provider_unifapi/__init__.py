"""Apache Airflow provider for UnifAPI (TikTok hashtag videos, paid per record).

Importing the package is cheap on purpose: Airflow imports it while listing providers.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
