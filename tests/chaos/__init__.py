"""Reliability suite: seeded chaos runs, kill-and-resume, concurrency under a rate limit, soak."""
