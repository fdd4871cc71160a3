"""Benchmark suite: our operator against the raw-HTTP ceiling, HttpOperator and dlt (``make bench``).

Run ``python -m benchmarks.run --help``; results go to ``BENCHMARKS.md`` and ``benchmarks/chart.png``.
Nothing in here is imported by the provider package.
"""
