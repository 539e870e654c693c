"""Security invariants checked over a planned program, before anything exists.

Each rule reads the inputs the program gave its resources (provider
camelCase, as recorded by ``tapctl.planner``) and yields one result. Rules
are deliberately strict about absence: a bucket with no public access block
fails, it does not pass for lack of evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tapctl.planner import PlannedResource, ProgramResult
from tapctl.project import CONFIG_NAMESPACE

BUCKET = "aws:s3/bucket:Bucket"
RDS_INSTANCE = "aws:rds/instance:Instance"
LISTENER = "aws:lb/listener:Listener"

#: Longest physical name AWS accepts, by resource type.
NAME_LIMITS = {
    "aws:lb/loadBalancer:LoadBalancer": 32,
    "aws:lb/targetGroup:TargetGroup": 32,
    BUCKET: 63,
    RDS_INSTANCE: 63,
    "aws:rds/subnetGroup:SubnetGroup": 255,
    "aws:rds/parameterGroup:ParameterGroup": 255,
    "aws:iam/role:Role": 64,
    "aws:iam/policy:Policy": 128,
    "aws:iam/rolePolicy:RolePolicy": 128,
    "aws:ecs/cluster:Cluster": 255,
    "aws:ecs/service:Service": 255,
    "aws:ecs/taskDefinition:TaskDefinition": 255,
    "aws:cloudtrail/trail:Trail": 128,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 255,
    "aws:cloudwatch/logGroup:LogGroup": 512,
    "aws:cloudfront/originAccessControl:OriginAccessControl": 64,
    "aws:ec2/securityGroup:SecurityGroup": 255,
    "aws:kms/alias:Alias": 256,
    "aws:appautoscaling/policy:Policy": 255,
}
_LB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


@dataclass(frozen=True)
class Check:
    id: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "detail": self.detail}


def run_policy(result: ProgramResult, suffix: str) -> list[Check]:
    """Every rule over the planned resources, in a stable order."""
    rules: list[tuple[str, Callable[[], Iterable[str]], str]] = [
        ("rds.not-public", lambda: _public_databases(result), "no public database"),
        ("rds.encrypted", lambda: _unencrypted_databases(result), "KMS-encrypted"),
        (
            "rds.managed-password",
            lambda: _password_inputs(result),
            "master password managed by RDS; no password input anywhere",
        ),
        (
            "s3.public-access-blocked",
            lambda: _open_buckets(result),
            "every bucket blocks all public access",
        ),
        ("s3.encrypted", lambda: _unencrypted_buckets(result), "every bucket SSE"),
        ("s3.tls-only", lambda: _buckets_without_tls_policy(result), "TLS only"),
        ("iam.no-wildcard", lambda: _wildcard_statements(result), "no */* allow"),
        (
            "names.suffix",
            lambda: _names_without_suffix(result, suffix),
            f"every name carries {suffix!r}",
        ),
        ("names.limits", lambda: _names_over_limits(result), "within AWS limits"),
        ("alb.weights", lambda: _bad_weights(result), "forward weights add to 100"),
        (
            "config.keys-used",
            lambda: _unused_config(result),
            "the program reads every tap: key the stack file sets",
        ),
    ]
    return [_evaluate(check_id, rule, passed) for check_id, rule, passed in rules]


def _evaluate(check_id: str, rule: Callable[[], Iterable[str]], passed: str) -> Check:
    problems = list(rule())
    if problems:
        return Check(check_id, False, "; ".join(problems))
    return Check(check_id, True, passed)


# -- databases ---------------------------------------------------------------
def _public_databases(result: ProgramResult) -> Iterator[str]:
    for db in result.of_type(RDS_INSTANCE):
        if db.inputs.get("publiclyAccessible") is not False:
            yield f"{db.name}: publiclyAccessible is not false"


def _unencrypted_databases(result: ProgramResult) -> Iterator[str]:
    for db in result.of_type(RDS_INSTANCE):
        if db.inputs.get("storageEncrypted") is not True:
            yield f"{db.name}: storageEncrypted is not true"
        elif not db.inputs.get("kmsKeyId"):
            yield f"{db.name}: no customer KMS key (kmsKeyId)"


def _password_inputs(result: ProgramResult) -> Iterator[str]:
    for db in result.of_type(RDS_INSTANCE):
        if db.inputs.get("manageMasterUserPassword") is not True:
            yield f"{db.name}: manageMasterUserPassword is not true"
    for resource in result.resources:
        for key in resource.inputs:
            lowered = key.lower()
            if "password" in lowered and not lowered.startswith("manage"):
                yield f"{resource.name}: has a {key} input"


# -- buckets -----------------------------------------------------------------
def _settings_by_bucket(result: ProgramResult, type_token: str) -> dict[str, Any]:
    """Map each bucket reference (id or name) to its settings resource inputs."""
    return {
        str(setting.inputs.get("bucket")): setting.inputs
        for setting in result.of_type(type_token)
    }


def _bucket_setting(
    settings: dict[str, Any], bucket: PlannedResource
) -> dict[str, Any] | None:
    for reference in (f"{bucket.name}-id", bucket.physical_name, bucket.name):
        if reference in settings:
            found: dict[str, Any] = settings[reference]
            return found
    return None


def _open_buckets(result: ProgramResult) -> Iterator[str]:
    blocks = _settings_by_bucket(
        result, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    )
    for bucket in result.of_type(BUCKET):
        block = _bucket_setting(blocks, bucket)
        if block is None:
            yield f"{bucket.name}: no public access block"
            continue
        missing = [flag for flag in _PUBLIC_ACCESS_FLAGS if block.get(flag) is not True]
        if missing:
            yield f"{bucket.name}: {', '.join(missing)} not set"


def _unencrypted_buckets(result: ProgramResult) -> Iterator[str]:
    configs = _settings_by_bucket(
        result,
        "aws:s3/bucketServerSideEncryptionConfiguration:"
        "BucketServerSideEncryptionConfiguration",
    )
    for bucket in result.of_type(BUCKET):
        config = _bucket_setting(configs, bucket)
        rules = (config or {}).get("rules") or []
        algorithms = [
            (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
            for rule in rules
        ]
        if not any(algorithms):
            yield f"{bucket.name}: no default server-side encryption"


def _buckets_without_tls_policy(result: ProgramResult) -> Iterator[str]:
    policies = _settings_by_bucket(result, "aws:s3/bucketPolicy:BucketPolicy")
    for bucket in result.of_type(BUCKET):
        policy = _bucket_setting(policies, bucket)
        statements = _statements((policy or {}).get("policy"))
        if not any(_denies_insecure_transport(s) for s in statements):
            yield f"{bucket.name}: no Deny on aws:SecureTransport false"


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    return statement.get("Effect") == "Deny" and str(secure).lower() == "false"


# -- IAM ---------------------------------------------------------------------
def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _policy_documents(resource: PlannedResource) -> Iterator[Any]:
    if "policy" in resource.inputs:
        yield resource.inputs["policy"]
    for inline in resource.inputs.get("inlinePolicies") or []:
        if isinstance(inline, dict):
            yield inline.get("policy")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_statements(result: ProgramResult) -> Iterator[str]:
    for resource in result.resources:
        for document in _policy_documents(resource):
            for statement in _statements(document):
                if statement.get("Effect", "Allow") != "Allow":
                    continue
                actions = _as_list(statement.get("Action"))
                resources = _as_list(statement.get("Resource"))
                if "*" in actions and "*" in resources:
                    yield f"{resource.name}: allows Action * on Resource *"


# -- names -------------------------------------------------------------------
def _names_without_suffix(result: ProgramResult, suffix: str) -> Iterator[str]:
    for resource in result.resources:
        if not resource.type.startswith("aws:"):
            continue
        name = resource.physical_name or resource.name
        if suffix not in name:
            yield f"{resource.name}: {name!r} lacks {suffix!r}"


def _names_over_limits(result: ProgramResult) -> Iterator[str]:
    for resource in result.resources:
        limit = NAME_LIMITS.get(resource.type)
        name = resource.physical_name
        if limit is None or name is None:
            continue
        if len(name) > limit:
            yield f"{resource.name}: {name!r} is {len(name)} chars (limit {limit})"
        elif limit == 32 and not _LB_NAME.match(name):
            yield f"{resource.name}: {name!r} has characters AWS refuses"
        elif resource.type == BUCKET and not _BUCKET_NAME.match(name):
            yield f"{resource.name}: {name!r} is not a valid bucket name"


# -- load balancer -----------------------------------------------------------
def _bad_weights(result: ProgramResult) -> Iterator[str]:
    for listener in result.of_type(LISTENER):
        for action in listener.inputs.get("defaultActions") or []:
            groups = ((action.get("forward") or {}).get("targetGroups")) or []
            if not groups:
                continue
            total = sum(int(group.get("weight") or 0) for group in groups)
            if total != 100:
                yield f"{listener.name}: forward weights add to {total}"


# -- config ------------------------------------------------------------------
def _unused_config(result: ProgramResult) -> Iterator[str]:
    for key in sorted(result.config_keys - result.config_read):
        namespace, _, name = key.partition(":")
        if not name:
            yield f"{key} has no namespace (write {CONFIG_NAMESPACE}:{key})"
        elif namespace == CONFIG_NAMESPACE:
            yield f"{key} is set but the program never reads it (a typo?)"
