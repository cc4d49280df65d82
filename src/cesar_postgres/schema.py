"""The job tables' schema, as numbered migrations applied in order when a store opens.

Each entry is one migration: statements run in one transaction, under an advisory lock, and
recorded in the schema version table (see :mod:`cesar_postgres.database`). Never edit a
migration that has shipped; add the next one.
"""

from __future__ import annotations

from . import live

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE cesar_jobs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            source JSON NOT NULL,
            options JSON NOT NULL,
            metadata JSON NOT NULL,
            idempotency_key TEXT UNIQUE,
            webhook_url TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            started_at TIMESTAMPTZ,
            completed_at TIMESTAMPTZ,
            run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
            progress INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            lease_token TEXT,
            lease_worker TEXT,
            lease_expires_at TIMESTAMPTZ,
            last_token TEXT,
            result JSON,
            error_code TEXT,
            error_message TEXT,
            webhook JSON
        )""",
        "CREATE INDEX cesar_jobs_queued ON cesar_jobs (seq) WHERE state = 'queued'",
        "CREATE INDEX cesar_jobs_leased ON cesar_jobs (lease_expires_at) "
        "WHERE state = 'processing'",
        "CREATE INDEX cesar_jobs_state ON cesar_jobs (state, seq)",
        "CREATE INDEX cesar_jobs_finished ON cesar_jobs (completed_at) "
        "WHERE state IN ('completed', 'error', 'cancelled')",
    ),
    (
        # Inline audio (small uploads): written with its job, dropped by the database itself
        # once the job ends (the trigger) or goes (the cascade).
        "CREATE TABLE cesar_job_audio (job_id TEXT PRIMARY KEY "
        "REFERENCES cesar_jobs (id) ON DELETE CASCADE, data BYTEA NOT NULL)",
        # Audio is compressed already, or is PCM that compresses poorly: skip the attempt.
        "ALTER TABLE cesar_job_audio ALTER COLUMN data SET STORAGE EXTERNAL",
        "CREATE FUNCTION cesar_job_audio_ended() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM cesar_job_audio WHERE job_id = NEW.id; RETURN NULL; END $$",
        "CREATE TRIGGER cesar_job_audio_ended AFTER UPDATE OF state ON cesar_jobs "
        "FOR EACH ROW WHEN (NEW.state IN ('completed', 'error', 'cancelled')) "
        "EXECUTE FUNCTION cesar_job_audio_ended()",
    ),
    (
        # Audio a job keeps for playback (source.keep, from keep_audio) outlives its end and
        # goes with the job (the cascade); older jobs have no "keep" and drop it.
        "DROP TRIGGER cesar_job_audio_ended ON cesar_jobs",
        "CREATE TRIGGER cesar_job_audio_ended AFTER UPDATE OF state ON cesar_jobs "
        "FOR EACH ROW WHEN (NEW.state IN ('completed', 'error', 'cancelled') "
        "AND NOT coalesce((NEW.source ->> 'keep')::boolean, false)) "
        "EXECUTE FUNCTION cesar_job_audio_ended()",
    ),
    live.MIGRATION,
)
