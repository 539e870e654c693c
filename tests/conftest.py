"""Fixtures shared by every test: the project folder and a local AWS API.

The AWS API is moto's server over real HTTP, bound to 127.0.0.1 on a free
port (its threaded server would otherwise listen on every interface). The
product reaches it through ``AWS_ENDPOINT_URL`` like any user could.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach real AWS or read the developer's profile."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "TAPCTL_ENV",
        "TAPCTL_PROJECT_DIR",
        "PULUMI_BACKEND_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(PROJECT_ROOT))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 at a free port for the whole session."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto world for one test, reached through AWS_ENDPOINT_URL."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint
