"""PostgreSQL for Cesar: a job store and an audio storage that many machines share.

``postgresql://`` store and storage URLs are served from here, through the same
``cesar_job_stores`` and ``cesar_storage`` hooks as every other store. It is its own
package, beside ``cesar_core`` rather than in it, so that the core never imports the
driver (psycopg 3, installed by the ``postgres`` extra); :mod:`cesar_postgres.plugin`
imports it only when such a URL is opened.
"""

from __future__ import annotations

__all__ = ["CHANNEL"]

#: The LISTEN/NOTIFY channel on which a queued job is announced.
CHANNEL = "cesar_jobs"
