"""The program as a whole: exports, names, tags, component tree and invokes."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi.runtime
import pytest
from typer.testing import CliRunner

from tapctl.cli import app
from tapctl.outputs import EXPORT_KEYS
from tapctl.planner import ProgramResult
from tests.unit.stack_fixtures import PROJECT, build_stack, dev_args, plan

LONGEST_SUFFIX = "a" + "b1-" * 6 + "c"

#: AWS's longest physical name by resource type.
NAME_LIMITS = {
    "aws:lb/loadBalancer:LoadBalancer": 32,
    "aws:lb/targetGroup:TargetGroup": 32,
    "aws:s3/bucket:Bucket": 63,
    "aws:rds/instance:Instance": 63,
    "aws:iam/role:Role": 64,
    "aws:iam/rolePolicy:RolePolicy": 128,
    "aws:cloudfront/originAccessControl:OriginAccessControl": 64,
    "aws:ecs/cluster:Cluster": 255,
    "aws:ecs/service:Service": 255,
    "aws:rds/parameterGroup:ParameterGroup": 255,
    "aws:rds/subnetGroup:SubnetGroup": 255,
    "aws:cloudtrail/trail:Trail": 128,
    "aws:ec2/securityGroup:SecurityGroup": 255,
    "aws:appautoscaling/policy:Policy": 255,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 255,
    "aws:cloudwatch/logGroup:LogGroup": 512,
    "aws:kms/alias:Alias": 256,
}
NAME_PATTERNS = {
    "aws:lb/loadBalancer:LoadBalancer": r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
    "aws:lb/targetGroup:TargetGroup": r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$",
    "aws:s3/bucket:Bucket": r"^[a-z0-9][a-z0-9-]*[a-z0-9]$",
    "aws:rds/instance:Instance": r"^[a-z](?!.*--)[a-z0-9-]*[a-z0-9]$",
}


def physical_names(result: ProgramResult) -> Iterator[tuple[str, str]]:
    for resource in result.resources:
        name = resource.physical_name
        if resource.type.startswith("aws:") and name is not None:
            yield resource.type, name
        snapshot = resource.inputs.get("finalSnapshotIdentifier")
        if snapshot:
            yield "snapshot", snapshot


def is_taggable(type_token: str) -> bool:
    """Whether the provider's resource class takes ``tags``."""
    module, class_name = (
        type_token.split(":")[1].split("/")[0],
        type_token.split(":")[2],
    )
    resource_class = getattr(
        importlib.import_module(f"pulumi_aws.{module}"), class_name
    )
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_exports_are_exactly_the_published_keys() -> None:
    assert tuple(plan("dev").outputs) == EXPORT_KEYS


PLAUSIBLE: dict[str, Callable[[Any], bool]] = {
    "environment_suffix": lambda v: v == "staging",
    "vpc_id": lambda v: v == "tap-staging-network-vpc-id",
    "alb_arn": lambda v: v.startswith("arn:aws:lb:") and v.endswith("-lb-alb"),
    "alb_dns_name": lambda v: v == "tap-staging-alb.us-east-1.elb.amazonaws.com",
    "prod_listener_arn": lambda v: v.endswith(":tap-staging-lb-prod"),
    "test_listener_arn": lambda v: v.endswith(":tap-staging-lb-test"),
    "blue_target_group_arn": lambda v: v.endswith(":tap-staging-lb-blue"),
    "green_target_group_arn": lambda v: v.endswith(":tap-staging-lb-green"),
    "ecs_cluster_name": lambda v: v == "tap-staging",
    "ecs_cluster_arn": lambda v: v.endswith(":cluster/tap-staging"),
    "blue_service_name": lambda v: v == "tap-staging-blue",
    "green_service_name": lambda v: v == "tap-staging-green",
    "active_color": lambda v: v == "green",
    "blue_image": lambda v: v == "public.ecr.aws/nginx/nginx:1.27-alpine",
    "green_image": lambda v: v == "example/app:9",
    "rds_endpoint": lambda v: v.startswith("tap-staging-data-db.") and ":" not in v,
    "rds_port": lambda v: v == 5432,
    "db_secret_arn": lambda v: v.startswith("arn:aws:secretsmanager:"),
    "static_bucket_name": lambda v: v == "tap-staging-static-123456789012",
    "cloudfront_domain_name": lambda v: v.endswith(".cloudfront.net"),
    "cloudfront_distribution_id": lambda v: v == "tap-staging-edge-cdn-id",
    "cloudtrail_arn": lambda v: v.endswith(":trail/tap-staging-trail"),
    "cloudtrail_bucket_name": lambda v: v == "tap-staging-trail-123456789012",
    "log_group_name": lambda v: v == "/ecs/tap-staging",
    "alarm_names": lambda v: (
        len(v) == 5 and all(n.startswith("tap-staging-") for n in v)
    ),
}


@pytest.mark.parametrize("key", EXPORT_KEYS)
def test_each_export_has_a_plausible_value(key: str) -> None:
    outputs = plan("staging", activeColor="green", greenImage="example/app:9").outputs

    assert PLAUSIBLE[key](outputs[key]), f"{key} = {outputs[key]!r}"


@pytest.mark.parametrize(
    ("env", "stack", "overrides", "suffix"),
    [
        ("dev", None, {}, "dev"),
        ("prod", None, {}, "prod"),
        ("dev", "pr123", {}, "pr123"),
        ("prod", None, {"environmentSuffix": LONGEST_SUFFIX}, LONGEST_SUFFIX),
    ],
)
def test_every_physical_name_carries_the_suffix_within_aws_limits(
    env: str, stack: str | None, overrides: dict[str, str], suffix: str
) -> None:
    result = plan(env, stack, **overrides)
    names = list(physical_names(result))

    assert len(names) > 40
    for type_token, name in names:
        assert suffix in name, (type_token, name)
        assert len(name) <= NAME_LIMITS.get(type_token, 255), (type_token, name)
        pattern = NAME_PATTERNS.get(type_token)
        assert pattern is None or re.match(pattern, name), (type_token, name)
    for resource in result.resources:
        assert resource.name.startswith(f"tap-{suffix}")


def test_longest_suffix_keeps_target_group_names_within_32() -> None:
    result = plan("dev", environmentSuffix=LONGEST_SUFFIX)
    groups = result.of_type("aws:lb/targetGroup:TargetGroup")

    assert max(len(g.inputs["name"]) for g in groups) == len("tap--green") + 20 <= 32


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_taggable_resource_carries_the_standard_and_config_tags(env: str) -> None:
    result = plan(env)
    checked = 0

    for resource in result.resources:
        if not resource.type.startswith("aws:") or not is_taggable(resource.type):
            continue
        tags = resource.inputs.get("tags")
        assert tags is not None, resource.name
        assert tags["Environment"] == env
        assert tags["ManagedBy"] == "pulumi"
        assert tags["Project"] == "tap"
        assert tags["Owner"] == "platform"
        assert tags["Name"].startswith(f"tap-{env}-")
        checked += 1
    assert checked > 50


def test_config_tags_cannot_override_the_standard_tags() -> None:
    result = plan("dev", tags={"Environment": "prod", "CostCenter": "42"})
    (vpc,) = result.of_type("aws:ec2/vpc:Vpc")

    assert vpc.inputs["tags"]["Environment"] == "dev"
    assert vpc.inputs["tags"]["CostCenter"] == "42"


def test_components_have_namespaced_types() -> None:
    components = {
        r.type for r in plan("dev").resources if not r.type.startswith("aws:")
    }

    assert components == {
        "tap:index:TapStack",
        "tap:network:Network",
        "tap:data:Data",
        "tap:edge:Edge",
        "tap:service:LoadBalancer",
        "tap:service:Service",
        "tap:service:Alarms",
        "tap:audit:Audit",
        "tap:storage:PrivateBucket",
    }


def test_every_resource_hangs_under_the_stack_component() -> None:
    built = build_stack(dev_args())
    (root,) = [r.resource for r in built if r.type == "tap:index:TapStack"]

    def tree(node: pulumi.Resource) -> Iterator[pulumi.Resource]:
        yield node
        for child in node._childResources:
            yield from tree(child)

    reachable = set(tree(root))
    assert len(built) == len(plan("dev").resources) == len(reachable)
    assert {r.resource for r in built} == reachable
    for registration in built:
        if registration.resource is not root:
            assert registration.opts.parent is not None, registration.name


def test_program_makes_no_synchronous_invoke(monkeypatch: pytest.MonkeyPatch) -> None:
    synchronous: list[str] = []
    deferred: list[str] = []
    real_output = pulumi.runtime.invoke_output

    def record_sync(token: str, *args: Any, **kwargs: Any) -> Any:
        synchronous.append(token)
        raise AssertionError(f"synchronous invoke of {token}")

    def record_output(token: str, *args: Any, **kwargs: Any) -> Any:
        deferred.append(token)
        return real_output(token, *args, **kwargs)

    monkeypatch.setattr(pulumi.runtime, "invoke", record_sync)
    monkeypatch.setattr(pulumi.runtime, "invoke_output", record_output)
    build_stack(dev_args())

    assert synchronous == []
    assert sorted(set(deferred)) == [
        "aws:index/getAvailabilityZones:getAvailabilityZones",
        "aws:index/getCallerIdentity:getCallerIdentity",
        "aws:index/getPartition:getPartition",
        "aws:index/getRegion:getRegion",
    ]


def test_program_source_uses_only_output_invokes() -> None:
    source = (PROJECT.root / "lib" / "tap_stack.py").read_text()

    calls = re.findall(r"aws\.(get_\w+)\(", source)

    assert calls
    assert all(call.endswith("_output") for call in calls), calls


def test_stack_type_token_is_namespaced() -> None:
    assert plan("dev").resources[0].type == "tap:index:TapStack"
    assert plan("dev").resources[0].name == "tap-dev"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_tapctl_plan_passes_every_check_for_each_environment(env: str) -> None:
    outcome = CliRunner().invoke(app, ["plan", "--env", env])

    assert outcome.exit_code == 0, outcome.output
    assert re.search(r"all \d+ checks ok", outcome.stderr)
