"""Static assets behind CloudFront and the audit trail: private buckets,
the policies that open exactly one door each, and the trail itself."""

from __future__ import annotations

import pytest

from lib.tap_stack import CACHING_OPTIMIZED_POLICY_ID
from tapctl.planner import ProgramResult
from tests.unit.stack_fixtures import (
    ACCOUNT,
    build_stack,
    dev_args,
    mock_arn,
    named,
    plan,
    statements,
)

BUCKETS = {"static": "-edge-static", "trail": "-audit-trail-logs"}
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


def bucket_policy(result: ProgramResult, bucket: str) -> list[dict[str, object]]:
    policy = named(
        result, "aws:s3/bucketPolicy:BucketPolicy", f"{BUCKETS[bucket]}-policy"
    )
    assert policy.inputs["bucket"] == f"tap-dev{BUCKETS[bucket]}-id"
    return statements(policy)


@pytest.mark.parametrize(
    ("bucket", "physical"),
    [
        ("static", "tap-dev-static-123456789012"),
        ("trail", "tap-dev-trail-123456789012"),
    ],
)
def test_buckets_are_private_encrypted_versioned_and_owner_enforced(
    bucket: str, physical: str
) -> None:
    result = plan("dev")
    name = f"tap-dev{BUCKETS[bucket]}"
    settings = {
        r.type.split(":")[-1]: r.inputs
        for r in result.resources
        if r.type.startswith("aws:s3/bucket") and r.inputs.get("bucket") == f"{name}-id"
    }

    assert named(result, "aws:s3/bucket:Bucket", BUCKETS[bucket]).inputs["bucket"] == (
        physical
    )
    block = settings["BucketPublicAccessBlock"]
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls")
    assert all(block[flag] is True for flag in (*flags, "restrictPublicBuckets"))
    (rule,) = settings["BucketServerSideEncryptionConfiguration"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert settings["BucketVersioning"]["versioningConfiguration"] == {
        "status": "Enabled"
    }
    assert settings["BucketOwnershipControls"]["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }


@pytest.mark.parametrize("bucket", ["static", "trail"])
def test_bucket_policies_deny_requests_without_tls(bucket: str) -> None:
    physical = {"static": "tap-dev-static", "trail": "tap-dev-trail"}[bucket]
    arn = f"arn:aws:s3:::{physical}-{ACCOUNT}"

    deny = bucket_policy(plan("dev"), bucket)[0]

    assert deny == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_static_bucket_admits_only_this_distribution_to_read() -> None:
    result = plan("dev")
    distribution = named(result, DISTRIBUTION, "-edge-cdn")

    allows = [s for s in bucket_policy(result, "static") if s["Effect"] == "Allow"]

    assert allows == [
        {
            "Sid": "AllowCloudFrontRead",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::tap-dev-static-{ACCOUNT}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": mock_arn(distribution)}},
        }
    ]


def test_distribution_reads_the_bucket_through_the_origin_access_control() -> None:
    result = plan("dev")
    distribution = named(result, DISTRIBUTION, "-edge-cdn")
    control = named(
        result, "aws:cloudfront/originAccessControl:OriginAccessControl", "-edge-oac"
    )
    (origin,) = distribution.inputs["origins"]
    behavior = distribution.inputs["defaultCacheBehavior"]

    assert origin["originAccessControlId"] == f"{control.name}-id"
    assert (
        origin["domainName"] == f"tap-dev-static-{ACCOUNT}.s3.us-east-1.amazonaws.com"
    )
    assert "customOriginConfig" not in origin
    assert control.inputs["originAccessControlOriginType"] == "s3"
    assert control.inputs["signingBehavior"] == "always"
    assert control.inputs["signingProtocol"] == "sigv4"
    assert behavior["targetOriginId"] == origin["originId"]
    assert behavior["viewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["cachePolicyId"] == CACHING_OPTIMIZED_POLICY_ID
    assert distribution.inputs["defaultRootObject"] == "index.html"
    assert distribution.inputs["tags"]["Environment"] == "dev"


@pytest.mark.parametrize(
    ("env", "price_class"), [("dev", "PriceClass_100"), ("prod", "PriceClass_All")]
)
def test_only_prod_pays_for_every_edge_location(env: str, price_class: str) -> None:
    distribution = named(plan(env), DISTRIBUTION, "-edge-cdn")

    assert distribution.inputs["priceClass"] == price_class


def test_trail_is_multi_region_validated_and_logging() -> None:
    result = plan("dev")
    trail = named(result, "aws:cloudtrail/trail:Trail", "-audit-trail")

    assert trail.inputs["name"] == "tap-dev-trail"
    assert trail.inputs["isMultiRegionTrail"] is True
    assert trail.inputs["enableLogFileValidation"] is True
    assert trail.inputs["includeGlobalServiceEvents"] is True
    assert trail.inputs["enableLogging"] is True
    assert trail.inputs["s3BucketName"] == "tap-dev-audit-trail-logs-id"


def test_trail_bucket_policy_admits_only_this_trail() -> None:
    result = plan("dev")
    arn = f"arn:aws:s3:::tap-dev-trail-{ACCOUNT}"
    trail_arn = result.outputs["cloudtrail_arn"]

    by_sid = {s.get("Sid"): s for s in bucket_policy(result, "trail")}

    assert trail_arn == f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/tap-dev-trail"
    assert by_sid["CloudTrailAclCheck"] == {
        "Sid": "CloudTrailAclCheck",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:GetBucketAcl",
        "Resource": arn,
        "Condition": {"StringEquals": {"AWS:SourceArn": trail_arn}},
    }
    write = by_sid["CloudTrailWrite"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"{arn}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"] == {
        "StringEquals": {
            "s3:x-amz-acl": "bucket-owner-full-control",
            "AWS:SourceArn": trail_arn,
        }
    }


def test_trail_waits_for_its_bucket_policy_and_policies_for_access_blocks() -> None:
    built = {r.name: r for r in build_stack(dev_args())}

    trail = built["tap-dev-audit-trail"]
    waits_for = [d._name for d in trail.opts.depends_on or []]

    assert waits_for == ["tap-dev-audit-trail-logs-policy"]
    for bucket in BUCKETS.values():
        policy = built[f"tap-dev{bucket}-policy"]
        assert [d._name for d in policy.opts.depends_on or []] == [
            f"tap-dev{bucket}-public-access"
        ]
