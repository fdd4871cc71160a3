"""Object-storage side of the operators, on any ``ObjectStoragePath`` / UPath; imports nothing from Airflow."""
