"""`komas bench`: our worker against the naive design, measured side by side in the same run.

How it measures (the same for every variant, so the ratios are fair):

- Each run gets a scratch SQLite database in a temporary directory (seeded with bots and presets
  before the worker starts) and a queue of its own on the configured Redis.
- The worker runs as a subprocess (`python -m worker.bench.worker_proc`) so that its peak RSS is its
  own: *ours* is `worker.runtime.runner.build_worker` unchanged, *naive* is one arq job per event and one
  ORM transaction per event through the managers, *noop* is arq running a job that does nothing.
- The worker is started and ready (migrated, polling) before the clock starts; events are then
  published while it runs. End to end = first publish call → last commit.
- A commit is observed, not assumed: a thread polls `processed_events` on a read-only connection
  every few milliseconds; an event counts as committed when its id is first visible there (so the
  figure is an upper bound, late by at most one poll). Latency = that moment - the start of the
  publish call that carried the event.
- arq's no-op rate is a drain rate: jobs queued first, then a burst worker times its first job
  start → queue empty (the best arq can do on this Redis, with the same worker settings).
"""
