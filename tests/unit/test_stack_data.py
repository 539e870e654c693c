"""The database: private, encrypted with its own key, TLS only, and with a
master password that RDS creates and keeps in Secrets Manager."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from lib.tap_stack import _first_secret_arn
from tapctl.planner import PlannedResource, ProgramResult
from tests.unit.stack_fixtures import PROJECT, mock_arn, named, plan, referenced

INSTANCE = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"


def database(result: ProgramResult) -> PlannedResource:
    (instance,) = result.of_type(INSTANCE)
    return instance


def key_names(value: Any) -> Iterator[str]:
    """Every mapping key anywhere inside an input value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from key_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from key_names(item)


def test_key_rotates_and_has_an_alias() -> None:
    result = plan("dev")
    key = named(result, KEY, "-data-key")
    alias = named(result, "aws:kms/alias:Alias", "-key-alias")

    assert key.inputs["enableKeyRotation"] is True
    assert alias.inputs["name"] == "alias/tap-dev-data"
    assert alias.inputs["targetKeyId"] == f"{key.name}-key-id"


def test_database_storage_and_secret_use_the_customer_key() -> None:
    result = plan("dev")
    instance = database(result)
    key_arn = mock_arn(named(result, KEY, "-data-key"))

    assert instance.inputs["storageEncrypted"] is True
    assert instance.inputs["kmsKeyId"] == key_arn
    assert instance.inputs["masterUserSecretKmsKeyId"] == key_arn


def test_database_is_private_in_isolated_subnets_behind_its_group() -> None:
    result = plan("dev")
    instance = database(result)
    group = named(result, "aws:rds/subnetGroup:SubnetGroup", "-data-subnets")

    assert instance.inputs["publiclyAccessible"] is False
    assert instance.inputs["dbSubnetGroupName"] == group.inputs["name"]
    assert all("-network-isolated-" in s for s in group.inputs["subnetIds"])
    assert len(group.inputs["subnetIds"]) == 2
    (security_group,) = instance.inputs["vpcSecurityGroupIds"]
    assert referenced(result, security_group).name.endswith("-db-sg")


def test_master_password_is_managed_by_rds_and_never_an_input() -> None:
    result = plan("prod")

    assert database(result).inputs["manageMasterUserPassword"] is True
    for resource in result.resources:
        keys = {k.lower() for k in key_names(resource.inputs)}
        assert not {k for k in keys if "password" in k} - {"managemasteruserpassword"}


def test_no_password_argument_in_the_program_or_config_files() -> None:
    python_argument = re.compile(r"(\w*password\w*)\s*=(?!=)", re.IGNORECASE)
    yaml_key = re.compile(r"^\s*[\w:]*password\w*\s*:", re.IGNORECASE | re.MULTILINE)

    for path in (PROJECT.root / "lib" / "tap_stack.py", PROJECT.root / "tap.py"):
        names = set(python_argument.findall(path.read_text()))
        assert names <= {"manage_master_user_password"}, path.name
    for path in PROJECT.root.glob("Pulumi*.yaml"):
        assert yaml_key.findall(path.read_text()) == [], path.name


def test_parameter_group_forces_tls_for_the_engine_family() -> None:
    result = plan("dev")
    group = named(result, "aws:rds/parameterGroup:ParameterGroup", "-data-params")

    assert group.inputs["family"] == "postgres16"
    assert {p["name"]: p["value"] for p in group.inputs["parameters"]} == {
        "rds.force_ssl": "1"
    }
    assert database(result).inputs["parameterGroupName"] == group.inputs["name"]


def test_minor_engine_version_maps_to_its_major_family() -> None:
    result = plan("dev", dbEngineVersion="15.7")
    group = named(result, "aws:rds/parameterGroup:ParameterGroup", "-data-params")

    assert group.inputs["family"] == "postgres15"
    assert group.inputs["name"] == "tap-dev-postgres15"
    assert database(result).inputs["engineVersion"] == "15.7"


def test_engine_and_size_come_from_config() -> None:
    instance = database(plan("staging"))

    assert instance.inputs["engine"] == "postgres"
    assert instance.inputs["instanceClass"] == "db.t4g.small"
    assert instance.inputs["allocatedStorage"] == 50
    assert instance.inputs["port"] == 5432


@pytest.mark.parametrize(
    ("env", "multi_az", "retention", "protected", "snapshot"),
    [
        ("dev", False, 1, False, None),
        ("staging", False, 7, False, "tap-staging-db-final"),
        ("prod", True, 30, True, "tap-prod-db-final"),
    ],
)
def test_resilience_settings_follow_the_environment(
    env: str, multi_az: bool, retention: int, protected: bool, snapshot: str | None
) -> None:
    instance = database(plan(env))

    assert instance.inputs["multiAz"] is multi_az
    assert instance.inputs["backupRetentionPeriod"] == retention
    assert instance.inputs["deletionProtection"] is protected
    assert instance.inputs["skipFinalSnapshot"] is (snapshot is None)
    assert instance.inputs.get("finalSnapshotIdentifier") == snapshot


def test_secret_arn_export_is_the_rds_managed_secret() -> None:
    outputs = plan("dev").outputs

    assert outputs["db_secret_arn"] == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-tap-dev-data-db"
    )


def test_no_managed_secret_yet_gives_an_empty_arn() -> None:
    assert _first_secret_arn(None) == ""
    assert _first_secret_arn([]) == ""
