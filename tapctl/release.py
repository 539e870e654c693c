"""Blue/green releases: where traffic is, and moving it without losing users.

Traffic moves only through the production listener's forward weights, always
as a pair that adds up to 100 and never towards a color without a healthy
target. Stack config (``activeColor``, ``idleWeight``, ``blueImage``,
``greenImage``) records the outcome, so that Pulumi's state keeps saying which
color is live. The engine is reached through the small ``ReleaseEngine``
protocol and the slow or interactive parts through ``Hooks``, so that every
flow can run against a recording engine and a local AWS API.
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import botocore.exceptions
from botocore.config import Config

from tapctl.aws import Aws, describe_aws_error, translated_errors
from tapctl.errors import (
    AwsError,
    CheckFailed,
    ConfigError,
    EngineError,
    Interrupted,
    TapctlError,
    UsageError,
    one_line,
)
from tapctl.outputs import COLORS, other_color, require

DEFAULT_STEPS = (10, 50, 100)
#: The verify checks that say whether one color can take users; account-wide
#: checks (trail, bucket, CDN, database) are verify's business, not a release's.
GATE_CHECKS = (
    "alb.active",
    "listener.weights",
    "targets.healthy",
    "ecs.steady",
    "http.health",
)
#: Check outcomes of ``tapctl verify`` that fail the pre-shift gate.
FAILED_CHECK_STATES = ("fail", "error")
#: ECS's own waiter polls every 15 seconds; shorter timeouts poll faster.
WAITER_MAX_DELAY = 15
#: Timeouts and attempts of every AWS call a release makes: on-call must hear
#: within about half a minute that the API does not answer, not after minutes.
#: Read at call time, so that a test can shorten them.
AWS_LIMITS = Config(
    connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 3}
)
#: Upper bounds of --bake and --timeout: longer waits are typos, not plans.
MAX_BAKE = 3600.0
MAX_TIMEOUT = 7200.0
#: Output keys that name the production listener and both target groups.
LISTENER_KEYS = (
    "prod_listener_arn",
    "blue_target_group_arn",
    "green_target_group_arn",
)
#: Output keys every traffic change reads; checked before any AWS call.
TRAFFIC_KEYS = (*LISTENER_KEYS, "active_color")
_STEP = re.compile(r" *([0-9]{1,3}) *", re.ASCII)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = (
    r"(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?"
    r"|[A-Za-z0-9-]+:[0-9]+)/"
)
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_REGISTRY})?{_COMPONENT}(?:/{_COMPONENT})*"
    rf"(?::{_TAG}(?:@{_DIGEST})?|@{_DIGEST})\Z"
)


# -- errors -------------------------------------------------------------------


class GateFailed(CheckFailed):
    """A release gate did not pass; ``gate`` names which one."""

    def __init__(self, gate: str, reason: str) -> None:
        super().__init__(f"gate {gate} failed: {reason}")
        self.gate = gate


class ReleaseLocked(TapctlError):
    """Another tapctl release on this machine holds the stack's local lock."""


class ReleaseRefused(TapctlError):
    """The release would send users to a color that cannot serve them."""


class ShiftAborted(TapctlError):
    """A traffic shift stopped part-way; the message says where traffic is."""

    def __init__(self, cause: TapctlError, message: str, hint: str | None) -> None:
        super().__init__(message, hint)
        self.exit_code = cause.exit_code
        self.cause = cause


class Cancelled(TapctlError):
    """The user answered no at the confirmation prompt."""


# -- input --------------------------------------------------------------------


def check_image(image: str) -> str:
    """An image reference with an explicit tag or digest; no implicit latest."""
    if not IMAGE_REFERENCE.match(image):
        raise UsageError(
            f"--image {image!r} is not an image reference with a tag or digest",
            hint="use REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST "
            "(e.g. public.ecr.aws/nginx/nginx:1.27-alpine)",
        )
    return image


def parse_steps(text: str) -> tuple[int, ...]:
    """``10,50,100`` as percentages: increasing, within 1..100, ending at 100.

    Only ASCII digits: ``int`` would also take other scripts' digits, signs
    and underscores, which no one means in a percentage.
    """
    found = [_STEP.fullmatch(part) for part in text.split(",")]
    if not all(found):
        raise UsageError(
            f"--steps {text!r:.60} must be comma-separated whole percentages",
            hint="for example --steps 10,50,100",
        )
    return check_steps(tuple(int(match.group(1)) for match in found if match))


def check_steps(steps: Sequence[int]) -> tuple[int, ...]:
    """Steps that never go back, stay within 1..100 and end with all traffic."""
    increasing = all(a < b for a, b in zip(steps, steps[1:], strict=False))
    in_range = all(1 <= step <= 100 for step in steps)
    if not steps or not increasing or not in_range or steps[-1] != 100:
        listed = ",".join(str(step) for step in steps)
        raise UsageError(
            f"--steps {listed} must increase within 1..100 and end at 100",
            hint="for example --steps 10,50,100",
        )
    return tuple(steps)


def check_seconds(
    option: str, value: float, *, limit: float, positive: bool = False
) -> float:
    """A finite number of seconds within bounds (0 allowed unless ``positive``)."""
    low_ok = value > 0 if positive else value >= 0
    if not (math.isfinite(value) and low_ok and value <= limit):
        least = "more than 0" if positive else "0 or more"
        raise UsageError(
            f"{option} {value:g} must be {least} and at most {limit:g} seconds",
            hint=f"for example {option} {min(limit, 60):g}",
        )
    return value


def _client(aws: Aws, service: str) -> Any:
    return aws.client(service, AWS_LIMITS)


# -- weights and what the load balancer says ----------------------------------


@dataclass(frozen=True)
class Weights:
    """Forward weights of the production listener by color."""

    blue: int
    green: int

    @classmethod
    def split(cls, active: str, idle_weight: int) -> Weights:
        """``active`` keeps 100 - ``idle_weight``: the pair always adds up to 100."""
        if not 0 <= idle_weight <= 100:
            raise ValueError(f"idle weight {idle_weight} outside 0..100")
        idle = other_color(active)
        shares = {active: 100 - idle_weight, idle: idle_weight}
        return cls(blue=shares["blue"], green=shares["green"])

    @classmethod
    def all_to(cls, color: str) -> Weights:
        return cls.split(color, 0)

    def of(self, color: str) -> int:
        return self.blue if color == "blue" else self.green

    @property
    def live(self) -> str | None:
        """The color with the larger weight; None on a tie."""
        if self.blue == self.green:
            return None
        return "blue" if self.blue > self.green else "green"

    def as_dict(self) -> dict[str, int]:
        return {"blue": self.blue, "green": self.green}

    def __str__(self) -> str:
        return f"blue {self.blue} / green {self.green}"


@dataclass(frozen=True)
class TargetHealth:
    """Target states of one color's target group, counted."""

    color: str
    states: Mapping[str, int]

    @property
    def healthy(self) -> int:
        return self.states.get("healthy", 0)

    @property
    def total(self) -> int:
        return sum(self.states.values())

    def __str__(self) -> str:
        if not self.total:
            return "no registered targets"
        return ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()))


class Traffic:
    """The production listener and both target groups, through elbv2."""

    def __init__(self, aws: Aws, outputs: Mapping[str, Any]) -> None:
        require(
            outputs,
            ("prod_listener_arn", "blue_target_group_arn", "green_target_group_arn"),
            purpose="moving traffic",
        )
        self.aws = aws
        self.elb = _client(aws, "elbv2")
        self.listener_arn = str(outputs["prod_listener_arn"])
        self.groups = {
            color: str(outputs[f"{color}_target_group_arn"]) for color in COLORS
        }
        self.last_written: Weights | None = None
        self._stickiness: dict[str, Any] | None = None

    def read(self) -> Weights:
        """The listener's weights now; keeps its stickiness setting for writes."""
        with translated_errors("reading the production listener"):
            listener = self.elb.describe_listeners(ListenerArns=[self.listener_arn])
        actions = listener["Listeners"][0]["DefaultActions"]
        forward = _forward_config(actions)
        self._stickiness = forward.get("TargetGroupStickinessConfig")
        return weights_of(forward, self.groups)

    def write(self, weights: Weights) -> None:
        """One modify_listener call: forward to both groups with these weights."""
        forward: dict[str, Any] = {
            "TargetGroups": [
                {"TargetGroupArn": self.groups[color], "Weight": weights.of(color)}
                for color in COLORS
            ]
        }
        if self._stickiness is not None:
            forward["TargetGroupStickinessConfig"] = self._stickiness
        with translated_errors(f"moving traffic to {weights}"):
            self.elb.modify_listener(
                ListenerArn=self.listener_arn,
                DefaultActions=[{"Type": "forward", "ForwardConfig": forward}],
            )
        self.last_written = weights

    def health(self, color: str) -> TargetHealth:
        with translated_errors(f"reading target health of {color}"):
            found = self.elb.describe_target_health(TargetGroupArn=self.groups[color])
        states: dict[str, int] = {}
        for target in found["TargetHealthDescriptions"]:
            state = target["TargetHealth"]["State"]
            states[state] = states.get(state, 0) + 1
        return TargetHealth(color, states)


def _forward_config(actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The listener's forward action as a ForwardConfig, even a single-group one."""
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if "ForwardConfig" in action:
            return dict(action["ForwardConfig"])
        single = {"TargetGroupArn": action["TargetGroupArn"], "Weight": 100}
        return {"TargetGroups": [single]}
    raise AwsError(
        "the production listener has no forward action",
        hint="run tapctl up to restore the listener the stack defines",
    )


def weights_of(forward: Mapping[str, Any], groups: Mapping[str, str]) -> Weights:
    """Weights by color of a ForwardConfig; a group absent from it weighs 0."""
    colors = {arn: color for color, arn in groups.items()}
    shares = dict.fromkeys(COLORS, 0)
    for group in forward.get("TargetGroups", []):
        color = colors.get(group["TargetGroupArn"])
        if color is None:
            raise AwsError(
                f"the listener forwards to {group['TargetGroupArn']}, "
                "which is neither the blue nor the green target group",
                hint="check that the outputs belong to this environment's stack",
            )
        shares[color] = int(group.get("Weight", 100))
    return Weights(blue=shares["blue"], green=shares["green"])


def find_traffic(aws: Aws, suffix: str) -> dict[str, str]:
    """The listener keys of the outputs, found by the stack's fixed names.

    The way back must not need the engine: when it cannot give the outputs,
    the load balancer ``tap-<suffix>-alb``, the target groups
    ``tap-<suffix>-blue`` and ``-green`` (names from ``lib/tap_stack.py``)
    and the listener that forwards to both are looked up instead. That costs
    three reads more than a rollback from outputs.
    """
    elb = _client(aws, "elbv2")
    prefix = f"tap-{suffix}"
    with translated_errors(f"finding the production listener of {prefix}-alb"):
        balancer = elb.describe_load_balancers(Names=[f"{prefix}-alb"])
        alb_arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
        names = [f"{prefix}-{color}" for color in COLORS]
        found = elb.describe_target_groups(Names=names)["TargetGroups"]
        listeners = elb.describe_listeners(LoadBalancerArn=alb_arn)["Listeners"]
    groups = {group["TargetGroupName"]: group["TargetGroupArn"] for group in found}
    arns = {color: groups[f"{prefix}-{color}"] for color in COLORS}
    return {
        "prod_listener_arn": _listener_to_both(listeners, arns, prefix),
        **{f"{color}_target_group_arn": arns[color] for color in COLORS},
    }


def _listener_to_both(
    listeners: Sequence[Mapping[str, Any]], groups: Mapping[str, str], prefix: str
) -> str:
    """The one listener whose forward action names both target groups."""
    wanted = set(groups.values())
    matches = [
        str(listener["ListenerArn"])
        for listener in listeners
        for action in listener.get("DefaultActions", [])
        if action.get("Type") == "forward"
        and wanted
        <= {
            group["TargetGroupArn"]
            for group in action.get("ForwardConfig", {}).get("TargetGroups", [])
        }
    ]
    if len(matches) != 1:
        raise AwsError(
            f"{len(matches)} listeners of {prefix}-alb forward to both "
            f"{prefix}-blue and {prefix}-green; expected exactly one",
            hint="pass the stack's outputs with --outputs-file",
        )
    return matches[0]


def alarms_firing(aws: Aws, names: Sequence[str]) -> list[str]:
    """Names of the given CloudWatch alarms that are in ALARM now."""
    cloudwatch = _client(aws, "cloudwatch")
    firing: list[str] = []
    for start in range(0, len(names), 100):  # describe_alarms takes 100 names
        with translated_errors("reading alarms"):
            page = cloudwatch.describe_alarms(
                AlarmNames=list(names[start : start + 100])
            )
        firing += [
            alarm["AlarmName"]
            for alarm in page["MetricAlarms"] + page.get("CompositeAlarms", [])
            if alarm["StateValue"] == "ALARM"
        ]
    return firing


def alarm_names(outputs: Mapping[str, Any]) -> list[str]:
    """``alarm_names`` from outputs: a list of names; none when it is unset."""
    check_outputs(outputs, (), optional=("alarm_names",), purpose="the alarm gate")
    return [str(name) for name in outputs.get("alarm_names") or []]


def check_outputs(
    outputs: Mapping[str, Any],
    keys: Sequence[str],
    *,
    purpose: str,
    optional: Sequence[str] = (),
) -> None:
    """``keys`` present and well typed, and ``optional`` well typed where set:
    a wrong value is exit 2 before any AWS call, not an error deep inside."""
    present = [key for key in optional if outputs.get(key) not in (None, "", [])]
    require(outputs, [*keys, *present], purpose=purpose)


# -- the stack, its engine and the local lock ---------------------------------


class OutputValues(Protocol):
    @property
    def values(self) -> Mapping[str, Any]: ...


class UpResult(Protocol):
    @property
    def outputs(self) -> OutputValues: ...


class ReleaseEngine(Protocol):
    """The engine operations a release needs (``tapctl.engine.Engine`` has them)."""

    def outputs(self) -> OutputValues: ...

    def get_config(self, key: str) -> str | None: ...

    def set_config(self, values: Mapping[str, str]) -> None: ...

    def up(self, *, targets: Sequence[str] | None = None) -> UpResult: ...


@dataclass(frozen=True)
class StackRef:
    """Which stack a release acts on, and how to name commands for it."""

    project: str
    env: str
    state_dir: Path
    stack: str | None = None

    @property
    def short_name(self) -> str:
        return (self.stack or self.env).rsplit("/", 1)[-1]

    def command(self, verb: str, *args: str) -> str:
        """An exact tapctl command line for this stack."""
        stack = ("--stack", self.stack) if self.stack else ()
        words = ("tapctl", verb, "--env", self.env, *stack, *args)
        return " ".join(shlex.quote(word) for word in words)

    def listener_targets(self) -> list[str]:
        """URN patterns of the stack's listeners (``--target`` accepts globs);
        ``lb`` also matches the ``alb`` alias of the listener type."""
        prefix = f"urn:pulumi:{self.short_name}::{self.project}::"
        return [f"{prefix}**lb/listener:Listener::*"]


@contextmanager
def release_lock(ref: StackRef) -> Iterator[Path]:
    """Hold the stack's local release lock, or refuse at once if it is held.

    The backend's lock only covers engine updates; traffic moves through boto3
    between them, so two tapctl processes on one machine exclude each other
    here for the whole release.
    """
    ref.state_dir.mkdir(parents=True, exist_ok=True)
    path = ref.state_dir / f"release-{ref.short_name}.lock"
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked(ref, path, handle) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def stack_update_lock(
    project: str, env: str, state_dir: Path, stack: str | None = None
) -> Iterator[None]:
    """The release lock around a plain ``tapctl up``: an update during a shift
    would put the listener weights back to what config says mid-release."""
    with release_lock(StackRef(project, env, state_dir, stack)):
        yield


def _locked(ref: StackRef, path: Path, handle: Any) -> ReleaseLocked:
    handle.seek(0)
    holder = handle.read().strip()
    by = f" (pid {holder})" if holder.isdigit() else ""
    return ReleaseLocked(
        f"another tapctl release on stack {ref.short_name} is running{by}; "
        "nothing was changed",
        hint=f"wait for it to finish (lock file: {path})",
    )


# -- seams for the slow and interactive parts ---------------------------------


def wait_service_stable(aws: Aws, cluster: str, service: str, timeout: float) -> None:
    """Wait with botocore's ``services_stable`` waiter, at most ``timeout`` s.

    A service that does not settle fails the gate; an AWS API that cannot be
    reached or refuses the call is an ``AwsError`` in one line.
    """
    delay = max(1, min(WAITER_MAX_DELAY, int(timeout // 10)))
    attempts = max(1, math.ceil(timeout / delay))
    waiter = _client(aws, "ecs").get_waiter("services_stable")
    with translated_errors(f"waiting for service {service} to be stable"):
        try:
            waiter.wait(
                cluster=cluster,
                services=[service],
                WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
            )
        except botocore.exceptions.WaiterError as error:
            if _failed_call(error):
                raise AwsError(
                    f"waiting for service {service} to be stable: "
                    f"{describe_aws_error(error)}"
                ) from error
            raise GateFailed(
                "service.stable",
                f"service {service} was not stable within {timeout:g}s "
                f"({_waiter_reason(error)})",
            ) from error


def _failed_call(error: botocore.exceptions.WaiterError) -> bool:
    """True when the waiter stopped on an error response, not on a state."""
    last: Mapping[str, Any] = error.last_response or {}
    return "Error" in last and "services" not in last


def require_image(aws: Aws, cluster: str, service: str, image: str) -> None:
    """The service's PRIMARY deployment runs ``image``.

    With the deployment circuit breaker on, ECS answers a failing image by
    going back to the previous task definition; the service is then stable
    again, so stability alone would pass a release that never took effect.
    """
    running = _primary_images(aws, cluster, service)
    if image not in running:
        shown = running[0] if running else "a task definition without containers"
        raise GateFailed("service.stable", f"ECS rolled {service} back to {shown}")


def _primary_images(aws: Aws, cluster: str, service: str) -> list[str]:
    ecs = _client(aws, "ecs")
    with translated_errors(f"reading service {service}"):
        found = ecs.describe_services(cluster=cluster, services=[service])
    services = found.get("services") or []
    deployments = services[0].get("deployments", []) if services else []
    primary = [d for d in deployments if d.get("status") == "PRIMARY"]
    if not primary:
        raise GateFailed(
            "service.stable", f"service {service} has no PRIMARY deployment"
        )
    definition = str(primary[0]["taskDefinition"])
    with translated_errors(f"reading task definition {definition}"):
        described = ecs.describe_task_definition(taskDefinition=definition)
    containers = described["taskDefinition"].get("containerDefinitions") or []
    return [str(container["image"]) for container in containers]


def _waiter_reason(error: botocore.exceptions.WaiterError) -> str:
    last: Mapping[str, Any] = error.last_response or {}
    services: list[dict[str, Any]] = last.get("services") or []
    if not services:
        return describe_aws_error(error)
    service = services[0]
    deployments = len(service.get("deployments", []))
    return (
        f"{service.get('runningCount')}/{service.get('desiredCount')} tasks running, "
        f"{deployments} deployment(s) in progress"
    )


def verify_color(
    outputs: Mapping[str, Any],
    aws: Aws,
    env: str,
    color: str,
    checks: Sequence[str] = GATE_CHECKS,
) -> list[str]:
    """The verify checks on one color; returns ``id: detail`` of each failure."""
    from tapctl.verification import run_checks

    report = run_checks(outputs, aws, env=env, color=color, only=checks)
    return [
        f"{check.id}: {check.detail}"
        for check in report.checks
        if check.status in FAILED_CHECK_STATES
    ]


def _refuse(question: str) -> bool:
    """The default answer: a caller that wires no prompt moves no traffic."""
    return False


def _silent(message: str) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """The slow or interactive parts of a release, replaceable one by one."""

    sleep: Callable[[float], None] = time.sleep
    wait_stable: Callable[[Aws, str, str, float], None] = wait_service_stable
    check_color: Callable[
        [Mapping[str, Any], Aws, str, str, Sequence[str]], list[str]
    ] = verify_color
    confirm: Callable[[str], bool] = _refuse
    info: Callable[[str], None] = _silent
    warn: Callable[[str], None] = _silent


DEFAULT_HOOKS = Hooks()


def _confirm(hooks: Hooks, question: str) -> None:
    if not hooks.confirm(question):
        raise Cancelled("cancelled; nothing was changed")


# -- shifting traffic ---------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """Move traffic from ``old`` to ``new`` through ``steps`` percentages."""

    old: str
    new: str
    steps: tuple[int, ...]
    bake: float

    def describe(self) -> list[str]:
        return [
            f"{Weights.split(self.old, percent)} (bake {self.bake:g}s)"
            for percent in self.steps
        ]


def shift_traffic(
    traffic: Traffic,
    alarms: Sequence[str],
    shift: Shift,
    ref: StackRef,
    hooks: Hooks,
    *,
    start: Weights,
) -> None:
    """Every step: the new color must have a healthy target before it gets
    traffic, and after the bake its targets and the alarms must be fine.
    Any failure or Ctrl-C puts all traffic back on the old color.

    Steps at or below the new color's share in ``start`` are skipped: a
    shift only ever moves traffic towards the new color, so the old color
    never gains weight it was not checked for.
    """
    steps = [percent for percent in shift.steps if percent > start.of(shift.new)]
    try:
        for percent in steps:
            _step(traffic, alarms, shift, percent, hooks)
    except TapctlError as failure:
        _restore(traffic, shift, ref, hooks, failure)
    except KeyboardInterrupt:
        cause = Interrupted(f"interrupted while moving traffic to {shift.new}")
        _restore(traffic, shift, ref, hooks, cause)


def _step(
    traffic: Traffic, alarms: Sequence[str], shift: Shift, percent: int, hooks: Hooks
) -> None:
    before = traffic.health(shift.new)
    if before.healthy == 0:
        raise GateFailed(
            "targets.healthy",
            f"{shift.new} has no healthy target ({before}) before the {percent}% step",
        )
    weights = Weights.split(shift.old, percent)
    traffic.write(weights)
    hooks.info(f"traffic: {weights}; baking {shift.bake:g}s")
    hooks.sleep(shift.bake)
    _check_after_step(traffic, alarms, shift.new, percent)


def _check_after_step(
    traffic: Traffic, alarms: Sequence[str], color: str, percent: int
) -> None:
    health = traffic.health(color)
    if health.healthy == 0 or health.states.get("unhealthy", 0):
        raise GateFailed(
            "targets.healthy", f"{color} targets after the {percent}% step: {health}"
        )
    firing = alarms_firing(traffic.aws, alarms)
    if firing:
        raise GateFailed(
            "alarms", f"in ALARM after the {percent}% step: {', '.join(firing)}"
        )


def _restore(
    traffic: Traffic, shift: Shift, ref: StackRef, hooks: Hooks, cause: TapctlError
) -> NoReturn:
    restored = Weights.all_to(shift.old)
    try:
        traffic.write(restored)
    except AwsError as error:
        raise ShiftAborted(
            cause,
            one_line(
                f"{cause.message}; putting traffic back on {shift.old} failed "
                f"({error.message}); live weights now: {_live_weights(traffic)}"
            ),
            hint=f"restore it with: {_rollback_command(ref, shift.old)}",
        ) from error
    hooks.warn(f"traffic restored to {shift.old} ({restored})")
    raise ShiftAborted(
        cause,
        one_line(f"{cause.message}; traffic restored to {shift.old} ({restored})"),
        cause.hint,
    ) from cause


def _rollback_command(ref: StackRef, color: str) -> str:
    return ref.command("rollback", "--to", color, "--yes")


def _live_weights(traffic: Traffic) -> str:
    try:
        return str(traffic.read())
    except AwsError:
        last = traffic.last_written
        return f"unknown (last set: {last})" if last else "unknown"


# -- recording the outcome in the stack ---------------------------------------


@dataclass(frozen=True)
class Drift:
    """Traffic moved, but the stack does not say so yet."""

    color: str
    reason: str
    command: str

    def __str__(self) -> str:
        return (
            f"{self.color} takes all traffic, but the stack config does not record "
            f"it yet ({self.reason})"
        )


def record_live(
    open_engine: Callable[[], ReleaseEngine],
    ref: StackRef,
    color: str,
    outputs: Mapping[str, Any],
    *,
    targeted: bool,
) -> Drift | None:
    """Write ``color`` as active into stack config and reconcile with ``up``.

    Both images are written too, from ``outputs`` (or, when they lack one,
    from the engine's): the config file may be a stale checkout, and the
    reconcile must not put an older image back on either color.

    Returns the drift left behind when the engine cannot do it: traffic has
    already moved and stays where it is.
    """
    targets = ref.listener_targets() if targeted else None
    recorded = False
    try:
        engine = open_engine()
        images = _images(outputs) or _images(engine.outputs().values)
        engine.set_config({"activeColor": color, "idleWeight": "0", **images})
        recorded = True
        engine.up(targets=targets)
    except Interrupted as error:
        drift = _drift(ref, color, error, recorded, targets)
        raise Interrupted(
            f"{error.message}; {drift}", hint=f"run: {drift.command}"
        ) from error
    except TapctlError as error:
        return _drift(ref, color, error, recorded, targets)
    return None


def _images(outputs: Mapping[str, Any]) -> dict[str, str]:
    """``tap:<color>Image`` of both colors from outputs; empty unless both
    are there, so that no recording writes one image and leaves the other."""
    found = {color: outputs.get(f"{color}_image") for color in COLORS}
    if not all(isinstance(image, str) and image for image in found.values()):
        return {}
    return {f"{color}Image": str(image) for color, image in found.items()}


def _drift(
    ref: StackRef,
    color: str,
    error: TapctlError,
    recorded: bool,
    targets: Sequence[str] | None,
) -> Drift:
    reason = one_line(error.message)
    if not recorded:
        # Running the rollback again moves nothing and records the truth.
        return Drift(color, reason, _rollback_command(ref, color))
    target_args = [arg for urn in targets or () for arg in ("--target", urn)]
    return Drift(color, reason, ref.command("up", "--yes", *target_args))


def _raise_drift(drift: Drift | None) -> None:
    if drift is not None:
        raise EngineError(str(drift), hint=f"record it with: {drift.command}")


def configured_active(outputs: Mapping[str, Any]) -> str:
    """The color the stack config made active, as the stack exports it."""
    require(outputs, ("active_color",), purpose="knowing the active color")
    color = outputs["active_color"]
    if color not in COLORS:
        raise ConfigError(
            f"output active_color is {color!r}, expected blue or green",
            hint="run tapctl up so that the stack exports its active color",
            key="active_color",
        )
    return str(color)


def parse_idle_weight(value: object) -> int:
    """``tap:idleWeight`` as a whole percentage; unset means 0."""
    if value in (None, ""):
        return 0
    try:
        weight = int(str(value))
    except ValueError:
        weight = -1
    if not 0 <= weight <= 100:
        raise ConfigError(
            f"stack config tap:idleWeight={value!r} is not a whole number in 0..100",
            hint="fix tap:idleWeight in the environment's Pulumi.<env>.yaml",
            key="tap:idleWeight",
        )
    return weight


# -- deploy and switch --------------------------------------------------------


@dataclass(frozen=True)
class ReleasePlan:
    """What a deploy or switch will do, in order, for ``--dry-run`` and prompts."""

    kind: str
    env: str
    shift: Shift
    steps: tuple[str, ...]
    image: str | None = None


@dataclass(frozen=True)
class ReleaseOutcome:
    plan: ReleasePlan
    done: bool
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class DeployRequest:
    image: str
    steps: tuple[int, ...] = DEFAULT_STEPS
    bake: float = 60.0
    timeout: float = 600.0
    dry_run: bool = False
    #: Checks left out of the pre-shift gate (ids of ``GATE_CHECKS``).
    skip_checks: tuple[str, ...] = ()


def deploy(
    engine: ReleaseEngine,
    aws: Aws,
    ref: StackRef,
    request: DeployRequest,
    hooks: Hooks = DEFAULT_HOOKS,
) -> ReleaseOutcome:
    """Put ``request.image`` on the idle color, check it, then move traffic.

    The idle color must take no traffic before the deploy starts: updating a
    color that serves users would not be blue/green.
    """
    check_deploy_request(request)
    outputs = dict(engine.outputs().values)
    plan = plan_deploy(outputs, ref, request)
    if request.dry_run:
        return ReleaseOutcome(plan, done=False, note=DRY_RUN_NOTE)

    with release_lock(ref):
        started = time.monotonic()
        traffic = Traffic(aws, outputs)
        hooks.info(f"deploy {ref.env}: reading the production listener ...")
        _require_live_as_recorded(traffic.read(), plan.shift.old, ref)
        _confirm(hooks, f"deploy {request.image} to {plan.shift.new} on {ref.env}?")
        checks = _gate_checks(request.skip_checks, hooks)
        outputs = _roll_out(engine, aws, ref, plan, outputs, request, checks, hooks)
        start = Weights.all_to(plan.shift.old)  # as required above
        shift_traffic(
            traffic, alarm_names(outputs), plan.shift, ref, hooks, start=start
        )
        _raise_drift(
            record_live(lambda: engine, ref, plan.shift.new, outputs, targeted=False)
        )
    return ReleaseOutcome(plan, done=True, seconds=time.monotonic() - started)


DRY_RUN_NOTE = "dry run: nothing was changed"


def check_deploy_request(request: DeployRequest) -> DeployRequest:
    """Every option of a deploy in range, before anything is read."""
    check_image(request.image)
    check_steps(request.steps)
    check_seconds("--bake", request.bake, limit=MAX_BAKE)
    check_seconds("--timeout", request.timeout, limit=MAX_TIMEOUT, positive=True)
    check_skip_checks(request.skip_checks)
    return request


def check_skip_checks(skipped: Sequence[str]) -> tuple[str, ...]:
    """The pre-shift gate's checks without ``skipped``; an unknown id, or
    skipping every check, is bad usage: a gate that checks nothing is none."""
    unknown = [check for check in skipped if check not in GATE_CHECKS]
    if unknown:
        raise UsageError(
            f"--skip-check {','.join(unknown)}: not a check of the pre-shift gate",
            hint=f"the gate runs: {', '.join(GATE_CHECKS)}",
        )
    kept = tuple(check for check in GATE_CHECKS if check not in skipped)
    if not kept:
        raise UsageError(
            "--skip-check leaves the pre-shift gate with no check to run",
            hint="keep at least one gate check, for example targets.healthy",
        )
    return kept


def _gate_checks(skipped: Sequence[str], hooks: Hooks) -> tuple[str, ...]:
    """The gate's checks; skipped ones are said out loud, never silently."""
    kept = check_skip_checks(skipped)
    if skipped:
        left_out = ", ".join(check for check in GATE_CHECKS if check in skipped)
        hooks.warn(f"pre-shift gate skips {left_out} (--skip-check)")
    return kept


def plan_deploy(
    outputs: Mapping[str, Any], ref: StackRef, request: DeployRequest
) -> ReleasePlan:
    """The steps of a deploy, from outputs alone: a dry run needs no AWS call
    and no engine when the outputs come from a file."""
    check_outputs(outputs, TRAFFIC_KEYS, optional=("alarm_names",), purpose="deploy")
    old = configured_active(outputs)
    require(
        outputs,
        ("ecs_cluster_name", f"{other_color(old)}_service_name", f"{old}_image"),
        purpose="deploy",
    )
    shift = Shift(old, other_color(old), request.steps, request.bake)
    steps = (
        f"pin the live state from outputs: tap:activeColor = {old}, "
        f"tap:idleWeight = 0, tap:{old}Image = {outputs[f'{old}_image']}",
        f"set tap:{shift.new}Image = {request.image}, then up",
        f"wait up to {request.timeout:g}s for the {shift.new} service to be stable "
        f"and run {request.image}",
        f"run the verify checks on {shift.new} through the test listener",
        *(
            f"move traffic: {line}, then check targets and alarms"
            for line in shift.describe()
        ),
        f"record tap:activeColor = {shift.new}, tap:idleWeight = 0, then up",
    )
    return ReleasePlan("deploy", ref.env, shift, steps, request.image)


def _require_live_as_recorded(weights: Weights, active: str, ref: StackRef) -> None:
    """All traffic on the color the outputs record as active.

    A deploy rewrites config from the outputs before its ``up``; if the
    listener says otherwise, that ``up`` would move users, so it is refused.
    """
    if weights.of(active) == 100:
        return
    idle = other_color(active)
    if weights.of(idle) == 100:
        raise ConfigError(
            f"the production listener sends all traffic to {idle}, but the stack "
            f"outputs record {active} as active; nothing was changed",
            hint=f"record the live color first with: "
            f"{_rollback_command(ref, idle)} (moves no traffic), then deploy again",
            key="active_color",
        )
    raise ReleaseRefused(
        f"the production listener is mid-shift ({weights}): it sends "
        f"{weights.of(idle)}% to {idle}, the color this release would replace; "
        "nothing was changed",
        hint=f"finish or undo the earlier release first; "
        f"{_rollback_command(ref, active)} puts all traffic back on {active}",
    )


def _pinned_config(
    outputs: Mapping[str, Any], live: str, new: str, image: str
) -> dict[str, str]:
    """Config for the deploy's first ``up``: the live truth from the outputs,
    not the checkout's file (on CI git's copy, which may be stale), plus the
    new image on the idle color."""
    return {
        "activeColor": live,
        "idleWeight": "0",
        f"{live}Image": str(outputs[f"{live}_image"]),
        f"{new}Image": image,
    }


def _roll_out(
    engine: ReleaseEngine,
    aws: Aws,
    ref: StackRef,
    plan: ReleasePlan,
    outputs: Mapping[str, Any],
    request: DeployRequest,
    checks: Sequence[str],
    hooks: Hooks,
) -> dict[str, Any]:
    """New image on the idle color, stable and checked; no traffic moved yet."""
    color, image = plan.shift.new, request.image
    hooks.info(f"setting tap:{color}Image = {image}; updating the stack")
    engine.set_config(_pinned_config(outputs, plan.shift.old, color, image))
    updated = dict(engine.up().outputs.values)
    require(updated, ("ecs_cluster_name", f"{color}_service_name"), purpose="deploy")
    try:
        cluster = str(updated["ecs_cluster_name"])
        service = str(updated[f"{color}_service_name"])
        timeout = request.timeout
        hooks.info(f"waiting up to {timeout:g}s for service {service} to be stable")
        hooks.wait_stable(aws, cluster, service, timeout)
        require_image(aws, cluster, service, image)
        _check_gate(updated, aws, ref, color, checks, hooks)
    except GateFailed as failure:
        failure.hint = (
            f"no traffic was moved: {plan.shift.old} still takes all of it; "
            f"{color} keeps {image} without users"
        )
        raise
    return updated


def _check_gate(
    outputs: Mapping[str, Any],
    aws: Aws,
    ref: StackRef,
    color: str,
    checks: Sequence[str],
    hooks: Hooks,
) -> None:
    hooks.info(f"checking {color} through the test listener")
    failures = hooks.check_color(outputs, aws, ref.env, color, checks)
    if failures:
        raise GateFailed("verify", f"checks on {color} failed: {'; '.join(failures)}")


def switch(
    engine: ReleaseEngine,
    aws: Aws,
    ref: StackRef,
    *,
    to: str | None,
    steps: Sequence[int] = DEFAULT_STEPS,
    bake: float = 60.0,
    skip_checks: Sequence[str] = (),
    hooks: Hooks = DEFAULT_HOOKS,
) -> ReleaseOutcome:
    """Move traffic between the two running colors in steps, no image change.

    ``to`` defaults to the color that is not live on the listener now.
    """
    check_switch_options(steps, bake, skip_checks)
    outputs = dict(engine.outputs().values)
    check_outputs(outputs, TRAFFIC_KEYS, optional=("alarm_names",), purpose="switch")

    with release_lock(ref):
        started = time.monotonic()
        traffic = Traffic(aws, outputs)
        hooks.info(f"switch {ref.env}: reading the production listener ...")
        current = traffic.read()
        plan = plan_switch(outputs, ref, to=to, steps=steps, bake=bake, live=current)
        shift = plan.shift
        new = shift.new
        if current.of(new) == 100:
            return ReleaseOutcome(
                plan, done=False, note=f"{new} already takes all traffic"
            )
        _confirm(hooks, f"switch {ref.env} traffic from {shift.old} to {new}?")
        _switch_gate(outputs, aws, ref, new, _gate_checks(skip_checks, hooks), hooks)
        shift_traffic(traffic, alarm_names(outputs), shift, ref, hooks, start=current)
        _raise_drift(record_live(lambda: engine, ref, new, outputs, targeted=False))
    return ReleaseOutcome(plan, done=True, seconds=time.monotonic() - started)


def _switch_gate(
    outputs: Mapping[str, Any],
    aws: Aws,
    ref: StackRef,
    color: str,
    checks: Sequence[str],
    hooks: Hooks,
) -> None:
    """The pre-shift gate of a switch, where the test listener can reach it.

    The test listener serves the idle color of the recorded config; a switch
    back to the recorded active color cannot be checked through it, and is
    gated by each step's target health and alarms alone.
    """
    if color == configured_active(outputs):
        hooks.info(f"{color} is the recorded active color: no pre-shift gate")
        return
    try:
        _check_gate(outputs, aws, ref, color, checks, hooks)
    except GateFailed as failure:
        failure.hint = "no traffic was moved"
        raise


def check_switch_options(
    steps: Sequence[int], bake: float, skip_checks: Sequence[str] = ()
) -> None:
    check_steps(steps)
    check_seconds("--bake", bake, limit=MAX_BAKE)
    check_skip_checks(skip_checks)


def plan_switch(
    outputs: Mapping[str, Any],
    ref: StackRef,
    *,
    to: str | None,
    steps: Sequence[int],
    bake: float,
    live: Weights | None = None,
) -> ReleasePlan:
    """The steps of a switch. Without ``to`` it goes away from the live color
    on the listener, or, for a dry run that reads no listener, away from the
    active color the outputs record."""
    check_switch_options(steps, bake)
    check_outputs(outputs, TRAFFIC_KEYS, optional=("alarm_names",), purpose="switch")
    start = live if live is not None else Weights.all_to(configured_active(outputs))
    new = to or other_color(start.live or configured_active(outputs))
    # As shift_traffic does: only the steps that move traffic towards ``new``.
    ahead = tuple(percent for percent in steps if percent > start.of(new))
    shift = Shift(other_color(new), new, ahead, bake)
    lines = tuple(f"move traffic: {line}" for line in shift.describe())
    if not lines:
        lines = (f"nothing to move: {new} already takes all traffic ({start})",)
    return ReleasePlan("switch", ref.env, shift, lines)


# -- rollback -----------------------------------------------------------------


@dataclass(frozen=True)
class RollbackOutcome:
    """Where traffic went; ``moved`` is False when it was there already (then
    ``health`` is None: no target health was read)."""

    env: str
    color: str
    before: Weights
    after: Weights
    health: TargetHealth | None
    seconds_to_traffic: float
    drift: Drift | None
    moved: bool = True


def rollback(
    aws: Aws,
    outputs: Mapping[str, Any],
    ref: StackRef,
    open_engine: Callable[[], ReleaseEngine],
    *,
    to: str | None = None,
    force: bool = False,
    idle_weight: object = None,
    config_active: object = None,
    hooks: Hooks = DEFAULT_HOOKS,
) -> RollbackOutcome:
    """All traffic to the previous color with one listener call, then the record.

    Before the write there are exactly two reads (the listener, the target
    health of the color traffic goes to) and no engine call: the engine is
    opened only afterwards, and if it cannot run, traffic stays where it went
    and the outcome carries the drift and the command that closes it. The
    stack is recorded only where its config (the exported ``active_color``
    and ``idle_weight``, the stack config's ``tap:idleWeight``) disagrees,
    or always when ``outputs`` lack ``active_color`` (they were found through
    the load balancer, see ``find_traffic``).
    """
    check_outputs(
        outputs, LISTENER_KEYS, optional=("active_color",), purpose="rollback"
    )
    recorded = None
    exported = outputs.get("active_color")
    # The config file may say otherwise (an outputs file can be older than the
    # last update); then nothing is taken as recorded and the record is made.
    if exported not in (None, "") and config_active in (None, exported):
        active = configured_active(outputs)
        recorded = Weights.split(active, parse_idle_weight(idle_weight))
    started = time.monotonic()
    with release_lock(ref):
        traffic = Traffic(aws, outputs)
        hooks.info(f"rollback {ref.env}: reading the production listener ...")
        before = traffic.read()
        color = to or _previous_color(before)
        after = Weights.all_to(color)
        health = None
        try:
            if before != after:
                health = _move_all(traffic, ref, color, before, force, hooks)
            seconds = time.monotonic() - started
            drift = None
            if recorded != after:
                drift = _record_rollback(
                    open_engine,
                    ref,
                    color,
                    outputs,
                    moved=health is not None,
                    hooks=hooks,
                )
        except KeyboardInterrupt as interrupt:
            raise _interrupted_rollback(traffic, ref, color) from interrupt
    return RollbackOutcome(
        ref.env, color, before, after, health, seconds, drift, moved=health is not None
    )


def _interrupted_rollback(traffic: Traffic, ref: StackRef, color: str) -> Interrupted:
    """Ctrl-C during a rollback: say where traffic is, since a retry of the
    same command would pick the other color as 'previous'."""
    if traffic.last_written is None:
        return Interrupted("interrupted before any traffic moved; nothing was changed")
    return Interrupted(
        f"interrupted after the listener change: {traffic.last_written}, but the "
        "stack config does not record it yet",
        hint=f"record it with: {ref.command('rollback', '--to', color, '--yes')}",
    )


def _move_all(
    traffic: Traffic,
    ref: StackRef,
    color: str,
    before: Weights,
    force: bool,
    hooks: Hooks,
) -> TargetHealth:
    """The one listener write of a rollback, after its health gate and prompt."""
    health = traffic.health(color)
    _allow_rollback(color, health, before, force, hooks)
    _confirm(hooks, f"move all {ref.env} traffic to {color} (now {before})?")
    traffic.write(Weights.all_to(color))
    hooks.info(f"traffic: {Weights.all_to(color)}")
    return health


def _record_rollback(
    open_engine: Callable[[], ReleaseEngine],
    ref: StackRef,
    color: str,
    outputs: Mapping[str, Any],
    *,
    moved: bool,
    hooks: Hooks,
) -> Drift | None:
    if not moved:
        # Nothing moved, so recording is the only change: it is asked for too.
        _confirm(hooks, f"record {color} as active in the stack config of {ref.env}?")
    hooks.info(f"recording {color} as active in the stack config")
    return record_live(open_engine, ref, color, outputs, targeted=True)


def _previous_color(weights: Weights) -> str:
    if weights.live is None:
        raise UsageError(
            f"the production listener splits traffic evenly ({weights}), so there "
            "is no previous color to go back to",
            hint="say where traffic goes with --to blue or --to green",
        )
    return other_color(weights.live)


def _allow_rollback(
    color: str, health: TargetHealth, before: Weights, force: bool, hooks: Hooks
) -> None:
    if health.healthy:
        return
    if not force:
        raise ReleaseRefused(
            f"refusing to roll back to {color}: it has no healthy target ({health}); "
            f"traffic is unchanged ({before})",
            hint=f"bring {color} back first, or pass --force to move traffic anyway",
        )
    hooks.warn(f"--force: moving traffic to {color}, which has no healthy target")


# -- status -------------------------------------------------------------------


@dataclass(frozen=True)
class ColorStatus:
    color: str
    weight: int
    image: str | None
    image_source: str
    desired: int | None
    running: int | None
    targets: TargetHealth

    def to_json(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "image": self.image,
            "image_source": self.image_source,
            "desired": self.desired,
            "running": self.running,
            "targets": dict(self.targets.states),
            "healthy_targets": self.targets.healthy,
        }


@dataclass(frozen=True)
class ReleaseStatus:
    env: str
    active_color: str
    weights: Weights
    expected: Weights
    test_color: str | None
    colors: tuple[ColorStatus, ...]

    @property
    def drift(self) -> list[str]:
        """Where the load balancer disagrees with the stack config."""
        found = []
        if self.weights != self.expected:
            found.append(
                f"listener weights {self.weights}, config says {self.expected}"
            )
        idle = other_color(self.active_color)
        if self.test_color is not None and self.test_color != idle:
            found.append(f"test listener serves {self.test_color}, config says {idle}")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "live_color": self.weights.live,
            "weights": self.weights.as_dict(),
            "config": {
                "active_color": self.active_color,
                "idle_weight": self.expected.of(other_color(self.active_color)),
                "weights": self.expected.as_dict(),
            },
            "test_listener_color": self.test_color,
            "drift": self.drift,
            "colors": {status.color: status.to_json() for status in self.colors},
        }


STATUS_OPTIONAL_KEYS = (
    "test_listener_arn",
    "blue_service_name",
    "green_service_name",
    "blue_image",
    "green_image",
)


def read_status(
    aws: Aws,
    outputs: Mapping[str, Any],
    *,
    env: str,
    idle_weight: object,
    info: Callable[[str], None] = _silent,
) -> ReleaseStatus:
    """Live color, weights, images, tasks and target health, and the drift."""
    check_outputs(
        outputs,
        (*TRAFFIC_KEYS, "ecs_cluster_name"),
        optional=STATUS_OPTIONAL_KEYS,
        purpose="status",
    )
    active = configured_active(outputs)
    expected = Weights.split(active, parse_idle_weight(idle_weight))
    traffic = Traffic(aws, outputs)
    info(f"status {env}: reading the listeners ...")
    weights, test_color = _listener_weights(traffic, outputs)
    services = _services(aws, outputs)
    colors = tuple(
        _color_status(aws, outputs, color, weights, services, traffic)
        for color in COLORS
    )
    return ReleaseStatus(env, active, weights, expected, test_color, colors)


def _listener_weights(
    traffic: Traffic, outputs: Mapping[str, Any]
) -> tuple[Weights, str | None]:
    """Both listeners in one call: production weights and the test listener's color."""
    test_arn = outputs.get("test_listener_arn")
    arns = [traffic.listener_arn, *([str(test_arn)] if test_arn else [])]
    with translated_errors("reading the listeners"):
        listeners = traffic.elb.describe_listeners(ListenerArns=arns)["Listeners"]
    actions = {item["ListenerArn"]: item["DefaultActions"] for item in listeners}
    if traffic.listener_arn not in actions:
        raise AwsError(
            f"the production listener {traffic.listener_arn} was not found",
            hint="check prod_listener_arn in the outputs, or run tapctl up",
        )
    production = weights_of(
        _forward_config(actions[traffic.listener_arn]), traffic.groups
    )
    return production, _test_color(actions.get(str(test_arn)), traffic)


def _test_color(
    actions: Sequence[Mapping[str, Any]] | None, traffic: Traffic
) -> str | None:
    """The color the test listener serves; None when it forwards nowhere we
    know (status still reports the production listener)."""
    forwards = [action for action in actions or () if action.get("Type") == "forward"]
    if not forwards:
        return None
    return weights_of(_forward_config(forwards), traffic.groups).live


def _services(aws: Aws, outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    names = [
        str(outputs[f"{c}_service_name"])
        for c in COLORS
        if outputs.get(f"{c}_service_name")
    ]
    if not names:
        return {}
    with translated_errors("reading the ECS services"):
        found = _client(aws, "ecs").describe_services(
            cluster=str(outputs["ecs_cluster_name"]), services=names
        )
    return {service["serviceName"]: service for service in found["services"]}


def _color_status(
    aws: Aws,
    outputs: Mapping[str, Any],
    color: str,
    weights: Weights,
    services: Mapping[str, Mapping[str, Any]],
    traffic: Traffic,
) -> ColorStatus:
    service = services.get(str(outputs.get(f"{color}_service_name")))
    image = _task_image(aws, service["taskDefinition"]) if service else None
    fallback = outputs.get(f"{color}_image")
    return ColorStatus(
        color=color,
        weight=weights.of(color),
        image=image or (str(fallback) if fallback else None),
        image_source="task definition" if image else "outputs",
        desired=service["desiredCount"] if service else None,
        running=service["runningCount"] if service else None,
        targets=traffic.health(color),
    )


def _task_image(aws: Aws, task_definition: str) -> str | None:
    """The image the service runs now: its live task definition's first container."""
    with translated_errors(f"reading task definition {task_definition}"):
        found = _client(aws, "ecs").describe_task_definition(
            taskDefinition=task_definition
        )
    containers = found["taskDefinition"].get("containerDefinitions") or []
    return str(containers[0]["image"]) if containers else None
