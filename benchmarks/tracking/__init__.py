"""Tracking benchmark (``make bench-tracking``): hashtags collected day after day over the sandbox's
timeline feed; credits per new video, recall that day and eventually, duplicates across days.

The harness is ``__main__`` / ``runner``; the truth ``truth``; the figures ``figures``; the report
``report``. Contestants plug in through ``contestant.REGISTRY`` (see ``contestant`` for the
``run_day(ctx) -> DayResult`` / ``delivered(ctx) -> Delivery`` contract).
"""
