"""Defects found in the release commands, each pinned by the behaviour it
broke: outputs of another environment, a dead endpoint, no-op rollbacks,
badly typed outputs, dry runs without engine or AWS, and one-line messages.

AWS is moto's server on 127.0.0.1 (or, for the dead endpoint, a TCP server
the test starts there that never answers); the engine is the Automation API
double behind the real ``Engine`` class.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from tests.integration import test_release as flows
from tests.integration.test_release import (
    IMAGE,
    _deregister_all,
    _listener_weights,
    _set_weights,
)
from tests.integration.test_release_cli import (
    Recorder,
    _outputs_file,
    _tapctl,
    double,
    project,
    recorder,
)
from tests.unit.automation_double import AutomationDouble

pytestmark = pytest.mark.integration

__all__ = ["double", "project", "recorder"]  # fixtures shared with the CLI tests
health_port = flows.health_port
world = flows.world


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("tapctl: error")]


# -- 1. an outputs file of another environment -----------------------------------


def test_rollback_with_another_environments_outputs_file_exits_2_and_moves_nothing(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    dev_outputs = _outputs_file(tmp_path, world)

    recorder.start()
    code, out, err = _tapctl(
        "rollback",
        "--env",
        "prod",
        "--outputs-file",
        str(dev_outputs),
        "--to",
        "green",
        "--yes",
    )

    assert code == 2
    assert _error_lines(err) == [
        f"tapctl: error: outputs file {dev_outputs} is for environment suffix "
        "'dev', not 'prod' (prod)"
    ]
    assert out == ""
    assert recorder.operations() == []
    assert _listener_weights(world) == (100, 0)
    assert double.methods() == []


def test_status_with_another_environments_outputs_file_exits_2(
    project: Path, world: dict[str, Any], recorder: Recorder, tmp_path: Path
) -> None:
    recorder.start()
    code, _, err = _tapctl(
        "status", "--env", "prod", "--outputs-file", str(_outputs_file(tmp_path, world))
    )

    assert code == 2
    assert "is for environment suffix 'dev', not 'prod'" in err
    assert recorder.operations() == []


# -- 2. an endpoint that accepts and never answers -------------------------------


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never replies."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_rollback_against_a_silent_endpoint_says_what_it_does_and_fails_in_bounds(
    project: Path,
    silent_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The production limits (5 s connect, 10 s read, 3 attempts) shrunk to keep
    # the test short; tests/unit/test_release.py pins the production values.
    limits = Config(
        connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 2}
    )
    monkeypatch.setattr("tapctl.release.AWS_LIMITS", limits)
    monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    outputs = {
        "environment_suffix": "dev",
        "active_color": "green",
        "prod_listener_arn": f"{arn}:listener/app/tap-dev/1/2",
        "blue_target_group_arn": f"{arn}:targetgroup/tg-blue-dev/1",
        "green_target_group_arn": f"{arn}:targetgroup/tg-green-dev/2",
    }

    started = time.monotonic()
    code, _, err = _tapctl(
        "rollback",
        "--env",
        "dev",
        "--outputs-file",
        str(_outputs_file(tmp_path, outputs)),
        "--yes",
    )
    seconds = time.monotonic() - started

    assert code == 1
    assert err.splitlines()[0] == "rollback dev: reading the production listener ..."
    [error] = _error_lines(err)
    assert error.startswith("tapctl: error: reading the production listener: Read")
    assert seconds < 10  # two 1 s reads and a backoff, with room for a slow host


# -- 3 and 4. rollbacks that have nothing to move or record ------------------------


def test_rollback_to_the_color_that_has_all_traffic_writes_nothing(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    _set_weights(world, 0, 100)
    outputs = _outputs_file(tmp_path, world | {"active_color": "green"})
    config = project / "Pulumi.dev.yaml"
    config.write_text(
        config.read_text().replace("tap:activeColor: blue", "tap:activeColor: green")
    )

    recorder.start()
    code, out, err = _tapctl(
        "rollback", "--env", "dev", "--outputs-file", str(outputs), "--to", "green"
    )

    assert code == 0, err
    assert "dev: already on green (blue 0 / green 100); the listener was not" in out
    assert "all traffic on" not in out
    assert recorder.operations() == ["DescribeListeners"]
    assert double.methods() == []
    assert "warning" not in err


def test_rollback_to_the_live_color_still_records_it_when_config_disagrees(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    _set_weights(world, 0, 100)
    outputs = _outputs_file(tmp_path, world)  # the world's config says blue

    recorder.start()
    code, out, err = _tapctl(
        "rollback",
        "--env",
        "dev",
        "--outputs-file",
        str(outputs),
        "--to",
        "green",
        "--yes",
    )

    assert code == 0, err
    assert "dev: already on green" in out
    assert "ModifyListener" not in recorder.operations()
    assert double.methods() == ["set_all_config", "up"]
    config = double.call("set_all_config").kwargs["config"]
    assert config["tap:activeColor"].value == "green"
    assert "stack config records green as active" in err


def test_forced_rollback_to_the_color_config_records_reports_no_drift(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    tmp_path: Path,
) -> None:
    _set_weights(world, 0, 100)
    _deregister_all(world, "blue")
    double.cli_missing = True  # recording would fail: it must not be needed
    outputs = _outputs_file(tmp_path, world)  # config says blue, idle weight 0

    code, out, err = _tapctl(
        "rollback",
        "--env",
        "dev",
        "--outputs-file",
        str(outputs),
        "--to",
        "blue",
        "--force",
        "--yes",
    )

    assert code == 0, err
    assert "dev: all traffic on blue (blue 100 / green 0" in out
    assert _listener_weights(world) == (100, 0)
    assert "does not record" not in err
    assert "reconcile" not in err
    assert "stack config records blue as active" in err
    code, _, err = _tapctl("status", "--env", "dev", "--outputs-file", str(outputs))
    assert "listeners match the stack config (active blue)" in err


# -- 5. outputs of the wrong type ----------------------------------------------------


@pytest.mark.parametrize(
    ("command", "key", "value"),
    [
        ("status", "prod_listener_arn", 123),
        ("status", "test_listener_arn", ["x"]),
        ("status", "blue_service_name", 7),
        ("rollback", "green_target_group_arn", {"arn": "x"}),
        ("rollback", "active_color", True),
    ],
)
def test_a_badly_typed_output_exits_2_naming_the_key_before_any_aws_call(
    project: Path,
    world: dict[str, Any],
    recorder: Recorder,
    tmp_path: Path,
    command: str,
    key: str,
    value: object,
) -> None:
    outputs = _outputs_file(tmp_path, world | {key: value})
    extra = ["--yes"] if command == "rollback" else []

    recorder.start()
    code, _, err = _tapctl(
        command, "--env", "dev", "--outputs-file", str(outputs), *extra
    )

    assert code == 2
    [error] = _error_lines(err)
    assert error.startswith(f"tapctl: error: output {key} must be")
    assert "unexpected" not in err
    assert recorder.operations() == []


def test_deploy_dry_run_with_badly_typed_alarm_names_exits_2(
    project: Path, world: dict[str, Any], tmp_path: Path
) -> None:
    outputs = _outputs_file(tmp_path, world | {"alarm_names": "a,b"})

    code, _, err = _tapctl(
        "deploy",
        "--env",
        "dev",
        "--image",
        IMAGE,
        "--dry-run",
        "--outputs-file",
        str(outputs),
    )

    assert code == 2
    assert "output alarm_names must be a list of alarm names" in err


# -- 7. dry runs without engine or AWS -------------------------------------------------


@pytest.fixture
def nothing_reachable(
    monkeypatch: pytest.MonkeyPatch, double: AutomationDouble
) -> AutomationDouble:
    """No Pulumi CLI and no AWS region: anything needing either fails."""
    double.cli_missing = True
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    return double


def test_deploy_dry_run_from_an_outputs_file_needs_no_engine_and_no_aws(
    project: Path,
    world: dict[str, Any],
    nothing_reachable: AutomationDouble,
    tmp_path: Path,
) -> None:
    outputs = _outputs_file(tmp_path, world)

    code, out, err = _tapctl(
        "deploy",
        "--env",
        "dev",
        "--image",
        IMAGE,
        "--dry-run",
        "--outputs-file",
        str(outputs),
        "--bake",
        "0",
    )

    assert code == 0, err
    assert "deploy plan (dev: blue -> green)" in out
    assert "move traffic: blue 50 / green 50 (bake 0s)" in out
    assert "dry run: nothing was changed" in err
    assert nothing_reachable.opened == []


def test_switch_dry_run_from_an_outputs_file_plans_away_from_the_active_color(
    project: Path,
    world: dict[str, Any],
    nothing_reachable: AutomationDouble,
    tmp_path: Path,
) -> None:
    outputs = _outputs_file(tmp_path, world | {"active_color": "green"})

    code, out, err = _tapctl(
        "switch",
        "--env",
        "dev",
        "--dry-run",
        "--outputs-file",
        str(outputs),
        "--steps",
        "50,100",
    )

    assert code == 0, err
    assert "switch plan (dev: green -> blue)" in out
    assert "move traffic: blue 50 / green 50 (bake 60s)" in out
    assert "move traffic: blue 100 / green 0 (bake 60s)" in out


def test_dry_run_without_engine_or_outputs_file_points_at_the_outputs_file(
    project: Path, nothing_reachable: AutomationDouble
) -> None:
    code, _, err = _tapctl("deploy", "--env", "dev", "--image", IMAGE, "--dry-run")

    assert code == 1
    assert "the Pulumi CLI is not on PATH" in err
    assert (
        "plan a deploy without the engine: tapctl deploy --dry-run --env ENV "
        "--outputs-file FILE" in err
    )


@pytest.mark.parametrize("command", ["deploy", "switch"])
def test_an_outputs_file_without_dry_run_is_a_usage_error(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    tmp_path: Path,
    command: str,
) -> None:
    image = ["--image", IMAGE] if command == "deploy" else []
    outputs = _outputs_file(tmp_path, world)

    code, _, err = _tapctl(
        command, "--env", "dev", *image, "--outputs-file", str(outputs), "--yes"
    )

    assert code == 2
    assert f"--outputs-file is for --dry-run only: a real {command}" in err
    assert double.methods() == []
    assert _listener_weights(world) == (100, 0)


# -- 8. messages stay on one line ----------------------------------------------------


def test_an_outputs_file_name_with_a_newline_gives_a_one_line_error(
    project: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "two\nlines.json"

    code, _, err = _tapctl("status", "--env", "dev", "--outputs-file", str(missing))

    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2  # the error and its hint
    assert lines[0].startswith("tapctl: error: cannot read outputs file")
    assert "two lines.json" in lines[0]


def test_a_multi_line_engine_error_is_reported_as_one_warning(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    tmp_path: Path,
) -> None:
    from tests.unit.automation_double import command_error

    _set_weights(world, 0, 100)
    double.errors["up"] = command_error("error: first line\n  second line\n")
    outputs = _outputs_file(tmp_path, world | {"active_color": "green"})

    code, _, err = _tapctl(
        "rollback", "--env", "dev", "--outputs-file", str(outputs), "--yes"
    )

    assert code == 0, err
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert warning.startswith("tapctl: warning: blue takes all traffic, but the")
    assert json.dumps(warning).count("\\n") == 0
