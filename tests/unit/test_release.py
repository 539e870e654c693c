"""Release input rules, weights, the local lock and bad-input exits.

Nothing here reaches AWS: bad input must fail before any call is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapctl.aws import Aws
from tapctl.cli import app
from tapctl.errors import ConfigError, UsageError, one_line
from tapctl.release import (
    AWS_LIMITS,
    ReleaseLocked,
    StackRef,
    Weights,
    check_image,
    check_seconds,
    parse_idle_weight,
    parse_steps,
    plan_switch,
    release_lock,
    stack_update_lock,
    weights_of,
)
from tests.conftest import PROJECT_ROOT

runner = CliRunner()
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "image",
    [
        "public.ecr.aws/nginx/nginx:1.27-alpine",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/tap/web:2.0.1",
        "localhost:5000/web:dev",
        "registry:5000/team/web:v1",
        "nginx:1.27",
        f"ghcr.io/org/web@{DIGEST}",
        f"ghcr.io/org/web:1.0@{DIGEST}",
    ],
)
def test_image_references_with_a_tag_or_digest_are_accepted(image: str) -> None:
    assert check_image(image) == image


@pytest.mark.parametrize(
    "image",
    [
        "nginx",  # no tag: an implicit latest is not a release
        "public.ecr.aws/nginx/nginx",
        "Nginx:1.0",
        "ghcr.io/org/web@sha256:abc",
        "ghcr.io/org/web:",
        "ghcr.io//web:1",
        "web:1 ; rm -rf /",
        "",
    ],
)
def test_malformed_image_references_are_usage_errors(image: str) -> None:
    with pytest.raises(UsageError, match="not an image reference"):
        check_image(image)


def test_steps_parse_to_increasing_percentages() -> None:
    assert parse_steps("10,50,100") == (10, 50, 100)
    assert parse_steps("100") == (100,)


@pytest.mark.parametrize("steps", ["50,10,100", "10,50", "0,100", "10,10,100", "10,x"])
def test_steps_that_go_back_skip_the_end_or_leave_the_range_are_refused(
    steps: str,
) -> None:
    with pytest.raises(UsageError):
        parse_steps(steps)


@pytest.mark.parametrize("active", ["blue", "green"])
def test_split_weights_always_add_up_to_100(active: str) -> None:
    for idle in range(101):
        weights = Weights.split(active, idle)
        assert weights.blue + weights.green == 100
        assert weights.of(active) == 100 - idle
    with pytest.raises(ValueError):
        Weights.split(active, 101)


def test_the_live_color_is_the_one_with_the_larger_weight() -> None:
    assert Weights(90, 10).live == "blue"
    assert Weights(10, 90).live == "green"
    assert Weights(50, 50).live is None


def test_a_forward_to_an_unknown_target_group_is_an_error() -> None:
    groups = {"blue": "arn:blue", "green": "arn:green"}
    forward = {"TargetGroups": [{"TargetGroupArn": "arn:other", "Weight": 100}]}

    with pytest.raises(Exception, match="neither the blue nor the green"):
        weights_of(forward, groups)
    single = {"TargetGroups": [{"TargetGroupArn": "arn:green", "Weight": 100}]}
    assert weights_of(single, groups) == Weights(0, 100)


@pytest.mark.parametrize(("value", "weight"), [(None, 0), ("", 0), ("30", 30), (5, 5)])
def test_idle_weight_from_config(value: object, weight: int) -> None:
    assert parse_idle_weight(value) == weight


@pytest.mark.parametrize("value", ["-1", "101", "half"])
def test_idle_weight_outside_0_to_100_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="tap:idleWeight"):
        parse_idle_weight(value)


def test_commands_printed_for_the_user_are_exact_and_quoted(tmp_path: Path) -> None:
    ref = StackRef("tap", "prod", tmp_path, stack="acme/tap/prod")

    assert ref.command("rollback", "--to", "blue", "--yes") == (
        "tapctl rollback --env prod --stack acme/tap/prod --to blue --yes"
    )
    assert ref.listener_targets() == ["urn:pulumi:prod::tap::**lb/listener:Listener::*"]
    assert ref.command("up", "--target", "a*b") == (
        "tapctl up --env prod --stack acme/tap/prod --target 'a*b'"
    )


def test_the_local_lock_refuses_a_second_holder_until_released(tmp_path: Path) -> None:
    ref = StackRef("tap", "dev", tmp_path / "state")

    with release_lock(ref) as path:
        with (
            pytest.raises(ReleaseLocked, match="another tapctl release"),
            release_lock(ref),
        ):
            pass
        assert path.read_text().strip().isdigit()
    with release_lock(ref):
        pass


def test_a_plain_update_and_a_release_exclude_each_other(tmp_path: Path) -> None:
    state = tmp_path / "state"

    with stack_update_lock("tap", "dev", state):
        with pytest.raises(ReleaseLocked, match="another tapctl release on stack dev"):
            with release_lock(StackRef("tap", "dev", state)):
                pass
    with release_lock(StackRef("tap", "dev", state)):
        with pytest.raises(ReleaseLocked), stack_update_lock("tap", "dev", state):
            pass


# -- bad input through the CLI: one line, exit 2, before any AWS call ----------------


@pytest.mark.parametrize("command", ["deploy", "switch"])
def test_an_unknown_skip_check_exits_2_naming_the_gate_checks(command: str) -> None:
    image = ["--image", "nginx:1.27"] if command == "deploy" else []

    code, err = _invoke(command, "--env", "dev", *image, "--skip-check", "http.helth")

    assert code == 2
    assert err.splitlines() == [
        "tapctl: error: --skip-check http.helth: not a check of the pre-shift gate",
        "  the gate runs: alb.active, listener.weights, targets.healthy, "
        "ecs.steady, http.health",
    ]


def test_skipping_every_gate_check_exits_2() -> None:
    every = "alb.active,listener.weights,targets.healthy,ecs.steady,http.health"

    code, err = _invoke(
        "deploy", "--env", "dev", "--image", "nginx:1.27", "--skip-check", every
    )

    assert code == 2
    assert "--skip-check leaves the pre-shift gate with no check to run" in err


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


def test_deploy_with_a_bad_image_exits_2_with_one_line() -> None:
    code, err = _invoke("deploy", "--env", "dev", "--image", "nginx")

    assert code == 2
    assert err.splitlines()[0] == (
        "tapctl: error: --image 'nginx' is not an image reference with a tag or digest"
    )
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["deploy", "switch"])
def test_bad_steps_exit_2_with_one_line(command: str) -> None:
    image = ["--image", "nginx:1.27"] if command == "deploy" else []

    code, err = _invoke(command, "--env", "dev", *image, "--steps", "50,10")

    assert code == 2
    assert "--steps 50,10 must increase within 1..100 and end at 100" in err


def test_an_unknown_color_is_refused_by_the_option_parser() -> None:
    code, err = _invoke("rollback", "--env", "dev", "--to", "purple", "--yes")

    assert code == 2
    assert "purple" in err


def test_status_with_a_broken_outputs_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "outputs.json"
    broken.write_text("{not json")

    code, err = _invoke("status", "--env", "dev", "--outputs-file", str(broken))

    assert code == 2
    assert "is not valid JSON" in err


def test_rollback_with_outputs_missing_the_listener_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((PROJECT_ROOT / name).read_text())
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(tmp_path))
    partial = tmp_path / "outputs.json"
    partial.write_text(
        json.dumps({"active_color": "green", "environment_suffix": "dev"})
    )

    code, err = _invoke(
        "rollback", "--env", "dev", "--outputs-file", str(partial), "--yes"
    )

    assert code == 2
    assert "rollback needs output(s) missing here: prod_listener_arn" in err


# -- number options: finite, bounded, ASCII digits ------------------------------------


@pytest.mark.parametrize("steps", ["١٠٠", "10,٥٠,100", "+100", "1_00", "0100", ""])
def test_steps_take_only_plain_ascii_digits(steps: str) -> None:
    with pytest.raises(UsageError, match="must be comma-separated whole percentages"):
        parse_steps(steps)


def test_steps_may_carry_spaces_around_the_commas() -> None:
    assert parse_steps("10, 50, 100") == (10, 50, 100)


@pytest.mark.parametrize("value", ["-1", "inf", "-inf", "nan", "3601", "1e9"])
def test_bake_outside_0_to_an_hour_exits_2_with_one_line(value: str) -> None:
    code, err = _invoke("switch", "--env", "dev", "--bake", value, "--yes")

    assert code == 2
    [line, _hint] = err.splitlines()
    assert line.startswith(f"tapctl: error: --bake {float(value):g} must be 0 or more")
    assert line.endswith("and at most 3600 seconds")


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan", "7201"])
def test_timeout_outside_0_to_two_hours_exits_2(value: str) -> None:
    code, err = _invoke(
        "deploy", "--env", "dev", "--image", "nginx:1.27", "--timeout", value
    )

    assert code == 2
    assert f"--timeout {float(value):g} must be more than 0 and at most 7200" in err


def test_zero_bake_and_the_bounds_themselves_are_accepted() -> None:
    assert check_seconds("--bake", 0, limit=3600) == 0
    assert check_seconds("--bake", 3600, limit=3600) == 3600
    with pytest.raises(UsageError, match="more than 0"):
        check_seconds("--timeout", 0, limit=7200, positive=True)


def test_release_aws_calls_fail_fast_within_about_half_a_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    config = Aws().client("elbv2", AWS_LIMITS).meta.config

    assert (config.connect_timeout, config.read_timeout) == (5, 10)
    assert config.retries["total_max_attempts"] == 3
    # A silent endpoint costs at most 3 reads of 10 s (plus short backoffs).
    assert config.retries["total_max_attempts"] * config.read_timeout <= 30


def test_one_line_joins_lines_and_collapses_whitespace() -> None:
    assert one_line("error: first\n  second\r\nthird ") == "error: first second third"


SWITCH_OUTPUTS = {
    "prod_listener_arn": "arn:listener",
    "blue_target_group_arn": "arn:blue",
    "green_target_group_arn": "arn:green",
    "active_color": "blue",
}


@pytest.mark.parametrize(
    ("live", "to", "lines"),
    [
        (
            None,
            "blue",
            ["nothing to move: blue already takes all traffic (blue 100 / green 0)"],
        ),
        (
            None,
            "green",
            [
                "move traffic: blue 90 / green 10 (bake 0s)",
                "move traffic: blue 50 / green 50 (bake 0s)",
                "move traffic: blue 0 / green 100 (bake 0s)",
            ],
        ),
        (
            Weights(blue=70, green=30),
            "green",
            [
                "move traffic: blue 50 / green 50 (bake 0s)",
                "move traffic: blue 0 / green 100 (bake 0s)",
            ],
        ),
    ],
)
def test_a_switch_plan_only_moves_traffic_towards_its_target(
    live: Weights | None, to: str, lines: list[str]
) -> None:
    ref = StackRef("tap", "dev", Path("/nonexistent"))

    plan = plan_switch(
        SWITCH_OUTPUTS, ref, to=to, steps=(10, 50, 100), bake=0, live=live
    )

    assert list(plan.steps) == lines
