"""Object-storage side of the operator, on any ``ObjectStoragePath`` / universal-pathlib path.

Imports nothing from Airflow.
"""
