"""Check logic on recorded API answers, for states moto cannot represent
(unhealthy targets, a completed or stuck rollout, an origin access control on
a CloudFront origin, a provisioning load balancer), plus selection, JUnit and
redaction. The fake client only replays canned describe_* answers."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tapctl.aws import Aws
from tapctl.errors import UsageError
from tapctl.verification import (
    CHECK_IDS,
    CheckResult,
    Finding,
    Report,
    Target,
    check_alb,
    check_autoscaling,
    check_cloudfront,
    check_ecs_steady,
    check_listener,
    check_rds,
    check_targets,
    junit_xml,
    one_line,
    run_checks,
    select_checks,
)

BLUE_TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tap-blue-prod/abc"
GREEN_TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/tap-green-prod/def"
OUTPUTS = {
    "alb_arn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/tap/1",
    "prod_listener_arn": "arn:prod-listener",
    "test_listener_arn": "arn:test-listener",
    "blue_target_group_arn": BLUE_TG,
    "green_target_group_arn": GREEN_TG,
    "ecs_cluster_name": "tap-prod",
    "blue_service_name": "tap-blue-prod",
    "green_service_name": "tap-green-prod",
    "rds_endpoint": "tap-db-prod.c9akciq32.us-east-1.rds.amazonaws.com:5432",
    "cloudfront_distribution_id": "E2QWRUHAPOMQZL",
}
LIVE = Target(OUTPUTS, "blue", "prod_listener_arn", 5.0)


class Recorded:
    """A client whose methods return recorded answers, keyed by method name."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            answer = self.answers[name]
            return answer(**kwargs) if callable(answer) else answer

        return call


class RecordedAws:
    def __init__(self, **clients: Recorded) -> None:
        self.clients = clients

    def client(self, service: str) -> Recorded:
        return self.clients[service.replace("-", "_")]


def _health(*states: str) -> RecordedAws:
    descriptions = [
        {"Target": {"Id": f"10.0.0.{i}"}, "TargetHealth": {"State": state}}
        for i, state in enumerate(states)
    ]
    answer = {"TargetHealthDescriptions": descriptions}
    return RecordedAws(elbv2=Recorded(describe_target_health=answer))


def _run(check: Any, aws: RecordedAws, target: Target = LIVE) -> Finding:
    finding: Finding = check(aws, target)
    return finding


# -- targets.healthy -----------------------------------------------------------


def test_targets_all_healthy_pass() -> None:
    finding = _run(check_targets, _health("healthy", "healthy"))
    assert (finding.status, finding.detail) == ("pass", "2 of 2 healthy")
    assert finding.resource == "tap-blue-prod"


def test_one_unhealthy_target_fails_even_with_healthy_ones() -> None:
    finding = _run(check_targets, _health("healthy", "unhealthy", "draining"))
    assert (finding.status, finding.detail) == ("fail", "1 of 3 targets unhealthy")


def test_targets_only_initialising_fail_for_lack_of_a_healthy_one() -> None:
    finding = _run(check_targets, _health("initial"))
    assert finding.detail == "no healthy target among 1"


# -- ecs.steady ----------------------------------------------------------------


def _service(running: int, *rollouts: str) -> RecordedAws:
    deployments = [
        {"status": "PRIMARY" if i == 0 else "ACTIVE", "rolloutState": rollout}
        for i, rollout in enumerate(rollouts)
    ]
    service = {
        "serviceName": "tap-blue-prod",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": running,
        "deployments": deployments,
    }
    return RecordedAws(
        ecs=Recorded(describe_services={"services": [service], "failures": []})
    )


def test_service_with_completed_rollout_is_steady() -> None:
    finding = _run(check_ecs_steady, _service(2, "COMPLETED"))
    assert (finding.status, finding.detail) == (
        "pass",
        "2 of 2 running, rollout completed",
    )


def test_service_mid_rollout_is_not_steady() -> None:
    finding = _run(check_ecs_steady, _service(2, "IN_PROGRESS", "COMPLETED"))
    assert finding.detail == "2 deployments instead of one primary; rollout IN_PROGRESS"


def test_missing_service_fails() -> None:
    aws = RecordedAws(ecs=Recorded(describe_services={"services": [], "failures": []}))
    assert _run(check_ecs_steady, aws).detail == "service not found"


# -- cloudfront.deployed -------------------------------------------------------


def _distribution(*, enabled: bool, status: str, control: str) -> RecordedAws:
    origin = {
        "Id": "static",
        "DomainName": "tap-static-prod.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
        "OriginAccessControlId": control,
    }
    distribution = {
        "Id": "E2QWRUHAPOMQZL",
        "Status": status,
        "DistributionConfig": {
            "Enabled": enabled,
            "Origins": {"Quantity": 1, "Items": [origin]},
        },
    }
    return RecordedAws(
        cloudfront=Recorded(get_distribution={"Distribution": distribution})
    )


def test_distribution_reading_s3_through_an_oac_passes() -> None:
    aws = _distribution(enabled=True, status="Deployed", control="E1OAC2EXAMPLE")
    finding = _run(check_cloudfront, aws)
    assert (finding.status, finding.detail) == (
        "pass",
        "enabled, deployed, S3 origin via OAC",
    )


def test_distribution_still_deploying_without_oac_fails_with_both_reasons() -> None:
    aws = _distribution(enabled=True, status="InProgress", control="")
    assert _run(check_cloudfront, aws).detail == (
        "status InProgress; origin static has no origin access control"
    )


# -- alb.active, listener.weights, ecs.autoscaling, rds.secure ------------------


def test_provisioning_load_balancer_fails() -> None:
    balancer = {"LoadBalancerName": "tap", "State": {"Code": "provisioning"}}
    aws = RecordedAws(
        elbv2=Recorded(describe_load_balancers={"LoadBalancers": [balancer]})
    )
    assert _run(check_alb, aws).detail == "state is provisioning"


def test_listener_with_plain_forward_counts_as_weight_100() -> None:
    listener = {
        "Port": 443,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": BLUE_TG}],
    }
    aws = RecordedAws(elbv2=Recorded(describe_listeners={"Listeners": [listener]}))
    finding = _run(check_listener, aws)
    assert (finding.status, finding.detail) == ("pass", "blue 100, green 0")
    assert finding.resource == "prod listener :443"


def test_listener_weights_not_adding_to_100_fail() -> None:
    groups = [
        {"TargetGroupArn": BLUE_TG, "Weight": 100},
        {"TargetGroupArn": GREEN_TG, "Weight": 10},
    ]
    listener = {
        "Port": 80,
        "DefaultActions": [
            {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
        ],
    }
    aws = RecordedAws(elbv2=Recorded(describe_listeners={"Listeners": [listener]}))
    assert _run(check_listener, aws).detail == "weights add up to 110, not 100"


def _scaling(min_capacity: int, max_capacity: int, *metrics: str) -> RecordedAws:
    targets = {
        "ScalableTargets": [{"MinCapacity": min_capacity, "MaxCapacity": max_capacity}]
    }
    policies = {
        "ScalingPolicies": [
            {
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {"PredefinedMetricType": metric}
                },
            }
            for metric in metrics
        ]
    }
    return RecordedAws(
        application_autoscaling=Recorded(
            describe_scalable_targets=targets, describe_scaling_policies=policies
        )
    )


def test_autoscaling_with_zero_minimum_and_no_request_policy_fails() -> None:
    aws = _scaling(0, 4, "ECSServiceAverageCPUUtilization")
    detail = _run(check_autoscaling, aws).detail
    assert detail.startswith(
        "tap-blue-prod: min capacity 0 < 1; "
        "tap-blue-prod: no request-count target-tracking policy; "
    )


def test_autoscaling_with_max_below_min_fails() -> None:
    aws = _scaling(3, 2, "ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget")
    assert "max capacity 2 < min 3" in _run(check_autoscaling, aws).detail


def test_rds_endpoint_with_port_names_the_instance() -> None:
    instance = {
        "DBInstanceStatus": "backing-up",
        "StorageEncrypted": False,
        "PubliclyAccessible": False,
    }
    rds = Recorded(describe_db_instances={"DBInstances": [instance]})
    finding = _run(check_rds, RecordedAws(rds=rds))
    assert rds.calls == [
        ("describe_db_instances", {"DBInstanceIdentifier": "tap-db-prod"})
    ]
    assert finding.detail == (
        "status backing-up; storage not encrypted; "
        "master password not managed in Secrets Manager"
    )


# -- selection, report, JUnit ----------------------------------------------------


def test_only_and_skip_select_checks_in_catalogue_order() -> None:
    chosen = select_checks(
        only=["http.health", "alb.active", "s3.private"], skip=["s3.private"]
    )
    assert [check.id for check in chosen] == ["alb.active", "http.health"]


@pytest.mark.parametrize(
    ("only", "skip", "message"),
    [
        ([], None, "--only needs at least one check id"),
        (["alb.active"], ["alb.active"], "no checks selected: --skip leaves out"),
        (None, list(CHECK_IDS), "no checks selected: --skip leaves out every"),
    ],
)
def test_selection_of_no_check_is_a_usage_error(
    only: list[str] | None, skip: list[str] | None, message: str
) -> None:
    with pytest.raises(UsageError, match=f"^{message}"):
        select_checks(only=only, skip=skip)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, 3601.0])
def test_run_with_an_unusable_timeout_is_a_usage_error(timeout: float) -> None:
    # Refused before the pre-flight call, so no AWS API is needed here.
    with pytest.raises(UsageError, match="^--timeout must be a number of seconds"):
        run_checks(
            OUTPUTS | {"active_color": "blue"}, Aws(), env="prod", timeout=timeout
        )


def test_multi_line_text_becomes_one_line() -> None:
    text = "Parameter validation failed:\nInvalid type for parameter X,\n  value: 1"

    assert one_line(text) == (
        "Parameter validation failed: Invalid type for parameter X, value: 1"
    )


def test_unknown_skip_id_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--skip: unknown check id\(s\): alb"):
        select_checks(skip=["alb"])


def _report() -> Report:
    statuses: list[Any] = ["pass", "fail", "error", "skip"]
    checks = [
        CheckResult(check_id, status, "res", f"{status} detail", 0.5)
        for check_id, status in zip(CHECK_IDS, statuses, strict=False)
    ]
    return Report(env="prod", checks=checks, seconds=1.25)


def test_failed_counts_failures_and_errors() -> None:
    report = _report()
    assert (report.passed, report.failed, report.skipped, report.ok) == (1, 2, 1, False)


def test_junit_marks_failures_errors_and_skips() -> None:
    suite = junit_xml(_report()).getroot()
    assert suite.attrib == {
        "name": "tapctl.verify",
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "1.250",
    }
    children = [[child.tag for child in case] for case in suite.iter("testcase")]
    assert children == [[], ["failure"], ["error"], ["skipped"]]
    error = next(suite.iter("error"))
    assert error.get("message") == "error detail"
    assert ET.tostring(suite).count(b"<testcase") == 4


def test_redacted_report_hides_secret_values() -> None:
    report = Report(
        env="prod",
        checks=[
            CheckResult("http.health", "pass", "http://s3cr3t:80/", "GET s3cr3t", 0.1)
        ],
    )
    hidden = report.redacted(["s3cr3t", ""])
    assert hidden.checks[0].resource == "http://[secret]:80/"
    assert hidden.checks[0].detail == "GET [secret]"


def test_secret_deletion_date_appears_in_the_detail() -> None:
    from tapctl.verification import check_secret

    answer = {"Name": "rds!db-1", "DeletedDate": dt.datetime(2030, 1, 2, tzinfo=dt.UTC)}
    aws = RecordedAws(secretsmanager=Recorded(describe_secret=answer))
    target = Target({"db_secret_arn": "arn:secret"}, "blue", "prod_listener_arn", 5.0)
    finding = _run(check_secret, aws, target)
    assert (finding.status, finding.detail) == (
        "fail",
        "scheduled for deletion on 2030-01-02",
    )
