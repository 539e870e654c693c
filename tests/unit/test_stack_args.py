"""TapStackArgs: reading stack config and refusing values that cannot work."""

from __future__ import annotations

import ipaddress
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.config import set_all_config
from typer.testing import CliRunner

from lib.tap_stack import (
    IMAGE_REFERENCE,
    StackConfigError,
    TapStackArgs,
    subnet_layout,
)
from tapctl import planner
from tapctl.cli import app
from tapctl.errors import ConfigError
from tapctl.planner import config_for_engine
from tests.unit.stack_fixtures import PROJECT, config, dev_args


@pytest.fixture
def stack_config() -> Iterator[Any]:
    """Load a config map the way the engine hands it to a program."""

    def load(values: dict[str, Any]) -> pulumi.Config:
        strings, secrets = config_for_engine(values)
        set_all_config(strings, secrets)
        return pulumi.Config("tap")

    yield load
    set_all_config({}, [])


def test_from_config_reads_typed_values_of_the_prod_file(stack_config: Any) -> None:
    args = TapStackArgs.from_config(stack_config(config("prod")), "prod")

    assert args.environment_suffix == "prod"
    assert args.vpc_cidr == "10.40.0.0/16"
    assert args.availability_zone_count == 3
    assert args.nat_gateway_per_az is True
    assert (args.task_cpu, args.task_memory) == (1024, 2048)
    assert (args.min_capacity, args.max_capacity) == (3, 12)
    assert args.db_multi_az is True and args.db_final_snapshot is True
    assert args.db_engine_version == "16"
    assert args.cdn_price_class == "PriceClass_All"
    assert args.tags["DataClassification"] == "confidential"


def test_from_config_applies_defaults_when_only_required_keys_are_set(
    stack_config: Any,
) -> None:
    minimal = {
        "tap:vpcCidr": "10.9.0.0/16",
        "tap:blueImage": "example/app:1",
        "tap:greenImage": "example/app:1",
    }

    args = TapStackArgs.from_config(stack_config(minimal), "qa")

    assert args.environment_suffix == "qa"
    assert args.active_color == "blue" and args.idle_weight == 0
    assert args.test_listener_port == 8080
    assert args.test_access_sources == ("10.9.0.0/16",)
    assert args.certificate_arn is None
    assert args.db_deletion_protection is True and args.db_final_snapshot is True
    assert args.tags == {}


def test_from_config_keeps_zero_values_instead_of_defaults(stack_config: Any) -> None:
    values = config("dev", idleWeight=0, dbBackupRetentionDays=0, activeColor="green")

    args = TapStackArgs.from_config(stack_config(values), "dev")

    assert args.idle_weight == 0
    assert args.db_backup_retention_days == 0
    assert args.weights == {"green": 100, "blue": 0}


def test_environment_suffix_key_overrides_the_stack_name(stack_config: Any) -> None:
    values = config("dev", environmentSuffix="feature7")

    assert (
        TapStackArgs.from_config(stack_config(values), "dev").prefix == "tap-feature7"
    )


def test_test_access_cidrs_are_read_as_a_list(stack_config: Any) -> None:
    values = config("dev", testAccessCidrs=["192.0.2.0/24", "198.51.100.7/32"])

    args = TapStackArgs.from_config(stack_config(values), "dev")

    assert args.test_access_sources == ("192.0.2.0/24", "198.51.100.7/32")


@pytest.mark.parametrize(
    ("key", "value"),
    [("testAccessCidrs", {"a": "b"}), ("testAccessCidrs", []), ("tags", ["a"])],
)
def test_from_config_rejects_wrongly_shaped_objects(
    stack_config: Any, key: str, value: Any
) -> None:
    with pytest.raises(StackConfigError) as caught:
        TapStackArgs.from_config(stack_config(config("dev", **{key: value})), "dev")

    assert caught.value.key == f"tap:{key}"


def test_missing_required_key_fails_naming_it() -> None:
    values = config("dev")
    del values["tap:blueImage"]

    with pytest.raises(ConfigError) as caught:
        from tapctl.planner import run_program

        run_program(PROJECT.root / "tap.py", values, stack="dev")

    assert caught.value.key == "tap:blueImage"
    assert "missing config tap:blueImage" in caught.value.message


def test_error_message_names_key_and_value() -> None:
    with pytest.raises(StackConfigError) as caught:
        dev_args(vpc_cidr="10.0.0.0/33")

    assert str(caught.value) == "tap:vpcCidr: '10.0.0.0/33' is not a valid IPv4 network"
    assert caught.value.key == "tap:vpcCidr"
    assert isinstance(caught.value, ValueError)


INVALID = [
    ("vpcCidr", {"vpc_cidr": "10.0.0.0/33"}),
    ("vpcCidr", {"vpc_cidr": "10.0.0.1/16"}),
    ("vpcCidr", {"vpc_cidr": "not-a-network"}),
    ("vpcCidr", {"vpc_cidr": "10.0.0.0/24"}),
    ("vpcCidr", {"vpc_cidr": "10.0.0.0/8"}),
    ("availabilityZoneCount", {"availability_zone_count": 1}),
    ("availabilityZoneCount", {"availability_zone_count": 7}),
    ("activeColor", {"active_color": "red"}),
    ("idleWeight", {"idle_weight": -1}),
    ("idleWeight", {"idle_weight": 101}),
    ("minCapacity", {"min_capacity": 0, "max_capacity": 2}),
    ("maxCapacity", {"min_capacity": 3, "max_capacity": 2}),
    ("blueImage", {"blue_image": "   "}),
    ("greenImage", {"green_image": ""}),
    ("blueImage", {"blue_image": "nginx with space:1"}),
    ("blueImage", {"blue_image": "NGINX:1.27"}),
    ("greenImage", {"green_image": "nginx"}),
    ("greenImage", {"green_image": "nginx:1.27\n"}),
    ("environmentSuffix", {"environment_suffix": "Dev"}),
    ("environmentSuffix", {"environment_suffix": "1dev"}),
    ("environmentSuffix", {"environment_suffix": "a" * 21}),
    ("environmentSuffix", {"environment_suffix": "dev-"}),
    ("environmentSuffix", {"environment_suffix": "de--v"}),
    ("environmentSuffix", {"environment_suffix": "dev_1"}),
    ("environmentSuffix", {"environment_suffix": ""}),
    ("containerPort", {"container_port": 0}),
    ("testListenerPort", {"test_listener_port": 70000}),
    ("testListenerPort", {"test_listener_port": 443}),
    ("testAccessCidrs", {"test_access_cidrs": ("10.0.0.300/32",)}),
    ("healthCheckPath", {"health_check_path": "health"}),
    ("taskMemory", {"task_cpu": 256, "task_memory": 4096}),
    ("taskMemory", {"task_cpu": 300, "task_memory": 512}),
    ("cpuTargetPercent", {"cpu_target_percent": 0}),
    ("requestsPerTarget", {"requests_per_target": 0}),
    ("dbEngineVersion", {"db_engine_version": "sixteen"}),
    ("dbAllocatedStorage", {"db_allocated_storage": 10}),
    ("dbBackupRetentionDays", {"db_backup_retention_days": 36}),
    ("logRetentionDays", {"log_retention_days": 10}),
    ("certificateArn", {"certificate_arn": "my-cert"}),
    ("cdnPriceClass", {"cdn_price_class": "cheap"}),
]


@pytest.mark.parametrize(
    ("key", "changes"),
    INVALID,
    ids=[f"{key}-{next(iter(changes.values()))!r}" for key, changes in INVALID],
)
def test_invalid_setting_is_refused_naming_its_key(
    key: str, changes: dict[str, Any]
) -> None:
    with pytest.raises(StackConfigError) as caught:
        dev_args(**changes)

    assert caught.value.key == f"tap:{key}"
    assert str(caught.value).startswith(f"tap:{key}: ")


@pytest.mark.parametrize(
    "changes",
    [
        {"environment_suffix": "a" + "b1-" * 6 + "c"},
        {"environment_suffix": "x"},
        {"idle_weight": 0},
        {"idle_weight": 100},
        {"min_capacity": 4, "max_capacity": 4},
        {"vpc_cidr": "10.1.0.0/23", "availability_zone_count": 6},
        {"task_cpu": 8192, "task_memory": 61440},
        {"db_engine_version": "16.4", "certificate_arn": "arn:aws:acm:x"},
    ],
)
def test_boundary_values_are_accepted(changes: dict[str, Any]) -> None:
    args = dev_args(**changes)

    for attribute, value in changes.items():
        assert getattr(args, attribute) == value


def test_longest_suffix_is_twenty_characters() -> None:
    assert len("a" + "b1-" * 6 + "c") == 20


@pytest.mark.parametrize(("cidr", "zones"), [("10.20.0.0/16", 2), ("10.1.0.0/23", 6)])
def test_subnet_layout_gives_disjoint_subnets_inside_the_vpc(
    cidr: str, zones: int
) -> None:
    layout = subnet_layout(cidr, zones)
    vpc = ipaddress.IPv4Network(cidr)
    subnets = [ipaddress.IPv4Network(s) for s in itertools.chain(*layout.values())]

    assert sorted(layout) == ["isolated", "private", "public"]
    assert all(len(tier) == zones for tier in layout.values())
    assert all(subnet.subnet_of(vpc) for subnet in subnets)
    assert all(subnet.prefixlen <= 28 for subnet in subnets)
    for first, second in itertools.combinations(subnets, 2):
        assert not first.overlaps(second)


def _copy_project(folder: Path, setting: str, replacement: str) -> Path:
    """The project's program with Pulumi.dev.yaml changed in one line."""
    for name in ("Pulumi.yaml", "tap.py"):
        (folder / name).write_text((PROJECT.root / name).read_text())
    shutil.copytree(PROJECT.root / "lib", folder / "lib")
    dev = (PROJECT.root / "Pulumi.dev.yaml").read_text()
    assert setting in dev
    (folder / "Pulumi.dev.yaml").write_text(dev.replace(setting, replacement))
    return folder


def test_plan_with_invalid_config_exits_2_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _copy_project(tmp_path, "tap:idleWeight: 0", "tap:idleWeight: 140")
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(project))

    outcome = CliRunner().invoke(app, ["plan", "--env", "dev"])

    assert outcome.exit_code == 2
    assert "tap:idleWeight: 140 must be between 0 and 100" in outcome.output
    assert "Traceback" not in outcome.output


def test_zone_count_beyond_the_region_fails_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs on the zone lookup's result: a region with three zones
    (the mocked one, shrunk for this test) cannot hold four."""
    monkeypatch.setattr(planner, "MOCK_ZONES", "abc")
    project = _copy_project(
        tmp_path, "tap:availabilityZoneCount: 2", "tap:availabilityZoneCount: 4"
    )

    outcome = CliRunner().invoke(
        app, ["--project-dir", str(project), "plan", "--env", "dev"]
    )

    assert outcome.exit_code == 2
    assert (
        "tap:availabilityZoneCount: 4 exceeds the 3 available zones" in outcome.stderr
    )
    assert "Traceback" not in outcome.stderr


def test_six_zones_plan_in_a_region_that_has_six(tmp_path: Path) -> None:
    project = _copy_project(
        tmp_path, "tap:availabilityZoneCount: 2", "tap:availabilityZoneCount: 6"
    )

    outcome = CliRunner().invoke(
        app, ["--project-dir", str(project), "plan", "--env", "dev", "--json"]
    )

    assert outcome.exit_code == 0, outcome.stderr
    subnets = [
        resource
        for resource in json.loads(outcome.stdout)["resources"]
        if resource["type"] == "aws:ec2/subnet:Subnet"
    ]
    assert len({subnet["inputs"]["availabilityZone"] for subnet in subnets}) == 6


IMAGE_SAMPLES = [
    "nginx:1.27",
    "public.ecr.aws/nginx/nginx:1.27-alpine",
    "localhost:5000/team/app:v2",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:" + "a" * 64,
    "registry:443/app:v1@sha256:" + "b" * 64,
    "nginx",
    "NGINX:1.27",
    "nginx with space:1",
    "nginx:",
    "nginx:1.27\n",
    "app@sha256:short",
    "-app:1",
]


@pytest.mark.parametrize("image", IMAGE_SAMPLES)
def test_stack_and_deploy_agree_on_image_references(image: str) -> None:
    from tapctl.release import IMAGE_REFERENCE as DEPLOY_IMAGE

    assert bool(IMAGE_REFERENCE.match(image)) == bool(DEPLOY_IMAGE.match(image))
