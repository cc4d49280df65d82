"""The job store contract, as pytest tests that every store must pass.

Our own stores run it, and so can a third-party store: subclass :class:`JobStoreContract`
in a test module and implement ``open_store``::

    from cesar_core.testing import JobStoreContract

    class TestMyStore(JobStoreContract):
        async def open_store(self, tmp_path):
            return await MyStore.open(...)

Every test gets a fresh, empty store (``tmp_path`` is a new directory for each). A store
reached over a network may raise the timing knobs in its class (``short_lease``,
``retry_delay``, ``patience``, ``poll_interval``, ``clock_tolerance``: see
:class:`ContractBase <cesar_core.testing._base.ContractBase>`). The tests live in one
module per topic; this package puts them together. Importing it needs pytest; the rest of
``cesar_core`` never imports it.
"""

from __future__ import annotations

from ._base import ERROR, TRANSCRIPT, Scenario, claimed, new_job
from .audio import InlineAudioContract
from .batches import BatchClaimsContract
from .claims import ClaimsContract
from .endings import EndingsContract
from .live import LiveContract
from .records import RecordsContract

__all__ = ["ERROR", "TRANSCRIPT", "JobStoreContract", "Scenario", "claimed", "new_job"]


class JobStoreContract(
    RecordsContract,
    ClaimsContract,
    EndingsContract,
    InlineAudioContract,
    BatchClaimsContract,
    LiveContract,
):
    """Behaviour every :class:`~cesar_core.protocols.JobStore` must have."""
