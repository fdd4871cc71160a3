"""The rate-limit scenario (``make bench-fleet``): N hashtags, latency L +- J, workspace limit R.

Layout: ``__main__`` (CLI, matrix, smoke), ``config`` (scenario, seeded catalogue), ``runner`` (one
cell: sandbox reset, contestant, ledger figures, output check), ``child`` (the one-process
contestants: ours batched, dlt, the ceiling), ``mapped`` (the mapped contestants' DAG templates and
their Airflow stack), ``dag_helpers`` (what the HttpOperator DAG imports), ``measure`` (RSS, ledger,
truth), ``report`` (BENCHMARKS.md section, results.json, verdicts).
"""
