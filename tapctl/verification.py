"""Integration checks of a deployed environment against the live AWS APIs.

``run_checks`` takes the stack's outputs, checks the resources they name
concurrently and returns a ``Report``; ``tapctl verify`` renders it and the
blue/green release code uses it as a gate. A check's own failure (an AWS
error, a bug in the check) becomes that check's ``error`` result, never an
exception out of the run; only bad input (unknown ids, missing outputs) and an
unreachable AWS API stop the run before any check starts.

Checks run in daemon threads: Python cannot cancel a thread, so a check still
waiting on AWS when its time is up is reported and left behind, and the
process must be able to exit without waiting for botocore to give up on it.
"""

from __future__ import annotations

import functools
import http.client
import math
import os
import queue
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import ClientError

from tapctl.aws import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Aws,
    describe_aws_error,
    translated_errors,
)
from tapctl.errors import ConfigError, UsageError, one_line
from tapctl.outputs import COLORS, other_color, require

Status = Literal["pass", "fail", "error", "skip"]

CHECK_IDS = (
    "alb.active",
    "listener.weights",
    "targets.healthy",
    "ecs.steady",
    "ecs.autoscaling",
    "rds.secure",
    "secret.present",
    "s3.private",
    "cloudfront.deployed",
    "cloudtrail.logging",
    "http.health",
)

#: The HTTP check tries this often within its timeout before it reports.
HTTP_ATTEMPTS = 3
_HTTP_PAUSE = 0.2
#: Extra wait for check threads so the HTTP check can report its own timeout.
_GRACE_SECONDS = 1.0
#: The longest ``timeout`` a run accepts: an hour is already far past useful.
MAX_TIMEOUT = 3600.0
_SCALABLE_DIMENSION = "ecs:service:DesiredCount"
_CPU_METRIC = "ECSServiceAverageCPUUtilization"
_REQUESTS_METRIC = "ALBRequestCountPerTarget"
_PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    resource: str
    detail: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "resource": self.resource,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Report:
    env: str
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(1 for check in self.checks if check.status == "pass")

    @property
    def failed(self) -> int:
        """Failures and errors: both mean the environment is not known good."""
        return sum(1 for check in self.checks if check.status in ("fail", "error"))

    @property
    def skipped(self) -> int:
        return sum(1 for check in self.checks if check.status == "skip")

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def statuses(self) -> dict[str, Status]:
        return {check.id: check.status for check in self.checks}

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "checks": [check.to_json() for check in self.checks],
            "passed": self.passed,
            "failed": self.failed,
        }

    def redacted(self, secrets: Iterable[str]) -> Report:
        """A copy in which no secret output value appears in a resource or detail."""
        values = sorted({value for value in secrets if value}, key=len, reverse=True)
        checks = [
            replace(
                check,
                resource=_redact(check.resource, values),
                detail=_redact(check.detail, values),
            )
            for check in self.checks
        ]
        return replace(self, checks=checks)


def _redact(text: str, values: Sequence[str]) -> str:
    for value in values:
        text = text.replace(value, "[secret]")
    return text


@dataclass(frozen=True)
class Target:
    """What the checks look at: the outputs, and which color through which
    listener (the live color through the production listener by default)."""

    outputs: Mapping[str, Any]
    color: str
    listener_key: str
    timeout: float

    @property
    def idle(self) -> bool:
        return self.listener_key == "test_listener_arn"

    def key(self, template: str) -> str:
        """An output key: ``{color}`` and ``{listener}`` filled in for this run."""
        return template.format(color=self.color, listener=self.listener_key)

    def get(self, template: str) -> Any:
        return self.outputs[self.key(template)]


@dataclass(frozen=True)
class Finding:
    """What a check saw: the resource, and the problems (none means pass)."""

    resource: str
    problems: list[str]
    summary: str

    @property
    def status(self) -> Status:
        return "fail" if self.problems else "pass"

    @property
    def detail(self) -> str:
        return "; ".join(self.problems) if self.problems else self.summary


CheckFunction = Callable[[Aws, Target], Finding]


@dataclass(frozen=True)
class Check:
    id: str
    #: Output keys the check reads; ``{color}`` is the color under check and
    #: ``{listener}`` the key of the listener it goes through.
    needs: tuple[str, ...]
    run: CheckFunction


# -- the run ------------------------------------------------------------------


def run_checks(
    outputs: Mapping[str, Any],
    aws: Aws,
    *,
    env: str,
    only: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    color: str | None = None,
    timeout: float = 10.0,
) -> Report:
    """Check the environment the outputs describe; every check runs at once."""
    selected = select_checks(only, skip)
    target = _target(outputs, color, timeout)
    for check in selected:
        needed = [target.key(template) for template in check.needs]
        require(outputs, needed, purpose=f"check {check.id}")
    preflight(aws, timeout)

    started = time.monotonic()
    results = _run_concurrently(selected, aws, target)
    skipped = [
        CheckResult(check_id, "skip", "", "not selected", 0.0)
        for check_id in CHECK_IDS
        if check_id not in {check.id for check in selected}
    ]
    ordered = sorted(results + skipped, key=lambda result: CHECK_IDS.index(result.id))
    return Report(env=env, checks=ordered, seconds=time.monotonic() - started)


def select_checks(
    only: Sequence[str] | None = None, skip: Sequence[str] | None = None
) -> list[Check]:
    """The checks to run, in ``CHECK_IDS`` order.

    Unknown ids, an empty ``only`` and a selection that leaves nothing to run
    are usage errors: a run that checked nothing must not pass.
    """
    known = f"known checks: {', '.join(CHECK_IDS)}"
    for option, ids in (("--only", only), ("--skip", skip)):
        unknown = [check_id for check_id in ids or () if check_id not in CHECKS]
        if unknown:
            raise UsageError(
                f"{option}: unknown check id(s): {', '.join(unknown)}", hint=known
            )
    if only is not None and not only:
        raise UsageError("--only needs at least one check id", hint=known)
    chosen = set(only) if only is not None else set(CHECK_IDS)
    chosen -= set(skip or ())
    if not chosen:
        named = "every check --only names" if only is not None else "every check"
        raise UsageError(
            f"no checks selected: --skip leaves out {named}",
            hint="skip fewer checks, or name others with --only",
        )
    return [CHECKS[check_id] for check_id in CHECK_IDS if check_id in chosen]


def _target(outputs: Mapping[str, Any], color: str | None, timeout: float) -> Target:
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise UsageError(
            f"--timeout must be a number of seconds up to {MAX_TIMEOUT:g}, "
            f"not {timeout}"
        )
    require(outputs, ["active_color"], purpose="verify")
    active = outputs["active_color"]
    if active not in COLORS:
        raise ConfigError(
            f"output active_color is {active!r}; expected blue or green",
            hint="use the outputs of a deployed stack",
            key="active_color",
        )
    if color is None:
        return Target(outputs, str(active), "prod_listener_arn", timeout)
    other_color(color)  # validates the name
    return Target(outputs, color, "test_listener_arn", timeout)


def preflight(aws: Aws, timeout: float) -> None:
    """One cheap call without retries and within ``timeout``, so that missing
    credentials or an unreachable endpoint is one clear error, soon, instead
    of every check retrying."""
    sts = aws.client("sts", _preflight_config(timeout))
    with translated_errors("cannot reach AWS"):
        sts.get_caller_identity()


@functools.cache
def _preflight_config(timeout: float) -> Config:
    """One Config per timeout: ``Aws.client`` caches clients by the config's
    identity, so a run with the same timeout reuses its client."""
    return Config(
        connect_timeout=min(timeout, CONNECT_TIMEOUT),
        read_timeout=min(timeout, READ_TIMEOUT),
        retries={"total_max_attempts": 1},
    )


def _run_concurrently(
    checks: Sequence[Check], aws: Aws, target: Target
) -> list[CheckResult]:
    """Each check's result, or an error for one without an answer in time."""
    finished: queue.SimpleQueue[CheckResult] = queue.SimpleQueue()
    for check in checks:
        threading.Thread(
            target=_run_into,
            args=(finished, check, aws, target),
            name=f"verify-{check.id}",
            daemon=True,
        ).start()

    results: dict[str, CheckResult] = {}
    deadline = time.monotonic() + target.timeout + _GRACE_SECONDS
    while len(results) < len(checks):
        remaining = deadline - time.monotonic()
        try:
            result = finished.get(timeout=max(remaining, 0))
        except queue.Empty:
            break
        results[result.id] = result
    return [results.get(check.id) or _no_answer(check.id, target) for check in checks]


def _run_into(
    finished: queue.SimpleQueue[CheckResult], check: Check, aws: Aws, target: Target
) -> None:
    finished.put(_run_one(check, aws, target))


def _no_answer(check_id: str, target: Target) -> CheckResult:
    detail = f"no answer within {target.timeout:g}s"
    return CheckResult(check_id, "error", "", detail, target.timeout)


def _run_one(check: Check, aws: Aws, target: Target) -> CheckResult:
    started = time.monotonic()
    try:
        finding = check.run(aws, target)
    except Exception as error:  # a check's failure must become its result
        seconds = time.monotonic() - started
        detail = one_line(describe_aws_error(error))
        return CheckResult(check.id, "error", "", detail, seconds)
    seconds = time.monotonic() - started
    return CheckResult(
        check.id, finding.status, finding.resource, finding.detail, seconds
    )


# -- the checks ---------------------------------------------------------------


def _target_group_name(arn: str) -> str:
    """``...:targetgroup/NAME/ID`` becomes ``NAME``."""
    return arn.rsplit(":", 1)[-1].split("/")[1] if "/" in arn else arn


def check_alb(aws: Aws, target: Target) -> Finding:
    """The load balancer exists and is active (not provisioning or failed)."""
    elbv2 = aws.client("elbv2")
    balancers = elbv2.describe_load_balancers(LoadBalancerArns=[target.get("alb_arn")])
    balancer = balancers["LoadBalancers"][0]
    state = balancer["State"]
    problems = []
    if state["Code"] != "active":
        reason = f" ({state['Reason']})" if state.get("Reason") else ""
        problems.append(f"state is {state['Code']}{reason}")
    return Finding(balancer["LoadBalancerName"], problems, "active")


def _forward_weights(listener: Mapping[str, Any]) -> dict[str, int]:
    """Target group ARN to weight for a listener's default forward action."""
    weights: dict[str, int] = {}
    for action in listener.get("DefaultActions", []):
        if action.get("Type") != "forward":
            continue
        groups = action.get("ForwardConfig", {}).get("TargetGroups")
        if groups:
            weights |= {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        elif action.get("TargetGroupArn"):
            weights[action["TargetGroupArn"]] = 100
    return weights


def _listener(aws: Aws, target: Target) -> Mapping[str, Any]:
    arn = target.get("{listener}")
    listeners = aws.client("elbv2").describe_listeners(ListenerArns=[arn])
    listener: Mapping[str, Any] = listeners["Listeners"][0]
    return listener


def check_listener(aws: Aws, target: Target) -> Finding:
    """Weights add up to 100 and the color under check gets all of them."""
    listener = _listener(aws, target)
    weights = _forward_weights(listener)
    by_color = {
        color: weights.pop(target.get(f"{color}_target_group_arn"), 0)
        for color in COLORS
    }

    problems = []
    total = sum(by_color.values()) + sum(weights.values())
    if total != 100:
        problems.append(f"weights add up to {total}, not 100")
    if weights:
        others = ", ".join(_target_group_name(arn) for arn in weights)
        problems.append(f"also forwards to {others}")
    if by_color[target.color] != 100:
        role = "color under test" if target.idle else "active_color"
        weight = by_color[target.color]
        problems.append(f"{target.color} ({role}) has weight {weight}, not 100")

    summary = ", ".join(f"{color} {weight}" for color, weight in by_color.items())
    kind = "test" if target.idle else "prod"
    return Finding(f"{kind} listener :{listener['Port']}", problems, summary)


def check_targets(aws: Aws, target: Target) -> Finding:
    """The color's target group has healthy targets and no unhealthy one."""
    arn = target.get("{color}_target_group_arn")
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)
    states = [
        item["TargetHealth"]["State"] for item in health["TargetHealthDescriptions"]
    ]
    healthy = states.count("healthy")
    unhealthy = states.count("unhealthy")

    problems = []
    if not states:
        problems.append("no targets registered")
    elif not healthy:
        problems.append(f"no healthy target among {len(states)}")
    if unhealthy:
        problems.append(f"{unhealthy} of {len(states)} targets unhealthy")
    return Finding(
        _target_group_name(arn), problems, f"{healthy} of {len(states)} healthy"
    )


def check_ecs_steady(aws: Aws, target: Target) -> Finding:
    """The color's service runs its desired count on one completed deployment."""
    name = target.get("{color}_service_name")
    answer = aws.client("ecs").describe_services(
        cluster=target.get("ecs_cluster_name"), services=[name]
    )
    if not answer["services"]:
        return Finding(name, ["service not found"], "")
    service = answer["services"][0]
    running, desired = service["runningCount"], service["desiredCount"]

    problems = []
    if service["status"] != "ACTIVE":
        problems.append(f"service is {service['status']}")
    if running != desired:
        problems.append(f"running {running} of {desired} desired tasks")
    deployments = service.get("deployments", [])
    if len(deployments) != 1:
        problems.append(f"{len(deployments)} deployments instead of one primary")
    rollouts = [
        d.get("rolloutState") for d in deployments if d.get("status") == "PRIMARY"
    ]
    # rolloutState exists only with the deployment circuit breaker, which the
    # stack turns on; without it one primary at the desired count is steady.
    if rollouts and rollouts[0] not in (None, "COMPLETED"):
        problems.append(f"rollout {rollouts[0]}")
    return Finding(name, problems, f"{running} of {desired} running, rollout completed")


def check_autoscaling(aws: Aws, target: Target) -> Finding:
    """Both services have a scalable target with sane bounds and both policies.

    The outputs carry no configured capacities, so "sane" means what holds
    for every environment: min at least 1 and max at least min.
    """
    cluster = target.get("ecs_cluster_name")
    services = [target.get(f"{color}_service_name") for color in COLORS]
    scaling = aws.client("application-autoscaling")
    problems = []
    for service in services:
        problems += [
            f"{service}: {problem}"
            for problem in _scaling_problems(scaling, f"service/{cluster}/{service}")
        ]
    return Finding(
        ", ".join(services), problems, "min >= 1, max >= min, CPU and request policies"
    )


def _scaling_problems(scaling: Any, resource_id: str) -> list[str]:
    common = {"ServiceNamespace": "ecs", "ScalableDimension": _SCALABLE_DIMENSION}
    found = scaling.describe_scalable_targets(**common, ResourceIds=[resource_id])
    if not found["ScalableTargets"]:
        return ["no scalable target registered"]
    bounds = found["ScalableTargets"][0]
    low, high = bounds["MinCapacity"], bounds["MaxCapacity"]
    problems = []
    if low < 1:
        problems.append(f"min capacity {low} < 1")
    if high < low:
        problems.append(f"max capacity {high} < min {low}")

    policies = scaling.describe_scaling_policies(**common, ResourceId=resource_id)
    metrics = {
        policy["TargetTrackingScalingPolicyConfiguration"]
        .get("PredefinedMetricSpecification", {})
        .get("PredefinedMetricType")
        for policy in policies["ScalingPolicies"]
        if policy.get("PolicyType") == "TargetTrackingScaling"
    }
    for metric, label in ((_CPU_METRIC, "CPU"), (_REQUESTS_METRIC, "request-count")):
        if metric not in metrics:
            problems.append(f"no {label} target-tracking policy")
    return problems


def _db_identifier(endpoint: str) -> str:
    """RDS endpoints read ``IDENTIFIER.xxxx.REGION.rds.amazonaws.com[:PORT]``."""
    return endpoint.split(":")[0].split(".")[0]


def check_rds(aws: Aws, target: Target) -> Finding:
    """The database is available, encrypted, private, with an RDS-managed secret."""
    identifier = _db_identifier(str(target.get("rds_endpoint")))
    answer = aws.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)
    instance = answer["DBInstances"][0]
    problems = []
    if instance["DBInstanceStatus"] != "available":
        problems.append(f"status {instance['DBInstanceStatus']}")
    if not instance.get("StorageEncrypted"):
        problems.append("storage not encrypted")
    if instance.get("PubliclyAccessible"):
        problems.append("publicly accessible")
    if not instance.get("MasterUserSecret", {}).get("SecretArn"):
        problems.append("master password not managed in Secrets Manager")
    return Finding(
        identifier, problems, "available, encrypted, private, managed secret"
    )


def check_secret(aws: Aws, target: Target) -> Finding:
    """The database secret exists and is not scheduled for deletion."""
    arn = target.get("db_secret_arn")
    secret = aws.client("secretsmanager").describe_secret(SecretId=arn)
    problems = []
    if secret.get("DeletedDate"):
        problems.append(f"scheduled for deletion on {secret['DeletedDate']:%Y-%m-%d}")
    rotation = "rotation on" if secret.get("RotationEnabled") else "rotation off"
    return Finding(secret["Name"], problems, f"present, {rotation}")


def check_s3(aws: Aws, target: Target) -> Finding:
    """The static bucket blocks public access, encrypts and versions objects."""
    bucket = target.get("static_bucket_name")
    s3 = aws.client("s3")
    problems = []
    block = _optional(
        lambda: s3.get_public_access_block(Bucket=bucket),
        "NoSuchPublicAccessBlockConfiguration",
    )
    flags = (block or {}).get("PublicAccessBlockConfiguration", {})
    open_flags = [flag for flag in _PUBLIC_ACCESS_FLAGS if not flags.get(flag)]
    if open_flags:
        problems.append(f"public access not blocked: {', '.join(open_flags)} off")
    encryption = _optional(
        lambda: s3.get_bucket_encryption(Bucket=bucket),
        "ServerSideEncryptionConfigurationNotFoundError",
    )
    if not encryption:
        problems.append("no default encryption")
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    if versioning != "Enabled":
        problems.append(f"versioning {versioning.lower()}")
    return Finding(bucket, problems, "public access blocked, encrypted, versioned")


def _optional(call: Callable[[], Any], missing_code: str) -> Any:
    """The call's answer, or None when AWS says the configuration is absent."""
    try:
        return call()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == missing_code:
            return None
        raise


def check_cloudfront(aws: Aws, target: Target) -> Finding:
    """The distribution is enabled, deployed, and reads S3 through an OAC."""
    distribution_id = target.get("cloudfront_distribution_id")
    answer = aws.client("cloudfront").get_distribution(Id=distribution_id)
    distribution = answer["Distribution"]
    config = distribution["DistributionConfig"]
    problems = []
    if not config.get("Enabled"):
        problems.append("disabled")
    if distribution["Status"] != "Deployed":
        problems.append(f"status {distribution['Status']}")
    s3_origins = [
        origin
        for origin in config["Origins"].get("Items", [])
        if ".s3." in origin["DomainName"] or "S3OriginConfig" in origin
    ]
    if not s3_origins:
        problems.append("no S3 origin")
    for origin in s3_origins:
        if not origin.get("OriginAccessControlId"):
            problems.append(f"origin {origin['Id']} has no origin access control")
    return Finding(distribution_id, problems, "enabled, deployed, S3 origin via OAC")


def check_cloudtrail(aws: Aws, target: Target) -> Finding:
    """The trail logs, covers every region and validates its log files."""
    arn = target.get("cloudtrail_arn")
    cloudtrail = aws.client("cloudtrail")
    trails = cloudtrail.describe_trails(trailNameList=[arn])["trailList"]
    if not trails:
        return Finding(arn, ["trail not found"], "")
    trail = trails[0]
    problems = []
    if not cloudtrail.get_trail_status(Name=arn).get("IsLogging"):
        problems.append("logging stopped")
    if not trail.get("IsMultiRegionTrail"):
        problems.append("single-region trail")
    if not trail.get("LogFileValidationEnabled"):
        problems.append("log file validation off")
    return Finding(trail["Name"], problems, "logging, multi-region, validated")


def check_http(aws: Aws, target: Target) -> Finding:
    """The load balancer answers the health path with 2xx through the listener.

    The URL is the exported DNS name, the listener's port and protocol, and
    the target group's health check path, so no extra outputs are needed.
    """
    listener = _listener(aws, target)
    arn = target.get("{color}_target_group_arn")
    groups = aws.client("elbv2").describe_target_groups(TargetGroupArns=[arn])
    path = groups["TargetGroups"][0].get("HealthCheckPath") or "/"
    scheme = "https" if listener["Protocol"] == "HTTPS" else "http"
    host = str(target.get("alb_dns_name"))
    url = f"{scheme}://{host}:{listener['Port']}{path}"

    answer = _get_with_retries(
        scheme, host, int(listener["Port"]), path, target.timeout
    )
    problems = [] if answer.startswith("2") else [f"GET {url}: {answer}"]
    return Finding(url, problems, f"GET answered {answer}")


def _get_with_retries(
    scheme: str, host: str, port: int, path: str, timeout: float
) -> str:
    """``200 OK`` on success, else the last failure and the tries, in ``timeout``."""
    deadline = time.monotonic() + timeout
    answer, tries = "timed out", 0
    while tries < HTTP_ATTEMPTS and (remaining := deadline - time.monotonic()) > 0:
        tries += 1
        share = remaining / (HTTP_ATTEMPTS - tries + 1)
        answer = _get_once(scheme, host, port, path, share)
        if answer[0] in "234":  # only server errors and no answer are retried
            return answer
        time.sleep(min(_HTTP_PAUSE, max(deadline - time.monotonic(), 0)))
    return f"{answer} ({tries} tries within {timeout:g}s)"


def _get_once(scheme: str, host: str, port: int, path: str, timeout: float) -> str:
    connection: http.client.HTTPConnection
    if scheme == "https":
        # The certificate names the service's domain, not the load balancer's
        # own DNS name: the chain is still verified, the host name is not.
        context = ssl.create_default_context()
        context.check_hostname = False
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "tapctl-verify"})
        response = connection.getresponse()
        return f"{response.status} {response.reason}".strip()
    except TimeoutError:
        return "timed out"
    except OSError as error:
        return (error.strerror or str(error) or type(error).__name__).lower()
    finally:
        connection.close()


CHECKS: dict[str, Check] = {
    check.id: check
    for check in (
        Check("alb.active", ("alb_arn",), check_alb),
        Check(
            "listener.weights",
            ("{listener}", "blue_target_group_arn", "green_target_group_arn"),
            check_listener,
        ),
        Check("targets.healthy", ("{color}_target_group_arn",), check_targets),
        Check(
            "ecs.steady", ("ecs_cluster_name", "{color}_service_name"), check_ecs_steady
        ),
        Check(
            "ecs.autoscaling",
            ("ecs_cluster_name", "blue_service_name", "green_service_name"),
            check_autoscaling,
        ),
        Check("rds.secure", ("rds_endpoint",), check_rds),
        Check("secret.present", ("db_secret_arn",), check_secret),
        Check("s3.private", ("static_bucket_name",), check_s3),
        Check("cloudfront.deployed", ("cloudfront_distribution_id",), check_cloudfront),
        Check("cloudtrail.logging", ("cloudtrail_arn",), check_cloudtrail),
        Check(
            "http.health",
            ("alb_dns_name", "{listener}", "{color}_target_group_arn"),
            check_http,
        ),
    )
}


# -- JUnit --------------------------------------------------------------------

_JUNIT_ELEMENTS = {"fail": "failure", "error": "error", "skip": "skipped"}


def junit_xml(report: Report) -> ET.ElementTree[ET.Element]:
    """A JUnit document: one suite, one test case per check."""
    suite = ET.Element(
        "testsuite",
        name="tapctl.verify",
        tests=str(len(report.checks)),
        failures=str(sum(1 for c in report.checks if c.status == "fail")),
        errors=str(sum(1 for c in report.checks if c.status == "error")),
        skipped=str(report.skipped),
        time=f"{report.seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="env", value=report.env)
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"tapctl.verify.{report.env}",
            name=check.id,
            time=f"{check.seconds:.3f}",
        )
        element = _JUNIT_ELEMENTS.get(check.status)
        if element:
            ET.SubElement(case, element, message=check.detail).text = check.resource
    return ET.ElementTree(suite)


def check_writable(path: Path) -> None:
    """Refuse a JUnit path that cannot be written before any check runs,
    so that a typo does not cost a whole run and its printed results."""
    folder = path.parent
    hint = "choose a writable --junit path"
    if not folder.is_dir():
        raise UsageError(f"cannot write JUnit file {path}: no folder {folder}", hint)
    if path.is_dir():
        raise UsageError(f"cannot write JUnit file {path}: it is a folder", hint)
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise UsageError(f"cannot write JUnit file {path}: permission denied", hint)


def write_junit(report: Report, path: Path) -> None:
    try:
        junit_xml(report).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as error:
        raise UsageError(
            f"cannot write JUnit file {path}: {error.strerror or error}",
            hint="choose a writable --junit path",
        ) from error
