"""``tapctl verify`` through typer's CliRunner: rendering, exit codes, JUnit,
the engine path, and every kind of bad input as one line and a non-zero exit."""

from __future__ import annotations

import json
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tapctl.cli import app
from tapctl.commands import verify as verify_command
from tapctl.outputs import EXPORT_KEYS
from tapctl.verification import CHECK_IDS
from tests import aws_world
from tests.aws_world import HealthServer

pytestmark = pytest.mark.integration

runner = CliRunner()
# moto cannot echo an origin access control (see test_verify_checks.py).
MOTO_FAILS = "cloudfront.deployed"


@pytest.fixture
def health() -> Iterator[HealthServer]:
    with aws_world.health_server() as server:
        yield server


@pytest.fixture
def world(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, health: HealthServer
) -> dict[str, Any]:
    for name, value in aws_world.settled_services_env().items():
        monkeypatch.setenv(name, value)
    return aws_world.build_world(
        suffix="dev", alb_dns_name="127.0.0.1", prod_port=health.port
    )


def _outputs_file(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def _verify(*args: str) -> tuple[int, str, str]:
    return _verify_env("dev", *args)


def _verify_env(env: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["verify", "--env", env, *args])
    return result.exit_code, result.stdout, result.stderr


def _placeholder_outputs() -> dict[str, Any]:
    """Every key present; enough for runs that must stop before any AWS call."""
    placeholders = {key: f"placeholder-{key}" for key in EXPORT_KEYS}
    return placeholders | {
        "environment_suffix": "dev",
        "active_color": "blue",
        "rds_port": 5432,
        "alarm_names": ["placeholder-alarm"],
    }


@pytest.fixture
def refused_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS_ENDPOINT_URL on a closed local port: a run that reaches AWS fails
    with exit 1 at once, so exit 2 shows the run stopped before any AWS call."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return endpoint


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("tapctl: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- results -------------------------------------------------------------------


def test_healthy_world_prints_a_table_and_exits_0(
    world: dict[str, Any], tmp_path: Path
) -> None:
    path = _outputs_file(tmp_path, world)

    code, out, err = _verify("--outputs-file", str(path), "--skip", MOTO_FAILS)

    assert code == 0, err
    for check_id in CHECK_IDS:
        assert check_id in out
    assert "tap-alb-dev" in out
    assert "dev: 10 passed, 0 failed, 1 skipped" in out
    assert "verifying dev (live color)" in err


def test_json_and_junit_report_the_failed_check_and_exit_1(
    world: dict[str, Any], tmp_path: Path
) -> None:
    path = _outputs_file(tmp_path, world)
    junit = tmp_path / "verify.xml"

    code, out, err = _verify(
        "--outputs-file",
        str(path),
        "--json",
        "--junit",
        str(junit),
        "--skip",
        "s3.private",
    )

    assert code == 1
    document = json.loads(out)
    assert sorted(document) == ["checks", "env", "failed", "passed"]
    assert (document["env"], document["passed"], document["failed"]) == ("dev", 9, 1)
    statuses = {check["id"]: check["status"] for check in document["checks"]}
    assert statuses == dict.fromkeys(CHECK_IDS, "pass") | {
        MOTO_FAILS: "fail",
        "s3.private": "skip",
    }
    assert sorted(document["checks"][0]) == [
        "detail",
        "id",
        "resource",
        "seconds",
        "status",
    ]
    assert (
        _one_error_line(err) == f"tapctl: error: dev: 1 check(s) failed: {MOTO_FAILS}"
    )

    suite = ET.parse(junit).getroot()
    assert (suite.tag, suite.get("name")) == ("testsuite", "tapctl.verify")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "11",
        "1",
        "1",
    )
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == list(CHECK_IDS)
    failure = cases[MOTO_FAILS].find("failure")
    assert failure is not None
    assert failure.get("message") == "origin static has no origin access control"
    assert cases["s3.private"].find("skipped") is not None
    assert list(cases["alb.active"]) == []


def test_outputs_come_from_the_engine_with_secret_values_masked(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str | None]] = []

    def engine_outputs(env: str, stack: str | None) -> tuple[dict[str, Any], set[str]]:
        calls.append((env, stack))
        return world, {"alb_dns_name"}

    monkeypatch.setattr(verify_command, "_outputs_from_engine", engine_outputs)

    code, out, err = _verify(
        "--only", "http.health,alb.active", "--json", "--stack", "team/tap/dev"
    )

    assert code == 0, err
    assert calls == [("dev", "team/tap/dev")]
    checks = {check["id"]: check for check in json.loads(out)["checks"]}
    assert checks["http.health"]["status"] == "pass"
    assert checks["http.health"]["resource"].startswith("http://[secret]:")
    assert "127.0.0.1" not in out


# -- bad input -----------------------------------------------------------------


def test_missing_outputs_file_exits_2(tmp_path: Path) -> None:
    code, _, err = _verify("--outputs-file", str(tmp_path / "nope.json"))

    assert code == 2
    assert "cannot read outputs file" in _one_error_line(err)


def test_malformed_outputs_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text('{"alb_arn": ')

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert "is not valid JSON (line 1" in _one_error_line(err)


def test_outputs_file_missing_a_key_a_selected_check_needs_exits_2(
    tmp_path: Path,
) -> None:
    outputs = _placeholder_outputs()
    del outputs["static_bucket_name"]
    path = _outputs_file(tmp_path, outputs)

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert _one_error_line(err) == (
        "tapctl: error: check s3.private needs output(s) missing here: "
        "static_bucket_name"
    )


def test_unknown_check_id_exits_2_listing_the_known_ones(tmp_path: Path) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify("--outputs-file", str(path), "--only", "alb.active,dns.ok")

    assert code == 2
    assert _one_error_line(err) == "tapctl: error: --only: unknown check id(s): dns.ok"
    assert "known checks: alb.active, listener.weights" in err


@pytest.mark.parametrize(
    ("only", "skip", "message"),
    [
        ("alb.active", "alb.active", "every check --only names"),
        (None, ",".join(CHECK_IDS), "every check"),
    ],
)
def test_selection_leaving_no_check_exits_2(
    tmp_path: Path,
    refused_endpoint: str,
    only: str | None,
    skip: str,
    message: str,
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())
    selection = ["--only", only] if only else []

    code, _, err = _verify("--outputs-file", str(path), *selection, "--skip", skip)

    assert code == 2
    assert _one_error_line(err) == (
        f"tapctl: error: no checks selected: --skip leaves out {message}"
    )


@pytest.mark.parametrize("only", ["", ",", " , "])
def test_only_without_a_check_id_exits_2(
    tmp_path: Path, refused_endpoint: str, only: str
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify("--outputs-file", str(path), "--only", only)

    assert code == 2
    assert _one_error_line(err) == ("tapctl: error: --only needs at least one check id")


@pytest.mark.parametrize(
    ("junit", "reason"),
    [("missing/verify.xml", "no folder"), ("outputs.json/verify.xml", "no folder")],
)
def test_unwritable_junit_path_exits_2_before_any_check(
    tmp_path: Path, refused_endpoint: str, junit: str, reason: str
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())
    target = tmp_path / junit

    code, out, err = _verify("--outputs-file", str(path), "--junit", str(target))

    assert code == 2
    line = _one_error_line(err)
    assert line.startswith(f"tapctl: error: cannot write JUnit file {target}: ")
    assert reason in line
    assert out == ""


def test_empty_outputs_file_names_active_color_as_missing(
    tmp_path: Path, refused_endpoint: str
) -> None:
    path = _outputs_file(tmp_path, {"environment_suffix": "dev"})

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert _one_error_line(err) == (
        "tapctl: error: verify needs output(s) missing here: active_color"
    )


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("alb_arn", 12345, "must be a string, got 12345"),
        ("ecs_cluster_name", True, "must be a string, got True"),
    ],
)
def test_output_of_the_wrong_type_exits_2_naming_the_key(
    tmp_path: Path, refused_endpoint: str, key: str, value: Any, problem: str
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs() | {key: value})

    code, out, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert _one_error_line(err) == f"tapctl: error: output {key} {problem}"
    assert "Parameter validation" not in out + err


def test_outputs_file_of_another_environment_exits_2(
    tmp_path: Path, refused_endpoint: str
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify_env("prod", "--outputs-file", str(path))

    assert code == 2
    assert _one_error_line(err) == (
        f"tapctl: error: outputs file {path} is for environment suffix 'dev', "
        "not 'prod' (prod)"
    )


def test_env_outside_the_project_is_the_outputs_files_own_label(
    tmp_path: Path, refused_endpoint: str
) -> None:
    outputs = _placeholder_outputs() | {"environment_suffix": "pr-17"}
    path = _outputs_file(tmp_path, outputs)

    mismatch, _, mismatch_err = _verify_env("pr-18", "--outputs-file", str(path))
    match, _, match_err = _verify_env("pr-17", "--outputs-file", str(path))

    assert mismatch == 2
    assert "is for environment suffix 'pr-17'" in _one_error_line(mismatch_err)
    # Accepted: the run goes on to AWS, which is refused here.
    assert match == 1
    assert "cannot reach AWS" in _one_error_line(match_err)


@pytest.mark.parametrize("timeout", ["inf", "1e308", "3601", "nan"])
def test_timeout_beyond_an_hour_or_not_a_number_is_a_usage_error(
    tmp_path: Path, refused_endpoint: str, timeout: str
) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs())

    result = runner.invoke(
        app,
        ["verify", "--env", "dev", "--outputs-file", str(path), "--timeout", timeout],
    )

    assert result.exit_code == 2
    assert "--timeout" in result.stderr
    assert "OverflowError" not in result.stderr


def test_invalid_active_color_output_exits_2(tmp_path: Path) -> None:
    path = _outputs_file(tmp_path, _placeholder_outputs() | {"active_color": "red"})

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert "output active_color is 'red'" in _one_error_line(err)


def test_no_credentials_exits_1_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_endpoint: str
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 1
    assert _one_error_line(err) == (
        "tapctl: error: cannot reach AWS: no AWS credentials found"
    )


def test_no_region_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 2
    assert _one_error_line(err) == "tapctl: error: no AWS region configured"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_refused_endpoint_fails_fast_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    path = _outputs_file(tmp_path, _placeholder_outputs())
    started = time.monotonic()

    code, _, err = _verify("--outputs-file", str(path))

    assert code == 1
    assert time.monotonic() - started < 8  # retried with backoff, it took far longer
    line = _one_error_line(err)
    assert line.startswith(
        f"tapctl: error: cannot reach AWS: cannot connect to {endpoint}"
    )


def test_help_documents_every_option() -> None:
    result = runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    for option in (
        "--env",
        "--outputs-file",
        "--only",
        "--skip",
        "--color",
        "--json",
        "--junit",
        "--timeout",
    ):
        assert option in result.stdout


def test_verify_outside_any_checkout_takes_env_as_the_label(
    tmp_path: Path, refused_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAPCTL_PROJECT_DIR")
    monkeypatch.chdir(tmp_path)
    path = _outputs_file(tmp_path, _placeholder_outputs())

    code, _, err = _verify("--outputs-file", str(path))

    # Accepted without a Pulumi.yaml anywhere: the run goes on to AWS.
    assert code == 1
    assert "cannot reach AWS" in _one_error_line(err)
