"""Background jobs: the worker and the typed kinds it runs. Knows nothing of resets.

kinds.py   Kind[P]: a job kind's name, payload type and retry policy; Registry
run.py     JobRun and how a handler ends: Retry, Permanent
worker.py  Worker: claim, run, settle, in lanes
"""
