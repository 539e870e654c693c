"""``tapctl verify`` as a real process against an AWS endpoint that accepts
connections and never answers: the process must end soon after its report
(or its error), and Ctrl-C must end it at once with exit 130.

Only a real process shows these: threads left waiting on AWS keep an
interpreter from exiting, which CliRunner never reaches.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapctl.outputs import EXPORT_KEYS
from tapctl.verification import CHECK_IDS
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration

#: Python, tapctl and boto3 start in well under a second here; the margin
#: covers a loaded machine. Before daemon check threads the process took
#: about 150 s (botocore's timeouts and retries) to exit.
START_AND_EXIT = 8.0  # interpreter start-up and imports on a loaded machine
#: How long a stuck process may run before the test gives up on it.
LIMIT = 30.0


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never
    answers, like an AWS endpoint behind a black-holed network path."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    """Outputs naming resources that are never looked up: every call stalls."""
    outputs: dict[str, Any] = {key: f"placeholder-{key}" for key in EXPORT_KEYS}
    outputs |= {"environment_suffix": "dev", "active_color": "blue"}
    outputs |= {"rds_port": 5432, "alarm_names": ["placeholder-alarm"]}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


@pytest.fixture
def checks_stall(
    aws_endpoint: str, silent: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> SilentServer:
    """The pre-flight call answered by moto, every check's call silent."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
    return silent


def _start(outputs_file: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tapctl", "verify", "--env", "dev"]
    return subprocess.Popen(
        [*command, "--outputs-file", str(outputs_file), *args],
        cwd=PROJECT_ROOT,
        env=os.environ | {"COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], limit: float) -> tuple[int, str, str]:
    """Exit code, stdout and stderr; the test fails if it takes over ``limit``."""
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"tapctl verify still running after {limit:g}s")
    return process.returncode, out, err


def _wait_for_connections(server: SilentServer, count: int) -> None:
    deadline = time.monotonic() + LIMIT
    while len(server.connections) < count:
        assert time.monotonic() < deadline, "the checks never called AWS"
        time.sleep(0.05)


def test_preflight_against_a_silent_endpoint_gives_up_within_the_timeout(
    silent: SilentServer, outputs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
    started = time.monotonic()

    code, out, err = _finish(_start(outputs_file, "--timeout", "2"), LIMIT)

    assert time.monotonic() - started < 2 + START_AND_EXIT
    assert code == 1
    assert len(silent.connections) == 1  # one try, no retries
    errors = [line for line in err.splitlines() if line.startswith("tapctl: error:")]
    timed_out = f'Read timeout on endpoint URL: "{silent.url}/"'
    assert errors == [f"tapctl: error: cannot reach AWS: {timed_out}"]
    assert out == ""


def test_stalled_checks_are_reported_and_the_process_exits_soon_after(
    checks_stall: SilentServer, outputs_file: Path
) -> None:
    started = time.monotonic()

    code, out, err = _finish(_start(outputs_file, "--timeout", "2", "--json"), LIMIT)

    # The timeout, the grace the HTTP check gets to report its own, start-up.
    assert time.monotonic() - started < 2 + 1 + START_AND_EXIT
    assert code == 1
    checks = json.loads(out)["checks"]
    assert [(check["id"], check["status"], check["detail"]) for check in checks] == [
        (check_id, "error", "no answer within 2s") for check_id in CHECK_IDS
    ]
    assert "Traceback" not in err


def test_ctrl_c_while_checks_wait_on_aws_exits_130_at_once(
    checks_stall: SilentServer, outputs_file: Path
) -> None:
    process = _start(outputs_file, "--timeout", "600")
    _wait_for_connections(checks_stall, len(CHECK_IDS) // 2)

    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    code, out, err = _finish(process, LIMIT)

    assert time.monotonic() - interrupted < START_AND_EXIT
    assert code == 130
    assert err.splitlines()[-1] == "tapctl: error: interrupted"
    assert "Traceback" not in err
    assert out == ""


def test_ctrl_c_during_the_preflight_call_exits_130_at_once(
    silent: SilentServer, outputs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent.url)
    process = _start(outputs_file, "--timeout", "600")
    _wait_for_connections(silent, 1)

    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    code, _, err = _finish(process, LIMIT)

    assert time.monotonic() - interrupted < START_AND_EXIT
    assert code == 130
    assert err.splitlines()[-1] == "tapctl: error: interrupted"
    assert "Traceback" not in err
