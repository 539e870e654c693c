"""Run the real Pulumi program offline, under Pulumi's mock runtime.

No engine, no credentials: every resource the program registers is recorded
with the inputs the program gave it, mocked provider outputs let the program
finish, and the stack's exports are resolved. ``plan_environment`` then runs
the security checks of ``tapctl.policy`` over what was recorded.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.config
from pulumi.runtime import mocks, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from tapctl.errors import ConfigError, TapctlError
from tapctl.outputs import MASK
from tapctl.project import Project

MOCK_ACCOUNT = "123456789012"
MOCK_REGION = "us-east-1"
#: Zone letters of the mocked region: us-east-1 has six, the most config allows.
MOCK_ZONES = "abcdef"
ENTRY_POINT = "tap.py"
#: Inputs that carry a physical name, in order of preference.
NAME_KEYS = ("name", "bucket", "identifier", "family", "namePrefix", "bucketPrefix")


@dataclass(frozen=True)
class PlannedResource:
    type: str
    name: str
    inputs: dict[str, Any]

    @property
    def physical_name(self) -> str | None:
        """The name AWS will know it by, where the program sets one."""
        for key in NAME_KEYS:
            value = self.inputs.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "inputs": self.inputs}


@dataclass
class ProgramResult:
    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    #: Config keys the stack file sets, and those the program read.
    config_keys: set[str] = field(default_factory=set)
    config_read: set[str] = field(default_factory=set)

    def of_type(self, type_token: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_token]

    def masked_outputs(self) -> dict[str, Any]:
        return {
            key: MASK if key in self.secret_outputs else value
            for key, value in self.outputs.items()
        }


class RecordingMocks(pulumi.runtime.Mocks):
    """Records registrations and answers with plausible provider outputs."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.resources: list[PlannedResource] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        inputs = _plain(args.inputs)
        self.resources.append(PlannedResource(args.typ, args.name, inputs))
        resource_id = f"{args.name}-id"
        return resource_id, {**inputs, **_mock_outputs(args.typ, args.name, inputs)}

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        return _mock_invoke(args.token, _plain(args.args)), []


def _arn(service: str, resource: str, region: str = MOCK_REGION) -> str:
    return f"arn:aws:{service}:{region}:{MOCK_ACCOUNT}:{resource}"


def _mock_outputs(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    physical = str(inputs.get("name") or inputs.get("bucket") or name)
    service = typ.split(":")[1].split("/")[0]
    outputs: dict[str, Any] = {
        "arn": _arn(service, f"{name}"),
        "name": physical,
        "id": f"{name}-id",
    }
    extra: dict[str, dict[str, Any]] = {
        "aws:lb/loadBalancer:LoadBalancer": {
            "dnsName": f"{physical}.{MOCK_REGION}.elb.amazonaws.com",
            "arnSuffix": f"app/{physical}/0123456789abcdef",
            "zoneId": "Z35SXDOTRQ7X7K",
        },
        "aws:lb/targetGroup:TargetGroup": {
            "arnSuffix": f"targetgroup/{physical}/0123456789abcdef"
        },
        "aws:rds/instance:Instance": {
            "address": f"{physical}.abc123.{MOCK_REGION}.rds.amazonaws.com",
            "endpoint": f"{physical}.abc123.{MOCK_REGION}.rds.amazonaws.com:5432",
            "port": inputs.get("port", 5432),
            "masterUserSecrets": [
                {
                    "secretArn": _arn("secretsmanager", f"secret:rds!db-{name}"),
                    "secretStatus": "active",
                    "kmsKeyId": _arn("kms", "key/mock"),
                }
            ],
        },
        "aws:s3/bucket:Bucket": {
            "bucket": physical,
            "bucketRegionalDomainName": f"{physical}.s3.{MOCK_REGION}.amazonaws.com",
            "arn": f"arn:aws:s3:::{physical}",
        },
        "aws:cloudfront/distribution:Distribution": {
            "domainName": f"d{abs(hash(name)) % 10**12:012d}.cloudfront.net",
            "hostedZoneId": "Z2FDTNDATAQYW2",
        },
        "aws:ecs/cluster:Cluster": {"arn": _arn("ecs", f"cluster/{physical}")},
        "aws:ecs/service:Service": {"arn": _arn("ecs", f"service/{physical}")},
        "aws:kms/key:Key": {"keyId": f"{name}-key-id"},
        "aws:cloudtrail/trail:Trail": {"arn": _arn("cloudtrail", f"trail/{physical}")},
        "aws:ec2/vpc:Vpc": {"id": "vpc-0123456789abcdef0"},
        "aws:ec2/eip:Eip": {"allocationId": f"eipalloc-{name}"},
    }
    outputs.update(extra.get(typ, {}))
    return outputs


def _mock_invoke(token: str, args: Mapping[str, Any]) -> dict[str, Any]:
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": MOCK_ACCOUNT,
            "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/plan",
            "userId": "AIDAPLAN",
            "id": MOCK_ACCOUNT,
        }
    if token in (
        "aws:index/getRegion:getRegion",
        "aws:index/getRegion:getRegionOutput",
    ):
        return {"name": MOCK_REGION, "region": MOCK_REGION, "id": MOCK_REGION}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{MOCK_REGION}{suffix}" for suffix in MOCK_ZONES]
        zone_ids = [f"use1-az{number}" for number in range(1, len(names) + 1)]
        return {"names": names, "zoneIds": zone_ids}
    if token == "aws:iam/getPolicyDocument:getPolicyDocument":
        return {"json": json.dumps({"Version": "2012-10-17", "Statement": []})}
    return {}


def _plain(value: Any) -> Any:
    """Inputs as JSON-friendly data (resource references become their URNs)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    urn = getattr(value, "urn", None)
    return f"<{type(value).__name__}>" if urn is None else f"<resource {value!r}>"


def config_for_engine(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Pulumi stack config as the engine hands it to a program: strings, with
    structured values JSON-encoded and ``secure:`` values kept as secret keys."""
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if isinstance(value, Mapping) and "secure" in value:
            values[key] = "[secret]"
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:
            values[key] = json.dumps(value)
    return values, secret_keys


def run_program(
    program: Path,
    config: Mapping[str, Any],
    *,
    stack: str,
    project: str = "tap",
) -> ProgramResult:
    """Run the Pulumi program at ``program`` under mocks and return what it
    registered and exported. ``config`` is a stack config map (``tap:key``)."""
    recorder = RecordingMocks(stack)
    values, secret_keys = config_for_engine(config)

    _reset_runtime()
    mocks.set_mocks(recorder, project=project, stack=stack, preview=False)
    set_all_config(values, secret_keys)
    folder = str(program.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)

    # The program is arbitrary user code: whatever it raises is its failure,
    # reported as one line, and a config mistake anywhere in the chain is exit 2.
    try:
        with _recording_config_reads() as read:
            _sync_await(run_pulumi_func(lambda: _run_path(program)))
            outputs, secret = _resolve_exports()
    except Exception as error:
        raise _program_error(error, stack) from error
    result = ProgramResult(stack, recorder.resources, outputs, secret)
    result.config_keys, result.config_read = set(values), read
    return result


@contextmanager
def _recording_config_reads() -> Iterator[set[str]]:
    """Note every config key the program asks for, so that a key the stack
    file sets but nothing reads (a typo, a removed setting) can be reported."""
    read: set[str] = set()
    original = getattr(pulumi.config, "get_config")  # noqa: B009

    def recording(key: str) -> Any:
        read.add(key)
        return original(key)

    setattr(pulumi.config, "get_config", recording)  # noqa: B010
    try:
        yield read
    finally:
        setattr(pulumi.config, "get_config", original)  # noqa: B010


def _reset_runtime() -> None:
    """Forget what an earlier program left behind in this process (its root
    stack, and output tasks that a failed run never awaited)."""
    settings.ROOT.set(None)
    for task in list(settings.SETTINGS.outputs):
        task.cancel()
    settings.SETTINGS.outputs.clear()


def drop_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed program leaves futures holding the error it was reported
    for; asyncio would print each again, with a traceback, when collected."""
    if "exception was never retrieved" in str(context.get("message", "")):
        return
    loop.default_exception_handler(context)


def _program_error(error: Exception, stack: str) -> TapctlError:
    keyed = _keyed_cause(error)
    if keyed is None:
        return TapctlError(f"the Pulumi program failed: {_innermost(error)}")
    key = str(keyed.key)
    hint = f"fix {key} in Pulumi.{stack}.yaml"
    if isinstance(keyed, pulumi.ConfigMissingError):
        return ConfigError(f"missing config {key}", hint=hint, key=key)
    if isinstance(keyed, pulumi.ConfigTypeError):
        message = f"config {key} is not a valid {keyed.expect_type}: {keyed.value!r}"
        return ConfigError(message, hint=hint, key=key)
    return ConfigError(str(keyed), hint=hint, key=key)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes, outermost first (Pulumi wraps errors raised
    while it resolves a resource's inputs in several layers)."""
    seen: list[BaseException] = [error]
    while True:
        # Pulumi re-raises an input's error "from" itself, which hides the
        # original cause; the implicit context still holds it.
        links = (seen[-1].__cause__, seen[-1].__context__)
        following = [link for link in links if link is not None and link not in seen]
        if not following:
            return seen
        seen.append(following[0])


def _keyed_cause(error: BaseException) -> Any:
    for cause in _chain(error):
        key = getattr(cause, "key", None)
        if isinstance(key, str) and key:
            return cause
    return None


def _innermost(error: BaseException) -> str:
    last = _chain(error)[-1]
    lines = str(last).strip().splitlines() or [type(last).__name__]
    return lines[-1]


def _run_path(program: Path) -> None:
    asyncio.get_running_loop().set_exception_handler(drop_unretrieved)
    runpy.run_path(str(program), run_name="__main__")


def _resolve_exports() -> tuple[dict[str, Any], set[str]]:
    root = settings.get_root_resource()
    exports: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    resolved: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in exports.items():
        output = pulumi.Output.from_input(value)
        resolved[key] = _plain(_sync_await(output.future()))
        if _sync_await(output.is_secret()):
            secret.add(key)
    return resolved, secret


@dataclass
class Plan:
    program: ProgramResult
    checks: list[Any]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.program.stack,
            "resources": [r.to_json() for r in self.program.resources],
            "outputs": self.program.masked_outputs(),
            "checks": [check.to_json() for check in self.checks],
        }


def plan_environment(project: Project, env: str) -> Plan:
    """Run the project's program with the environment's config file and check
    what it would build."""
    from tapctl.policy import run_policy

    config = project.load_config(env)
    program = run_program(
        project.root / ENTRY_POINT, config, stack=env, project=project.name
    )
    suffix = str(program.outputs.get("environment_suffix") or env)
    return Plan(program, run_policy(program, suffix))
