"""The plan's security rules, each shown passing on a sound resource and
failing on a broken one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tapctl.planner import PlannedResource, ProgramResult
from tapctl.policy import run_policy

SUFFIX = "dev"
TLS_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
)


def _sound_world() -> list[PlannedResource]:
    bucket = "tap-dev-static"
    return [
        PlannedResource(
            "aws:rds/instance:Instance",
            "tap-dev-db",
            {
                "identifier": "tap-dev-db",
                "publiclyAccessible": False,
                "storageEncrypted": True,
                "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
                "manageMasterUserPassword": True,
            },
        ),
        PlannedResource("aws:s3/bucket:Bucket", "tap-dev-static", {"bucket": bucket}),
        PlannedResource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "tap-dev-static-pab",
            {
                "bucket": "tap-dev-static-id",
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
        ),
        PlannedResource(
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            "tap-dev-static-sse",
            {
                "bucket": bucket,
                "rules": [
                    {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
                ],
            },
        ),
        PlannedResource(
            "aws:s3/bucketPolicy:BucketPolicy",
            "tap-dev-static-policy",
            {"bucket": "tap-dev-static-id", "policy": TLS_ONLY},
        ),
        PlannedResource(
            "aws:iam/rolePolicy:RolePolicy",
            "tap-dev-exec-secrets",
            {
                "policy": json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["secretsmanager:GetSecretValue"],
                                "Resource": "arn:aws:secretsmanager:::secret:x",
                            }
                        ]
                    }
                )
            },
        ),
        PlannedResource(
            "aws:lb/loadBalancer:LoadBalancer", "tap-dev-alb", {"name": "tap-dev-alb"}
        ),
        PlannedResource(
            "aws:lb/listener:Listener",
            "tap-dev-prod",
            {
                "defaultActions": [
                    {
                        "type": "forward",
                        "forward": {
                            "targetGroups": [
                                {"arn": "blue", "weight": 90},
                                {"arn": "green", "weight": 10},
                            ]
                        },
                    }
                ]
            },
        ),
        PlannedResource("pulumi:providers:aws", "default", {}),
    ]


def _statuses(resources: list[PlannedResource]) -> dict[str, bool]:
    result = ProgramResult("dev", resources, {})
    return {check.id: check.ok for check in run_policy(result, SUFFIX)}


def _broken(type_token: str, **changes: Any) -> list[PlannedResource]:
    world = _sound_world()
    for index, resource in enumerate(world):
        if resource.type == type_token:
            world[index] = PlannedResource(
                resource.type, resource.name, {**resource.inputs, **changes}
            )
    return world


def test_sound_world_passes_every_rule() -> None:
    statuses = _statuses(_sound_world())
    assert all(statuses.values()), statuses
    assert len(statuses) == 11


@pytest.mark.parametrize(
    ("type_token", "changes", "failing"),
    [
        ("aws:rds/instance:Instance", {"publiclyAccessible": True}, "rds.not-public"),
        ("aws:rds/instance:Instance", {"storageEncrypted": False}, "rds.encrypted"),
        ("aws:rds/instance:Instance", {"kmsKeyId": ""}, "rds.encrypted"),
        (
            "aws:rds/instance:Instance",
            {"manageMasterUserPassword": False},
            "rds.managed-password",
        ),
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            {"restrictPublicBuckets": False},
            "s3.public-access-blocked",
        ),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            {"rules": []},
            "s3.encrypted",
        ),
        (
            "aws:s3/bucketPolicy:BucketPolicy",
            {"policy": json.dumps({"Statement": []})},
            "s3.tls-only",
        ),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {"policy": json.dumps({"Statement": {"Action": "*", "Resource": "*"}})},
            "iam.no-wildcard",
        ),
        (
            "aws:lb/loadBalancer:LoadBalancer",
            {"name": "tap-dev-alb-with-a-name-far-too-long"},
            "names.limits",
        ),
        ("aws:lb/loadBalancer:LoadBalancer", {"name": "tap_dev_alb"}, "names.limits"),
        ("aws:s3/bucket:Bucket", {"bucket": "tap-dev-Static"}, "names.limits"),
        ("aws:lb/loadBalancer:LoadBalancer", {"name": "tap-alb"}, "names.suffix"),
    ],
)
def test_each_rule_fails_only_on_its_own_fault(
    type_token: str, changes: dict[str, Any], failing: str
) -> None:
    statuses = _statuses(_broken(type_token, **changes))

    assert statuses[failing] is False
    assert [rule for rule, ok in statuses.items() if not ok] == [failing]


def test_weights_that_do_not_add_to_100_fail() -> None:
    world = _sound_world()
    listener = next(r for r in world if r.type == "aws:lb/listener:Listener")
    listener.inputs["defaultActions"][0]["forward"]["targetGroups"][1]["weight"] = 20

    assert _statuses(world)["alb.weights"] is False


def test_a_password_input_anywhere_fails() -> None:
    world = [
        *_sound_world(),
        PlannedResource("aws:x/y:Y", "dev-x", {"masterPassword": "p"}),
    ]

    assert _statuses(world)["rds.managed-password"] is False


def test_a_bucket_without_any_settings_fails_every_bucket_rule() -> None:
    world = [*_sound_world(), PlannedResource("aws:s3/bucket:Bucket", "dev-logs", {})]
    statuses = _statuses(world)

    assert not statuses["s3.public-access-blocked"]
    assert not statuses["s3.encrypted"]
    assert not statuses["s3.tls-only"]


def test_config_keys_nothing_reads_fail_and_other_namespaces_pass() -> None:
    result = ProgramResult("dev", _sound_world(), {})
    result.config_keys = {"tap:vpcCidr", "tap:natGatewayPerAZ", "aws:region", "oops"}
    result.config_read = {"tap:vpcCidr", "tap:natGatewayPerAz"}

    (check,) = [c for c in run_policy(result, SUFFIX) if c.id == "config.keys-used"]

    assert not check.ok
    assert "tap:natGatewayPerAZ is set but the program never reads it" in check.detail
    assert "oops has no namespace (write tap:oops)" in check.detail
    assert "aws:region" not in check.detail
