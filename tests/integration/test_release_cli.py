"""``tapctl deploy|switch|rollback|status`` end to end through CliRunner.

AWS is moto's server on 127.0.0.1; the engine is the real ``Engine`` class
with the Automation API double behind its one seam. moto's request recorder
gives the order of the AWS calls the command made.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pulumi import automation as auto
from typer.testing import CliRunner

from tapctl.cli import app
from tests.aws_world import build_world, world_network
from tests.conftest import PROJECT_ROOT
from tests.integration import test_release as flows
from tests.integration.test_release import (
    IMAGE,
    _listener_weights,
    _set_weights,
    run_image,
)
from tests.unit.automation_double import AutomationDouble, command_error

pytestmark = pytest.mark.integration

runner = CliRunner()

# The moto world of the flow tests, with its HTTP health server.
health_port = flows.health_port
world = flows.world


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's files, so state and locks stay in tmp_path."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (root / name).write_text((PROJECT_ROOT / name).read_text())
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(root))
    return root


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch, world: dict[str, Any]) -> AutomationDouble:
    fake = AutomationDouble(
        stacks={"dev"},
        outputs={key: auto.OutputValue(value, False) for key, value in world.items()},
        config={"tap:idleWeight": auto.ConfigValue("0")},
    )
    monkeypatch.setattr("tapctl.engine.open_stack", fake.open_stack)
    return fake


class Recorder:
    """moto's own request recorder: which operations reached the server."""

    def __init__(self, endpoint: str, path: Path) -> None:
        self.endpoint = endpoint
        self.path = path

    def _post(self, action: str) -> None:
        url = f"{self.endpoint}/moto-api/recorder/{action}"
        with urllib.request.urlopen(
            urllib.request.Request(url, method="POST")
        ) as reply:
            assert reply.status == 200

    def start(self) -> None:
        self._post("reset-recording")
        self._post("start-recording")

    def stop(self) -> None:
        self._post("stop-recording")

    def operations(self) -> list[str]:
        self.stop()
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        return [_operation(json.loads(line)) for line in lines]


def _operation(entry: dict[str, Any]) -> str:
    target = entry.get("headers", {}).get("X-Amz-Target")
    if target:
        return str(target).rsplit(".", 1)[-1]
    body = entry.get("body") or ""
    try:
        body = base64.b64decode(body).decode()
    except ValueError:
        pass
    return str(urllib.parse.parse_qs(body).get("Action", ["?"])[0])


@pytest.fixture
def recorder(
    aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Recorder]:
    """The recorder reads MOTO_RECORDER_FILEPATH once, when moto is imported;
    its file is pointed into tmp_path so that no recording lands in the repo,
    and recording stops with the test, before that path is put back."""
    from moto.moto_api import recorder as moto_recorder

    path = tmp_path / "moto-recording"
    monkeypatch.setattr(moto_recorder, "_location", str(path))
    found = Recorder(aws_endpoint, path)
    yield found
    found.stop()


def _tapctl(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _outputs_file(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    """The outputs as dev's: the world's names carry another suffix."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs | {"environment_suffix": "dev"}))
    return path


# -- rollback ---------------------------------------------------------------


def test_rollback_from_an_outputs_file_moves_traffic_first_and_reports_drift(
    project: Path,
    world: dict[str, Any],
    double: AutomationDouble,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    _set_weights(world, 0, 100)
    outputs = _outputs_file(tmp_path, world | {"active_color": "green"})
    double.cli_missing = True

    recorder.start()
    # -q must not hide the command that closes the drift.
    code, out, err = _tapctl(
        "-q", "rollback", "--env", "dev", "--outputs-file", str(outputs), "--yes"
    )
    operations = recorder.operations()

    assert code == 0, err
    assert _listener_weights(world) == (100, 0)
    assert operations == ["DescribeListeners", "DescribeTargetHealth", "ModifyListener"]
    assert (
        "dev: all traffic on blue (blue 100 / green 0; was blue 0 / green 100)" in out
    )
    assert "Pulumi CLI is not on PATH" in err
    assert "reconcile with: tapctl rollback --env dev --to blue --yes" in err


def test_rollback_through_the_engine_records_config_and_updates_only_listeners(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    _set_weights(world, 0, 100)
    double.outputs["active_color"] = auto.OutputValue("green", False)

    code, out, err = _tapctl("rollback", "--env", "dev", "--yes")

    assert code == 0, err
    assert double.methods() == ["outputs", "set_all_config", "up"]
    config = double.call("set_all_config").kwargs["config"]
    assert config["tap:activeColor"].value == "blue"
    assert config["tap:idleWeight"].value == "0"
    assert double.call("up").kwargs["target"] == [
        "urn:pulumi:dev::tap::**lb/listener:Listener::*"
    ]
    assert "stack config records blue as active" in err


def test_rollback_through_the_engine_uses_the_stack_it_is_given(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    _set_weights(world, 0, 100)
    double.outputs["active_color"] = auto.OutputValue("green", False)
    double.stacks.add("team/tap/dev")

    code, _, err = _tapctl(
        "rollback", "--env", "dev", "--stack", "team/tap/dev", "--yes"
    )

    assert code == 0, err
    assert {opened["name"] for opened in double.opened} == {"team/tap/dev"}
    assert double.call("up").kwargs["target"] == [
        "urn:pulumi:dev::tap::**lb/listener:Listener::*"
    ]


def test_rollback_off_a_terminal_without_yes_exits_2_and_changes_nothing(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    _set_weights(world, 0, 100)

    code, _, err = _tapctl("rollback", "--env", "dev")

    assert code == 2
    assert "needs confirmation and stdin is not a terminal" in err
    assert _listener_weights(world) == (0, 100)


def test_a_second_tapctl_process_is_refused_by_the_local_lock(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    lock = project / ".pulumi-state" / "release-dev.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(lock)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, _, err = _tapctl("rollback", "--env", "dev", "--to", "green", "--yes")
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()

    assert code == 1
    assert f"another tapctl release on stack dev is running (pid {holder.pid})" in err
    assert _listener_weights(world) == (100, 0)


_HOLD_LOCK = """
import fcntl, os, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.write(f"{os.getpid()}\\n"); handle.flush()
print("held", flush=True)
time.sleep(60)
"""


# -- deploy and switch ---------------------------------------------------------


def test_deploy_through_the_engine_releases_the_image_on_green(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    # What the stack's up does to green; the Automation double changes no AWS.
    run_image(world, "green", IMAGE)

    code, out, err = _tapctl(
        "deploy",
        "--env",
        "dev",
        "--image",
        IMAGE,
        "--bake",
        "0",
        "--timeout",
        "5",
        "--yes",
    )

    assert code == 0, err
    assert f"dev: green is live with {IMAGE} (steps 10,50,100)" in out
    configs = [
        call.kwargs["config"]
        for call in double.calls
        if call.method == "set_all_config"
    ]
    assert configs[0]["tap:greenImage"].value == IMAGE
    assert configs[1]["tap:activeColor"].value == "green"
    assert double.methods().count("up") == 2
    assert _listener_weights(world) == (0, 100)


def test_deploy_with_skip_check_warns_which_gate_checks_it_leaves_out(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    run_image(world, "green", IMAGE)

    code, out, err = _tapctl(
        "deploy",
        "--env",
        "dev",
        "--image",
        IMAGE,
        "--bake",
        "0",
        "--timeout",
        "5",
        "--skip-check",
        "http.health",
        "--yes",
    )

    assert code == 0, err
    assert "tapctl: warning: pre-shift gate skips http.health (--skip-check)" in err
    assert _listener_weights(world) == (0, 100)


def test_deploy_dry_run_prints_the_steps_and_changes_nothing(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    code, out, err = _tapctl("deploy", "--env", "dev", "--image", IMAGE, "--dry-run")

    assert code == 0, err
    assert "deploy plan (dev: blue -> green)" in out
    assert f"set tap:greenImage = {IMAGE}, then up" in out
    assert "move traffic: blue 50 / green 50 (bake 60s)" in out
    assert double.methods() == ["outputs"]
    assert _listener_weights(world) == (100, 0)


def test_a_stack_locked_by_another_update_refuses_the_deploy_in_one_line(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    double.errors["up"] = command_error(
        "error: the stack is currently locked by 1 lock(s). Either wait for the "
        "other process(es) to end or delete the lock file with `pulumi cancel`."
    )

    code, _, err = _tapctl("deploy", "--env", "dev", "--image", IMAGE, "--yes")

    assert code == 1
    assert "tapctl: error: stack dev is locked by another update" in err
    assert "Traceback" not in err
    assert _listener_weights(world) == (100, 0)


def test_switch_moves_traffic_to_the_other_running_color(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    code, out, err = _tapctl(
        "switch", "--env", "dev", "--steps", "50,100", "--bake", "0", "--yes"
    )

    assert code == 0, err
    assert "dev: green is live (steps 50,100)" in out
    assert _listener_weights(world) == (0, 100)


# -- status ------------------------------------------------------------------------


def test_status_json_from_an_outputs_file(
    project: Path, world: dict[str, Any], aws_endpoint: str, tmp_path: Path
) -> None:
    code, out, err = _tapctl(
        "status",
        "--env",
        "dev",
        "--outputs-file",
        str(_outputs_file(tmp_path, world)),
        "--json",
    )

    assert code == 0, err
    report = json.loads(out)
    assert report["live_color"] == "blue"
    assert report["colors"]["blue"]["image"] == "public.ecr.aws/nginx/nginx:blue"
    assert report["drift"] == []


def test_status_table_warns_about_drift(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    _set_weights(world, 70, 30)

    code, out, err = _tapctl("status", "--env", "dev")

    assert code == 0, err
    assert "live color blue (blue 70 / green 30)" in out
    assert "2/2 running" in out
    assert (
        "drift: listener weights blue 70 / green 30, config says blue 100 / green 0"
        in err
    )


def _stack_named_traffic(world: dict[str, Any], suffix: str) -> dict[str, str]:
    """A load balancer, target groups and listeners named as lib/tap_stack.py
    names them (``tap-<suffix>-alb``, ``tap-<suffix>-blue``/``-green``), with
    green live; the test listener forwards to the idle color only."""
    session = boto3.session.Session()
    elb = session.client("elbv2")
    network = world_network(session, world)
    alb = elb.create_load_balancer(
        Name=f"tap-{suffix}-alb", Subnets=network.subnet_ids, Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {}
    for color in ("blue", "green"):
        groups[color] = elb.create_target_group(
            Name=f"tap-{suffix}-{color}",
            Protocol="HTTP",
            Port=8080,
            VpcId=network.vpc_id,
            TargetType="ip",
        )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(
            TargetGroupArn=groups[color], Targets=[{"Id": "10.0.10.21", "Port": 8080}]
        )

    def forward(weights: dict[str, int], port: int) -> str:
        targets = [
            {"TargetGroupArn": groups[color], "Weight": weight}
            for color, weight in weights.items()
        ]
        action = {"Type": "forward", "ForwardConfig": {"TargetGroups": targets}}
        return str(
            elb.create_listener(
                LoadBalancerArn=alb, Protocol="HTTP", Port=port, DefaultActions=[action]
            )["Listeners"][0]["ListenerArn"]
        )

    forward({"blue": 100}, 8443)
    return {
        "prod_listener_arn": forward({"blue": 0, "green": 100}, 80),
        "blue_target_group_arn": groups["blue"],
        "green_target_group_arn": groups["green"],
    }


def test_rollback_without_engine_finds_the_listener_by_name_and_restores_traffic(
    project: Path, double: AutomationDouble, recorder: Recorder
) -> None:
    dev = build_world(suffix="dev")
    traffic = _stack_named_traffic(dev, "dev")
    double.cli_missing = True

    recorder.start()
    code, out, err = _tapctl("rollback", "--env", "dev", "--yes")
    operations = recorder.operations()

    assert code == 0, err
    listener = boto3.client("elbv2").describe_listeners(
        ListenerArns=[traffic["prod_listener_arn"]]
    )["Listeners"][0]
    forward = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert {g["TargetGroupArn"]: g["Weight"] for g in forward} == {
        traffic["blue_target_group_arn"]: 100,
        traffic["green_target_group_arn"]: 0,
    }
    assert operations == [
        "DescribeLoadBalancers",
        "DescribeTargetGroups",
        "DescribeListeners",
        "DescribeListeners",
        "DescribeTargetHealth",
        "ModifyListener",
    ]
    assert (
        "tapctl: warning: cannot read outputs from the engine (the Pulumi CLI is "
        "not on PATH" in err
    )
    assert (
        "dev: all traffic on blue (blue 100 / green 0; was blue 0 / green 100)" in out
    )
    assert "reconcile with: tapctl rollback --env dev --to blue --yes" in err


def test_rollback_without_engine_or_stack_named_balancer_points_at_the_outputs_file(
    project: Path, world: dict[str, Any], double: AutomationDouble
) -> None:
    _set_weights(world, 0, 100)
    double.cli_missing = True

    code, _, err = _tapctl("rollback", "--env", "dev", "--yes")

    assert code == 1
    assert (
        "tapctl: error: finding the production listener of tap-dev-alb: "
        "LoadBalancerNotFound" in err
    )
    assert (
        "roll back without the engine: tapctl rollback --env ENV --outputs-file" in err
    )
    assert _listener_weights(world) == (0, 100)
