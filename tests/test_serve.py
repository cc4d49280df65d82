"""``cesar serve`` start-up, run as a real process: failures exit, the banner tells the truth,
``/docs`` works offline, and output piped into a closed reader ends quietly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import DATA
from .http_helpers import SERVE, free_port, serving
from .queue_helpers import Site, submit

CESAR = SERVE[:-1]


def start(root: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVE, *args],
        env={**os.environ, "CESAR_DATA_DIR": str(root), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    """The exit status and stderr of ``process``; SIGKILLed (and failed) if it hangs."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"cesar serve hung and ignored SIGTERM; stderr: {err}")
        pytest.fail(f"cesar serve hung after a failed start-up; stderr: {err}")
    return process.returncode, err


def test_a_failed_start_up_exits_with_the_error(tmp_path: Path) -> None:
    process = start(tmp_path, "--port", str(free_port()), CESAR_TRANSCRIBER="nope")
    code, err = finish(process)
    assert code == 1, err
    assert "No transcriber is called 'nope'" in err
    assert "cesar serve on" not in err
    assert "Traceback" not in err


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = finish(start(tmp_path, "--port", str(port)))
    assert code == 1, err
    assert "cesar serve on" not in err
    assert f"127.0.0.1:{port} is already in use" in err
    assert "--port" in err  # what to do about it
    assert "Traceback" not in err


def test_the_banner_appears_once_the_server_answers(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, "--port", str(port), "--no-worker")
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith(f"cesar serve on http://127.0.0.1:{port}"), line
        # No retry: the banner promises that the server is listening now.
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        code, err = finish(process)
    assert code == 0, err


def test_settings_reach_the_server_without_the_environment(tmp_path: Path) -> None:
    """Flags are handed to the app as settings: the server reports the model it was given."""
    with serving(tmp_path, "--no-worker", "--model", "tiny.en") as url:
        body = httpx.get(f"{url}/ready").json()
    assert body["model"] == "tiny.en"
    assert body["worker"] is False


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CESAR_PORT", "abc", "a whole number"),
        ("CESAR_MAX_UPLOAD_BYTES", "2 gigs", "a size in bytes"),
        ("CESAR_GRACE_SECONDS", "soon", "a number"),
    ],
)
def test_a_malformed_variable_is_named(variable: str, value: str, expected: str) -> None:
    result = subprocess.run(
        [*CESAR, "jobs", "list"],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert variable in result.stderr
    assert expected in result.stderr
    assert repr(value) in result.stderr
    assert "unexpected" not in result.stderr


def test_docs_page_needs_nothing_but_the_server(tmp_path: Path) -> None:
    with serving(tmp_path, "--no-worker") as url:
        page = httpx.get(f"{url}/docs")
        assert page.status_code == 200
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        urls = [a or b for a, b in refs]
        assert any(u.endswith(".js") for u in urls), page.text
        assert any(u.endswith(".css") for u in urls), page.text
        for ref in urls:
            assert ref.startswith("/"), f"/docs loads {ref} from elsewhere"
            assert not ref.startswith("//"), f"/docs loads {ref} from elsewhere"
            answer = httpx.get(f"{url}{ref}")
            assert answer.status_code == 200, ref
            assert answer.content, ref
        assert httpx.get(f"{url}/docs/oauth2-redirect").status_code == 200


def into_a_closed_pipe(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``args`` with stdout a pipe whose reader is gone, as in ``args | head -0``;
    return the exit status and stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            args, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120
        )
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    "command",
    [["jobs", "list"], ["jobs", "list", "--json"], ["models"], ["plugins"], ["--help"]],
)
def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, command: list[str]) -> None:
    site = Site.local(tmp_path)
    submit(site, 3, DATA / "speech_en.wav")
    env = {**os.environ, "CESAR_DATA_DIR": str(tmp_path), "CESAR_STORE": site.store}
    code, err = into_a_closed_pipe([*CESAR, *command], env)
    assert code in (0, 141), err
    assert err == ""


def test_transcribe_into_a_closed_pipe_ends_quietly() -> None:
    code, err = into_a_closed_pipe(
        [*CESAR, "transcribe", "-q", str(DATA / "speech_en.wav")], {**os.environ}
    )
    assert code in (0, 141), err
    assert err == ""


def test_connections_to_the_listener_send_at_once() -> None:
    """asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets made with
    ``IPPROTO_TCP``; on a listener made without it, every small response waited for the
    client's delayed acknowledgement, about 40 ms a request on loopback."""
    import asyncio
    import socket

    from cesar_cli.serve import _listen

    async def scenario() -> int:
        listener = _listen("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) != 0
