"""verify's checks against a healthy world in moto's server, then against that
world with one fault at a time.

With ``TAPCTL_VERIFY_OUTPUTS`` naming an outputs file, the healthy-world tests
check that real environment instead, with the AWS settings of the shell that
started pytest (profile or key variables); fault injection is skipped then.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tapctl.aws import Aws
from tapctl.outputs import EXPORT_KEYS, load_outputs_file
from tapctl.verification import CHECK_IDS, Report, run_checks
from tests import aws_world
from tests.aws_world import HealthServer

pytestmark = pytest.mark.integration

LIVE_OUTPUTS = os.environ.get("TAPCTL_VERIFY_OUTPUTS")
# Read before tests/conftest.py hides them for every test.
_SHELL_AWS_ENV = {
    name: os.environ.get(name)
    for name in (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    )
}
moto_only = pytest.mark.skipif(
    bool(LIVE_OUTPUTS),
    reason="faults are injected into the moto world only, "
    "never into the real environment TAPCTL_VERIFY_OUTPUTS names",
)

# States moto cannot represent, and the status its healthy world gets instead:
# - cloudfront.deployed: moto accepts an origin access control on an origin but
#   does not echo OriginAccessControlId back, so the check sees an S3 origin
#   without one. The pass logic is covered on a recorded response in
#   tests/unit/test_verify_recorded.py.
# targets.healthy (moto calls every registered target healthy) and ecs.steady
# (moto never completes a rollout unless MOTO_ECS_SERVICE_RUNNING is set, which
# the world fixture does) pass here; their failing sides are shown below and
# on recorded responses.
MOTO_STATUSES = {"cloudfront.deployed": "fail"}
HEALTHY = dict.fromkeys(CHECK_IDS, "pass")
BASELINE = HEALTHY if LIVE_OUTPUTS else HEALTHY | MOTO_STATUSES


@pytest.fixture
def health() -> Iterator[HealthServer]:
    """The production listener's HTTP side."""
    with aws_world.health_server() as server:
        yield server


@pytest.fixture
def idle_health() -> Iterator[HealthServer]:
    """The test listener's HTTP side."""
    with aws_world.health_server() as server:
        yield server


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    health: HealthServer,
    idle_health: HealthServer,
) -> dict[str, Any]:
    """Outputs of a healthy environment: built in moto, or the real one."""
    if LIVE_OUTPUTS:
        for name, value in _SHELL_AWS_ENV.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        return load_outputs_file(Path(LIVE_OUTPUTS))
    request.getfixturevalue("aws_endpoint")
    for name, value in aws_world.settled_services_env().items():
        monkeypatch.setenv(name, value)
    return aws_world.build_world(
        alb_dns_name="127.0.0.1", prod_port=health.port, test_port=idle_health.port
    )


def _verify(outputs: dict[str, Any], **options: Any) -> Report:
    return run_checks(outputs, Aws(aws_world.shared_session()), env="test", **options)


def _result(report: Report, check_id: str) -> tuple[str, str]:
    check = next(check for check in report.checks if check.id == check_id)
    return check.status, check.detail


# -- the healthy world ---------------------------------------------------------


def test_healthy_world_passes_every_check_moto_can_represent(
    world: dict[str, Any], health: HealthServer
) -> None:
    report = _verify(world)

    assert report.statuses() == BASELINE
    assert report.env == "test"
    assert report.passed == sum(1 for s in BASELINE.values() if s == "pass")
    if not LIVE_OUTPUTS:
        assert _result(report, "cloudfront.deployed") == (
            "fail",
            "origin static has no origin access control",
        )
        assert _result(report, "listener.weights") == ("pass", "blue 100, green 0")
        assert _result(report, "targets.healthy") == ("pass", "2 of 2 healthy")
        assert health.paths == [aws_world.HEALTH_PATH]


@moto_only
def test_world_exports_every_stack_output(world: dict[str, Any]) -> None:
    assert sorted(world) == sorted(EXPORT_KEYS)
    assert all(world[key] not in (None, "", []) for key in EXPORT_KEYS)


@moto_only
def test_idle_color_is_checked_through_the_test_listener(
    world: dict[str, Any], health: HealthServer, idle_health: HealthServer
) -> None:
    report = _verify(world, color="green")

    assert report.statuses() == BASELINE
    assert _result(report, "listener.weights") == ("pass", "blue 0, green 100")
    resource = next(c.resource for c in report.checks if c.id == "ecs.steady")
    assert resource == world["green_service_name"]
    assert idle_health.paths == [aws_world.HEALTH_PATH]
    assert health.paths == []


@moto_only
def test_idle_color_fails_when_the_test_listener_sends_it_nothing(
    world: dict[str, Any],
) -> None:
    _forward(world, "test_listener_arn", blue=100, green=0)

    report = _verify(world, color="green")

    assert report.statuses() == BASELINE | {"listener.weights": "fail"}
    assert _result(report, "listener.weights")[1] == (
        "green (color under test) has weight 0, not 100"
    )


# -- one fault at a time -------------------------------------------------------

Fault = Callable[[dict[str, Any], pytest.MonkeyPatch], None]


def _forward(outputs: dict[str, Any], listener: str, *, blue: int, green: int) -> None:
    groups = [
        {"TargetGroupArn": outputs[f"{color}_target_group_arn"], "Weight": weight}
        for color, weight in (("blue", blue), ("green", green))
    ]
    boto3.client("elbv2").modify_listener(
        ListenerArn=outputs[listener],
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
    )


def remove_public_access_block(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("s3").delete_public_access_block(Bucket=outputs["static_bucket_name"])


def suspend_versioning(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("s3").put_bucket_versioning(
        Bucket=outputs["static_bucket_name"],
        VersioningConfiguration={"Status": "Suspended"},
    )


def make_database_public(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("rds").modify_db_instance(
        DBInstanceIdentifier=outputs["rds_endpoint"].split(".")[0],
        PubliclyAccessible=True,
        ApplyImmediately=True,
    )


def stop_trail(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("cloudtrail").stop_logging(Name=outputs["cloudtrail_arn"])


def split_live_weight(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    _forward(outputs, "prod_listener_arn", blue=50, green=50)


def empty_live_target_group(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    elbv2 = boto3.client("elbv2")
    arn = outputs["blue_target_group_arn"]
    targets = [
        item["Target"]
        for item in elbv2.describe_target_health(TargetGroupArn=arn)[
            "TargetHealthDescriptions"
        ]
    ]
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=targets)


def start_live_service_short(
    outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recreate the live service while moto reports one task of two running."""
    for name, value in aws_world.settled_services_env(running=1).items():
        monkeypatch.setenv(name, value)
    session = aws_world.shared_session()
    network = aws_world.world_network(session, outputs)
    aws_world.start_service(session, outputs, network, "blue")


def remove_scalable_target(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    cluster, service = outputs["ecs_cluster_name"], outputs["green_service_name"]
    boto3.client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{cluster}/{service}",
        ScalableDimension="ecs:service:DesiredCount",
    )


def disable_distribution(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    cloudfront = boto3.client("cloudfront")
    distribution_id = outputs["cloudfront_distribution_id"]
    current = cloudfront.get_distribution_config(Id=distribution_id)
    config = current["DistributionConfig"] | {"Enabled": False}
    cloudfront.update_distribution(
        Id=distribution_id, IfMatch=current["ETag"], DistributionConfig=config
    )


def schedule_secret_deletion(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("secretsmanager").delete_secret(
        SecretId=outputs["db_secret_arn"], RecoveryWindowInDays=7
    )


def stop_log_file_validation(outputs: dict[str, Any], _: pytest.MonkeyPatch) -> None:
    boto3.client("cloudtrail").update_trail(
        Name=outputs["cloudtrail_arn"], EnableLogFileValidation=False
    )


@moto_only
@pytest.mark.parametrize(
    ("fault", "check_id", "detail"),
    [
        (
            remove_public_access_block,
            "s3.private",
            "public access not blocked: BlockPublicAcls, IgnorePublicAcls, "
            "BlockPublicPolicy, RestrictPublicBuckets off",
        ),
        (suspend_versioning, "s3.private", "versioning suspended"),
        (make_database_public, "rds.secure", "publicly accessible"),
        (stop_trail, "cloudtrail.logging", "logging stopped"),
        (stop_log_file_validation, "cloudtrail.logging", "log file validation off"),
        (
            split_live_weight,
            "listener.weights",
            "blue (active_color) has weight 50, not 100",
        ),
        (empty_live_target_group, "targets.healthy", "no targets registered"),
        (
            start_live_service_short,
            "ecs.steady",
            "running 1 of 2 desired tasks; rollout IN_PROGRESS",
        ),
        (
            remove_scalable_target,
            "ecs.autoscaling",
            "tap-green-test: no scalable target registered",
        ),
        # Fails on moto already (see MOTO_STATUSES); the detail shows the new cause.
        (
            disable_distribution,
            "cloudfront.deployed",
            "disabled; origin static has no origin access control",
        ),
        (schedule_secret_deletion, "secret.present", "scheduled for deletion on "),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_each_fault_fails_only_its_own_check(
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    check_id: str,
    detail: str,
) -> None:
    fault(world, monkeypatch)

    report = _verify(world)

    assert report.statuses() == BASELINE | {check_id: "fail"}
    assert _result(report, check_id)[1].startswith(detail)
    assert not report.ok


@moto_only
def test_health_endpoint_answering_5xx_fails_after_retries(
    world: dict[str, Any], health: HealthServer
) -> None:
    health.status = 503

    report = _verify(world, only=["http.health"])

    status, detail = _result(report, "http.health")
    url = f"http://127.0.0.1:{health.port}{aws_world.HEALTH_PATH}"
    assert (status, detail) == (
        "fail",
        f"GET {url}: 503 Service Unavailable (3 tries within 10s)",
    )
    assert len(health.paths) == 3


@moto_only
def test_health_endpoint_too_slow_fails_within_the_timeout(
    world: dict[str, Any], health: HealthServer
) -> None:
    health.delay = 8.0
    started = time.monotonic()

    report = _verify(world, only=["http.health"], timeout=0.9)

    status, detail = _result(report, "http.health")
    assert status == "fail"
    assert detail.startswith(f"GET http://127.0.0.1:{health.port}/health: timed out")
    assert detail.endswith("tries within 0.9s)")
    assert time.monotonic() - started < 5.0


# -- errors and time -----------------------------------------------------------


@moto_only
def test_aws_error_in_one_check_is_that_checks_error(world: dict[str, Any]) -> None:
    world["static_bucket_name"] = "tap-static-missing"

    report = _verify(world)

    assert report.statuses() == BASELINE | {"s3.private": "error"}
    assert _result(report, "s3.private")[1].startswith("NoSuchBucket")


def _delay(aws: Aws, event: str, seconds: float) -> None:
    """Every matching AWS call waits ``seconds`` before it is sent."""

    def wait(**_: Any) -> None:
        time.sleep(seconds)

    aws.session.events.register(event, wait)


@moto_only
def test_check_without_answer_within_timeout_becomes_an_error(
    world: dict[str, Any],
) -> None:
    aws = Aws()
    _delay(aws, "before-send.s3", 8.0)
    started = time.monotonic()

    report = run_checks(world, aws, env="test", timeout=2.0)

    # Margins are wide so that a loaded machine cannot make this flaky: the
    # point is that verify returns long before the stuck call would.
    assert time.monotonic() - started < 6.0
    assert report.statuses() == BASELINE | {"s3.private": "error"}
    assert _result(report, "s3.private")[1] == "no answer within 2s"


@moto_only
def test_multi_line_error_of_a_check_is_one_line_of_detail(
    world: dict[str, Any],
) -> None:
    aws = Aws()

    def wrong_type(params: dict[str, Any], **_: Any) -> None:
        params["LoadBalancerArns"] = [12345]

    # botocore's own validation then fails with a message over several lines.
    aws.session.events.register(
        "before-parameter-build.elastic-load-balancing-v2.DescribeLoadBalancers",
        wrong_type,
    )

    report = run_checks(world, aws, env="test", only=["alb.active"])

    status, detail = _result(report, "alb.active")
    assert status == "error"
    assert detail.startswith(
        "Parameter validation failed: Invalid type for parameter LoadBalancerArns[0]"
    )
    assert "\n" not in detail


@moto_only
def test_checks_run_concurrently(world: dict[str, Any]) -> None:
    # Counting calls in flight at once proves the overlap whatever the
    # machine's load; wall-clock ratios did not on a busy two-core runner.
    aws = Aws()
    in_flight, peak, lock = [0], [0], threading.Lock()

    def enter(**_: Any) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1

    for service in ("elbv2", "ecs", "application-autoscaling", "rds", "s3"):
        aws.session.events.register(f"before-send.{service}", enter)

    report = run_checks(world, aws, env="test", skip=["http.health"])

    assert sum(check.status != "skip" for check in report.checks) == 10
    assert peak[0] >= 4
