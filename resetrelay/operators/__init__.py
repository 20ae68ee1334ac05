"""Operator commands: what `resetrelay` offers the people who run it (inspect, revoke, jobs, forget, bulk-reset)."""
