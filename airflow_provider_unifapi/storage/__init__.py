"""Object-storage side of the operator: staged pages, part files, checkpoint, manifest, dedupe ids.

Works on any ``ObjectStoragePath`` / universal-pathlib path (``file://``, ``s3://``, ``gs://``...).
Imports nothing from Airflow.
"""
