"""PostgreSQL: the request path's batch of `requested` jobs as one function call

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

storage.intake queues a batch of jobs with `SELECT * FROM resetrelay_intake(...)`,
one statement in autocommit: one round trip to the server instead of four (BEGIN,
the advisory locks, the INSERT, COMMIT). The body is the SQL storage.intake ran
itself before. The locks come first, in a statement of their own: a VOLATILE
PL/pgSQL function takes a fresh snapshot for each statement it runs (READ
COMMITTED), so the INSERT's check of `inbound_events` sees what a claim holding
the exclusive lock committed. SQLite has no functions; its path is unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Keys spelled as storage.intake.dedupe_key and storage.inbound.claim spell them.
FUNCTION = """
CREATE OR REPLACE FUNCTION resetrelay_intake(
    p_source text, p_kind text, p_max_attempts integer, p_now timestamptz,
    p_ids json, p_payloads json
) RETURNS SETOF text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_source || ':' || i, 0))
    FROM json_array_elements_text(p_ids) AS i;
    RETURN QUERY
    INSERT INTO jobs (kind, payload, status, attempts, max_attempts, run_after,
                      created_at, updated_at, dedupe_key)
    SELECT p_kind, v.payload, 'queued', 0, p_max_attempts, p_now, p_now, p_now,
           p_source || ':' || v.event_id
    FROM ROWS FROM (json_array_elements_text(p_ids), json_array_elements(p_payloads))
        AS v (event_id, payload)
    WHERE NOT EXISTS (SELECT 1 FROM inbound_events e
                      WHERE e.source = p_source AND e.event_id = v.event_id)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING dedupe_key::text;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS "
            "resetrelay_intake(text, text, integer, timestamptz, json, json)"
        )
