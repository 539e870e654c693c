"""Blue/green flows (``tapctl.release``) against moto's server on 127.0.0.1.

The AWS side is a healthy world from ``tests/aws_world.py``; the engine is a
recording fake. Every listener write is captured with a botocore ``before-call``
hook on the product's own session, so the invariants (weights add up to 100,
no traffic to a color without a healthy target) are checked on what was really
sent.

moto limits met here, and how the tests live with them:
- ECS services never settle unless ``MOTO_ECS_SERVICE_RUNNING`` is set in the
  server's process (here: this process), so the world sets it and the "not
  stable" test restarts a service without it.
- every registered target is reported healthy, so "unhealthy" is shown by
  deregistering all targets of a color.
- alarms do not evaluate metrics; ``set_alarm_state`` puts one in ALARM.
- the load balancer answers no HTTP, so the exported DNS name points the
  http.health check at a server the test runs on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tapctl.aws import Aws
from tapctl.engine import StackLocked, StackOutputs, UpReport
from tapctl.errors import AwsError, EngineError, ExitCode, Interrupted, TapctlError
from tapctl.release import (
    Cancelled,
    DeployRequest,
    GateFailed,
    Hooks,
    ReleaseLocked,
    ReleaseRefused,
    ShiftAborted,
    StackRef,
    deploy,
    read_status,
    release_lock,
    rollback,
    switch,
    wait_service_stable,
)
from tests.aws_world import (
    build_world,
    settled_services_env,
    start_service,
    world_network,
)

pytestmark = pytest.mark.integration

IMAGE = "registry.example.com/tap/web:2.0.1"
RUNNING_ENV = settled_services_env()


# -- the world, the engine and a record of what was sent ----------------------------


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def health_port() -> Iterator[int]:
    """What the test listener would answer: 200 on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def world(
    aws_endpoint: str, health_port: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    for name, value in RUNNING_ENV.items():
        monkeypatch.setenv(name, value)
    return build_world(alb_dns_name="127.0.0.1", test_port=health_port)


@pytest.fixture
def ref(tmp_path: Path) -> StackRef:
    return StackRef("tap", "test", tmp_path / ".pulumi-state")


@dataclass
class Timeline:
    """AWS operations and engine calls in the order they happened."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def written_weights(self) -> list[tuple[int, int]]:
        """(blue, green) of every ModifyListener, read back from its params."""
        return [
            _weights_of(params)
            for name, params in self.events
            if name == "ModifyListener"
        ]


def _weights_of(params: Mapping[str, Any]) -> tuple[int, int]:
    groups = params["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    by_name = {
        g["TargetGroupArn"].split("/")[1].split("-")[1]: g["Weight"] for g in groups
    }
    return by_name["blue"], by_name["green"]


@pytest.fixture
def timeline() -> Timeline:
    return Timeline()


@pytest.fixture
def aws(world: dict[str, Any], timeline: Timeline) -> Aws:
    """The product's AWS access, with every call recorded before it is sent."""
    session = boto3.session.Session()

    def record(model: Any, params: Mapping[str, Any], **_: Any) -> None:
        timeline.events.append((model.name, params))

    session.events.register("before-parameter-build", record)
    return Aws(session)


@dataclass
class FakeEngine:
    """Records calls; ``up`` exports config the way the program does."""

    values: dict[str, Any]
    timeline: Timeline
    config: dict[str, str] = field(default_factory=dict)
    errors: dict[str, TapctlError] = field(default_factory=dict)

    def _call(self, name: str, argument: Any = None) -> None:
        self.timeline.events.append((f"engine.{name}", argument))
        if name in self.errors:
            raise self.errors[name]

    def outputs(self) -> StackOutputs:
        self._call("outputs")
        return StackOutputs(dict(self.values))

    def get_config(self, key: str) -> str | None:
        self._call("get_config", key)
        return self.config.get(key)

    def set_config(self, values: Mapping[str, str]) -> None:
        self._call("set_config", dict(values))
        self.config.update(values)

    def up(self, *, targets: Sequence[str] | None = None) -> UpReport:
        self._call("up", list(targets) if targets else None)
        self.values["active_color"] = self.config.get(
            "activeColor", self.values["active_color"]
        )
        for color in ("blue", "green"):
            image = self.config.get(f"{color}Image", self.values[f"{color}_image"])
            if image != self.values[f"{color}_image"]:
                run_image(self.values, color, image)
            self.values[f"{color}_image"] = image
        return UpReport("test", "update", {}, 0.1, StackOutputs(dict(self.values)))

    def engine_calls(self) -> list[tuple[str, Any]]:
        return [(n, a) for n, a in self.timeline.events if n.startswith("engine.")]


@pytest.fixture
def engine(world: dict[str, Any], timeline: Timeline) -> FakeEngine:
    return FakeEngine(dict(world), timeline)


def _yes(question: str) -> bool:
    return True


def _hooks(sleep: Callable[[float], None] = lambda _: None, **extra: Any) -> Hooks:
    """Hooks that answer yes (the default refuses) and do not sleep."""
    return Hooks(sleep=sleep, **{"confirm": _yes, **extra})


def run_image(outputs: Mapping[str, Any], color: str, image: str) -> None:
    """What ``up`` (or ECS's own rollback) does to a color's service: a new
    task definition with ``image``, and the service on it. moto keeps a
    service's deployment as created, so the service is recreated."""
    session = boto3.session.Session()
    changed = {**outputs, f"{color}_image": image}
    start_service(session, changed, world_network(session, changed), color)


def _listener_weights(outputs: Mapping[str, Any]) -> tuple[int, int]:
    elb = boto3.client("elbv2")
    listener = elb.describe_listeners(ListenerArns=[outputs["prod_listener_arn"]])
    return _weights_of(listener["Listeners"][0])


def _set_weights(outputs: Mapping[str, Any], blue: int, green: int) -> None:
    boto3.client("elbv2").modify_listener(
        ListenerArn=outputs["prod_listener_arn"],
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {
                            "TargetGroupArn": outputs["blue_target_group_arn"],
                            "Weight": blue,
                        },
                        {
                            "TargetGroupArn": outputs["green_target_group_arn"],
                            "Weight": green,
                        },
                    ]
                },
            }
        ],
    )


def _deregister_all(outputs: Mapping[str, Any], color: str) -> None:
    elb = boto3.client("elbv2")
    arn = outputs[f"{color}_target_group_arn"]
    targets = [
        t["Target"]
        for t in elb.describe_target_health(TargetGroupArn=arn)[
            "TargetHealthDescriptions"
        ]
    ]
    elb.deregister_targets(TargetGroupArn=arn, Targets=targets)


def _assert_invariants(timeline: Timeline) -> None:
    assert all(blue + green == 100 for blue, green in timeline.written_weights())


# -- deploy -------------------------------------------------------------------


def test_deploy_moves_traffic_in_steps_and_makes_the_new_color_active(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    bakes: list[float] = []
    request = DeployRequest(IMAGE, (10, 50, 100), bake=7, timeout=5)

    outcome = deploy(engine, aws, ref, request, _hooks(sleep=bakes.append))

    assert outcome.done and outcome.plan.shift.new == "green"
    assert timeline.written_weights() == [(90, 10), (50, 50), (0, 100)]
    assert bakes == [7, 7, 7]
    assert _listener_weights(world) == (0, 100)
    blue_image = world["blue_image"]
    assert engine.engine_calls() == [
        ("engine.outputs", None),
        (
            "engine.set_config",
            {
                "activeColor": "blue",
                "idleWeight": "0",
                "blueImage": blue_image,
                "greenImage": IMAGE,
            },
        ),
        ("engine.up", None),
        (
            "engine.set_config",
            {
                "activeColor": "green",
                "idleWeight": "0",
                "blueImage": blue_image,
                "greenImage": IMAGE,
            },
        ),
        ("engine.up", None),
    ]
    _assert_invariants(timeline)


def test_deploy_checks_health_and_alarms_after_every_step(
    engine: FakeEngine, aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    deploy(
        engine, aws, ref, DeployRequest(IMAGE, (50, 100), bake=0, timeout=5), _hooks()
    )

    names = timeline.names()
    writes = [i for i, name in enumerate(names) if name == "ModifyListener"]
    for index in writes:
        after = names[index + 1 :]
        assert after[:2] == ["DescribeTargetHealth", "DescribeAlarms"]
    before_first = names[: writes[0]]
    assert before_first[-1] == "DescribeTargetHealth"


def test_deploy_gate_fails_when_the_service_wait_times_out(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    seen: list[tuple[str, str, float]] = []

    def never_stable(aws: Aws, cluster: str, service: str, timeout: float) -> None:
        seen.append((cluster, service, timeout))
        raise GateFailed("service.stable", f"service {service} was not stable")

    with pytest.raises(GateFailed) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, timeout=42),
            _hooks(wait_stable=never_stable),
        )

    assert seen == [(world["ecs_cluster_name"], world["green_service_name"], 42)]
    assert failure.value.gate == "service.stable"
    assert "no traffic was moved: blue still takes all of it" in str(failure.value.hint)
    assert timeline.written_weights() == []
    assert (
        "engine.set_config",
        {"activeColor": "green", "idleWeight": "0"},
    ) not in engine.engine_calls()


def test_real_waiter_times_out_on_a_service_whose_rollout_never_completes(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the setting, moto keeps the recreated service at 0 running tasks.
    for name in RUNNING_ENV:
        monkeypatch.delenv(name)
    session = boto3.session.Session()
    start_service(session, world, world_network(session, world), "green")

    with pytest.raises(GateFailed) as failure:
        deploy(engine, aws, ref, DeployRequest(IMAGE, timeout=2), _hooks())

    assert failure.value.gate == "service.stable"
    assert "not stable within 2s (0/2 tasks running" in failure.value.message
    assert timeline.names().count("DescribeServices") == 2  # Delay 1, MaxAttempts 2
    assert timeline.written_weights() == []


def test_deploy_gate_fails_when_the_idle_color_checks_fail(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    _deregister_all(world, "green")

    with pytest.raises(GateFailed) as failure:
        deploy(engine, aws, ref, DeployRequest(IMAGE, timeout=5), _hooks())

    assert failure.value.gate == "verify"
    assert "checks on green failed: targets.healthy" in failure.value.message
    assert timeline.written_weights() == []
    assert _listener_weights(world) == (100, 0)


def test_alarm_in_alarm_after_a_step_puts_traffic_back(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    def alarm_fires(_: float) -> None:
        boto3.client("cloudwatch").set_alarm_state(
            AlarmName=world["alarm_names"][0], StateValue="ALARM", StateReason="test"
        )

    with pytest.raises(ShiftAborted) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, bake=1, timeout=5),
            _hooks(sleep=alarm_fires),
        )

    assert failure.value.exit_code == ExitCode.FAILED
    assert (
        f"gate alarms failed: in ALARM after the 10% step: {world['alarm_names'][0]}"
        in failure.value.message
    )
    assert "traffic restored to blue (blue 100 / green 0)" in failure.value.message
    assert timeline.written_weights() == [(90, 10), (100, 0)]
    assert _listener_weights(world) == (100, 0)
    assert engine.config["activeColor"] == "blue"


def test_unhealthy_targets_after_a_step_put_traffic_back(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    bakes: list[float] = []

    def targets_vanish_at_second_step(seconds: float) -> None:
        bakes.append(seconds)
        if len(bakes) == 2:
            _deregister_all(world, "green")

    with pytest.raises(ShiftAborted) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, timeout=5),
            _hooks(sleep=targets_vanish_at_second_step),
        )

    assert (
        "gate targets.healthy failed: green targets after the 50% step"
        in failure.value.message
    )
    assert timeline.written_weights() == [(90, 10), (50, 50), (100, 0)]
    assert _listener_weights(world) == (100, 0)
    _assert_invariants(timeline)


def test_ctrl_c_during_a_bake_restores_the_old_weights_and_exits_130(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    bakes: list[float] = []

    def interrupted_at_second_step(seconds: float) -> None:
        bakes.append(seconds)
        if len(bakes) == 2:
            raise KeyboardInterrupt

    with pytest.raises(ShiftAborted) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, timeout=5),
            _hooks(sleep=interrupted_at_second_step),
        )

    assert failure.value.exit_code == ExitCode.INTERRUPTED
    assert (
        "interrupted while moving traffic to green; traffic restored to blue"
        in failure.value.message
    )
    assert timeline.written_weights() == [(90, 10), (50, 50), (100, 0)]
    assert _listener_weights(world) == (100, 0)


def test_ctrl_c_when_restoring_fails_says_where_traffic_is_and_how_to_fix_it(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    def listener_gone(_: float) -> None:
        boto3.client("elbv2").delete_listener(ListenerArn=world["prod_listener_arn"])
        raise KeyboardInterrupt

    with pytest.raises(ShiftAborted) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, timeout=5),
            _hooks(sleep=listener_gone),
        )

    assert failure.value.exit_code == ExitCode.INTERRUPTED
    assert "putting traffic back on blue failed" in failure.value.message
    assert (
        "live weights now: unknown (last set: blue 90 / green 10)"
        in failure.value.message
    )
    assert (
        failure.value.hint
        == "restore it with: tapctl rollback --env test --to blue --yes"
    )


def test_deploy_refuses_when_the_idle_color_already_takes_traffic(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    _set_weights(world, 60, 40)

    with pytest.raises(ReleaseRefused) as refused:
        deploy(engine, aws, ref, DeployRequest(IMAGE), _hooks())

    assert (
        "sends 40% to green, the color this release would replace"
        in refused.value.message
    )
    assert engine.engine_calls() == [("engine.outputs", None)]
    assert timeline.written_weights() == []


def test_stack_locked_by_another_update_refuses_the_deploy_before_traffic_moves(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    engine.errors["up"] = StackLocked("stack test is locked by another update")

    with pytest.raises(EngineError, match="locked by another update"):
        deploy(engine, aws, ref, DeployRequest(IMAGE), _hooks())

    assert timeline.written_weights() == []


def test_recording_failure_after_a_deploy_names_the_command_that_records_it(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    class SecondUpFails(FakeEngine):
        def up(self, *, targets: Sequence[str] | None = None) -> UpReport:
            if self.config.get("activeColor") == "green":
                raise EngineError("up of stack test failed: boom")
            return super().up(targets=targets)

    failing = SecondUpFails(dict(world), Timeline())
    with pytest.raises(EngineError) as failure:
        deploy(failing, aws, ref, DeployRequest(IMAGE, timeout=5), _hooks())

    assert failure.value.message.startswith(
        "green takes all traffic, but the stack config"
    )
    assert failure.value.hint == "record it with: tapctl up --env test --yes"
    assert _listener_weights(world) == (0, 100)


# -- switch -------------------------------------------------------------------


def test_switch_moves_traffic_between_running_colors_without_an_image_change(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    outcome = switch(engine, aws, ref, to=None, steps=(25, 100), bake=0, hooks=_hooks())

    assert outcome.done and outcome.plan.shift.new == "green"
    assert timeline.written_weights() == [(75, 25), (0, 100)]
    assert [name for name, _ in engine.engine_calls()] == [
        "engine.outputs",
        "engine.set_config",
        "engine.up",
    ]
    assert engine.config["greenImage"] == world["green_image"]
    assert engine.config["blueImage"] == world["blue_image"]


def test_switch_from_a_split_listener_only_ever_moves_towards_the_new_color(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    _set_weights(world, 70, 30)

    outcome = switch(
        engine, aws, ref, to="green", steps=(10, 50, 100), bake=0, hooks=_hooks()
    )

    assert outcome.done
    # 10% would have cut green's 30% and sent 90% to blue unchecked.
    assert timeline.written_weights() == [(50, 50), (0, 100)]


def test_switch_never_sends_traffic_to_a_color_without_healthy_targets(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    _deregister_all(world, "green")

    # The pre-shift gate stops it before any listener write.
    with pytest.raises(GateFailed, match="targets.healthy: no targets registered"):
        switch(engine, aws, ref, to="green", hooks=_hooks())

    assert timeline.written_weights() == []
    assert _listener_weights(world) == (100, 0)


def test_switch_to_the_color_that_already_takes_everything_changes_nothing(
    engine: FakeEngine, aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    outcome = switch(engine, aws, ref, to="blue", hooks=_hooks())

    assert not outcome.done and outcome.note == "blue already takes all traffic"
    assert timeline.written_weights() == []


# -- rollback -----------------------------------------------------------------


@pytest.fixture
def green_live(world: dict[str, Any]) -> dict[str, Any]:
    _set_weights(world, 0, 100)
    return world | {"active_color": "green"}


def test_rollback_moves_traffic_with_one_write_after_two_reads_then_records_it(
    green_live: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    engine = FakeEngine(dict(green_live), timeline)

    outcome = rollback(aws, green_live, ref, lambda: engine, hooks=_hooks())

    assert timeline.names() == [
        "DescribeListeners",
        "DescribeTargetHealth",
        "ModifyListener",
        "engine.set_config",
        "engine.up",
    ]
    assert timeline.written_weights() == [(100, 0)]
    assert outcome.color == "blue" and outcome.drift is None
    assert engine.config == {
        "activeColor": "blue",
        "idleWeight": "0",
        "blueImage": green_live["blue_image"],
        "greenImage": green_live["green_image"],
    }
    assert engine.engine_calls()[-1] == (
        "engine.up",
        ["urn:pulumi:test::tap::**lb/listener:Listener::*"],
    )


def test_rollback_without_an_engine_keeps_traffic_restored_and_reports_drift(
    green_live: dict[str, Any], aws: Aws, ref: StackRef
) -> None:
    def no_engine() -> FakeEngine:
        raise EngineError("the Pulumi CLI is not on PATH")

    outcome = rollback(aws, green_live, ref, no_engine, hooks=_hooks())

    assert _listener_weights(green_live) == (100, 0)
    assert outcome.drift is not None
    assert "not on PATH" in outcome.drift.reason
    assert outcome.drift.command == "tapctl rollback --env test --to blue --yes"


def test_rollback_records_when_the_config_file_disagrees_with_old_outputs(
    world: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    # A deploy finished here (config says green) but the outputs file is older.
    _set_weights(world, 0, 100)
    engine = FakeEngine(dict(world), timeline)

    outcome = rollback(
        aws, world, ref, lambda: engine, config_active="green", hooks=_hooks()
    )

    assert _listener_weights(world) == (100, 0)
    assert outcome.drift is None
    assert engine.config["activeColor"] == "blue"


def test_ctrl_c_after_the_listener_change_says_where_traffic_is(
    green_live: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    def interrupted_engine() -> FakeEngine:
        raise KeyboardInterrupt  # as if Ctrl-C landed while the engine loads

    with pytest.raises(Interrupted) as stopped:
        rollback(aws, green_live, ref, interrupted_engine, hooks=_hooks())

    assert _listener_weights(green_live) == (100, 0)
    assert stopped.value.message == (
        "interrupted after the listener change: blue 100 / green 0, but the "
        "stack config does not record it yet"
    )
    assert stopped.value.hint == (
        "record it with: tapctl rollback --env test --to blue --yes"
    )


def test_rollback_whose_targeted_up_fails_names_the_targeted_up_to_run(
    green_live: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    engine = FakeEngine(dict(green_live), timeline, errors={"up": EngineError("boom")})

    outcome = rollback(aws, green_live, ref, lambda: engine, hooks=_hooks())

    assert outcome.drift is not None
    assert outcome.drift.command == (
        "tapctl up --env test --yes "
        "--target 'urn:pulumi:test::tap::**lb/listener:Listener::*'"
    )
    assert _listener_weights(green_live) == (100, 0)


def test_rollback_refuses_a_color_without_healthy_targets_unless_forced(
    green_live: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    _deregister_all(green_live, "blue")
    engine = FakeEngine(dict(green_live), timeline)

    with pytest.raises(
        ReleaseRefused, match="refusing to roll back to blue: it has no healthy target"
    ):
        rollback(aws, green_live, ref, lambda: engine, hooks=_hooks())
    assert timeline.written_weights() == []

    warnings: list[str] = []
    rollback(
        aws,
        green_live,
        ref,
        lambda: engine,
        force=True,
        hooks=_hooks(warn=warnings.append),
    )
    assert timeline.written_weights() == [(100, 0)]
    assert warnings == ["--force: moving traffic to blue, which has no healthy target"]


def test_rollback_on_evenly_split_traffic_needs_to(
    world: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    _set_weights(world, 50, 50)

    with pytest.raises(TapctlError, match="splits traffic evenly") as failure:
        rollback(
            aws, world, ref, lambda: FakeEngine(dict(world), timeline), hooks=_hooks()
        )

    assert failure.value.exit_code == ExitCode.USAGE
    rollback(
        aws,
        world,
        ref,
        lambda: FakeEngine(dict(world), timeline),
        to="blue",
        hooks=_hooks(),
    )
    assert _listener_weights(world) == (100, 0)


def test_a_second_release_on_the_same_stack_is_refused_before_touching_traffic(
    green_live: dict[str, Any], aws: Aws, ref: StackRef, timeline: Timeline
) -> None:
    with release_lock(ref), pytest.raises(ReleaseLocked) as refused:
        rollback(aws, green_live, ref, lambda: FakeEngine({}, timeline), hooks=_hooks())

    assert "another tapctl release on stack test is running" in refused.value.message
    assert timeline.events == []
    assert _listener_weights(green_live) == (0, 100)


# -- status -------------------------------------------------------------------


def test_status_reports_live_color_images_tasks_and_health(
    world: dict[str, Any], aws: Aws
) -> None:
    report = read_status(aws, world, env="test", idle_weight="0").to_json()

    assert report["live_color"] == "blue"
    assert report["weights"] == {"blue": 100, "green": 0}
    assert report["test_listener_color"] == "green"
    assert report["drift"] == []
    assert report["colors"]["green"] == {
        "weight": 0,
        "image": "public.ecr.aws/nginx/nginx:green",
        "image_source": "task definition",
        "desired": 2,
        "running": 2,
        "targets": {"healthy": 2},
        "healthy_targets": 2,
    }


def test_status_reports_drift_between_listener_and_config(
    world: dict[str, Any], aws: Aws
) -> None:
    _set_weights(world, 70, 30)

    report = read_status(aws, world, env="test", idle_weight=None)

    assert report.drift == [
        "listener weights blue 70 / green 30, config says blue 100 / green 0"
    ]
    assert read_status(aws, world, env="test", idle_weight="30").drift == []


def test_status_reports_production_while_the_test_listener_forwards_nowhere(
    world: dict[str, Any], aws: Aws
) -> None:
    boto3.client("elbv2").modify_listener(
        ListenerArn=world["test_listener_arn"],
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "503"},
            }
        ],
    )

    report = read_status(aws, world, env="test", idle_weight="0").to_json()

    assert report["weights"] == {"blue": 100, "green": 0}
    assert report["test_listener_color"] is None


def test_status_names_a_production_listener_that_does_not_exist(
    world: dict[str, Any], aws: Aws
) -> None:
    missing = world["prod_listener_arn"].rsplit("/", 1)[0] + "/0123456789abcdef"

    with pytest.raises(AwsError, match="production listener .* was not found"):
        read_status(
            aws, world | {"prod_listener_arn": missing}, env="test", idle_weight="0"
        )


# -- stale config, ECS rollbacks, gates, defaults ------------------------------


def test_deploy_pins_the_live_state_from_outputs_over_a_stale_config_file(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    # Green is live and the outputs say so; the checkout's file still says blue.
    _set_weights(world, 0, 100)
    engine.values["active_color"] = "green"
    engine.config.update(
        {"activeColor": "blue", "idleWeight": "0", "greenImage": "web:stale"}
    )

    # The world's test listener serves green; the gate is not under test here.
    passing = _hooks(check_color=lambda *_: [])
    deploy(engine, aws, ref, DeployRequest(IMAGE, bake=0, timeout=5), passing)

    first_write = engine.engine_calls()[1]
    assert first_write == (
        "engine.set_config",
        {
            "activeColor": "green",
            "idleWeight": "0",
            "greenImage": world["green_image"],
            "blueImage": IMAGE,
        },
    )
    assert _listener_weights(world) == (100, 0)


def test_deploy_refuses_with_exit_2_when_the_listener_disagrees_with_outputs(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    _set_weights(world, 0, 100)  # outputs still record blue as active

    with pytest.raises(TapctlError) as refused:
        deploy(engine, aws, ref, DeployRequest(IMAGE), _hooks())

    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message == (
        "the production listener sends all traffic to green, but the stack "
        "outputs record blue as active; nothing was changed"
    )
    assert "tapctl rollback --env test --to green --yes" in str(refused.value.hint)
    assert engine.engine_calls() == [("engine.outputs", None)]


def test_deploy_mid_shift_says_so_and_points_at_rollback(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    _set_weights(world, 70, 30)

    with pytest.raises(ReleaseRefused) as refused:
        deploy(engine, aws, ref, DeployRequest(IMAGE), _hooks())

    assert "is mid-shift (blue 70 / green 30)" in refused.value.message
    assert "tapctl rollback --env test --to blue --yes" in str(refused.value.hint)


def test_a_rollout_that_ecs_rolled_back_fails_the_stable_gate(
    engine: FakeEngine,
    aws: Aws,
    ref: StackRef,
    world: dict[str, Any],
    timeline: Timeline,
) -> None:
    def circuit_breaker(aws: Aws, cluster: str, service: str, timeout: float) -> None:
        # The new image failed: ECS went back to the old task definition and
        # the service is stable again on it.
        run_image(world, "green", world["green_image"])
        wait_service_stable(aws, cluster, service, timeout)

    with pytest.raises(GateFailed) as failure:
        deploy(
            engine,
            aws,
            ref,
            DeployRequest(IMAGE, timeout=5),
            _hooks(wait_stable=circuit_breaker),
        )

    assert failure.value.gate == "service.stable"
    assert failure.value.message == (
        "gate service.stable failed: ECS rolled tap-green-test back to "
        "public.ecr.aws/nginx/nginx:green"
    )
    assert timeline.written_weights() == []
    assert _listener_weights(world) == (100, 0)


def test_skipped_gate_checks_are_left_out_and_said_in_a_warning(
    engine: FakeEngine, aws: Aws, ref: StackRef
) -> None:
    ran: list[tuple[str, ...]] = []
    warnings: list[str] = []

    def record(outputs: Any, aws: Aws, env: str, color: str, checks: Any) -> list[str]:
        ran.append(tuple(checks))
        return []

    request = DeployRequest(IMAGE, bake=0, timeout=5, skip_checks=("http.health",))
    deploy(
        engine,
        aws,
        ref,
        request,
        _hooks(check_color=record, warn=warnings.append),
    )

    assert ran == [("alb.active", "listener.weights", "targets.healthy", "ecs.steady")]
    assert warnings == ["pre-shift gate skips http.health (--skip-check)"]


def test_an_unreachable_aws_api_during_the_stability_wait_is_one_aws_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    with pytest.raises(AwsError) as failure:
        wait_service_stable(Aws(), "tap-test", "tap-green-test", 2)

    assert failure.value.message == (
        "waiting for service tap-green-test to be stable: "
        f"cannot connect to http://127.0.0.1:{port}/"
    )


def test_hooks_without_a_confirm_refuse_to_move_traffic(
    engine: FakeEngine, aws: Aws, ref: StackRef, world: dict[str, Any]
) -> None:
    with pytest.raises(Cancelled):
        deploy(engine, aws, ref, DeployRequest(IMAGE, bake=0, timeout=5), Hooks())

    assert engine.engine_calls() == [("engine.outputs", None)]
    assert _listener_weights(world) == (100, 0)
