"""Helpers for the stack tests: run the real program offline, once per config.

``plan`` runs ``tap.py`` through tapctl's own offline runner (Pulumi's mock
runtime) with an environment's real config file plus overrides, and caches
the result, since each run takes a second or two. ``build_stack`` constructs
``TapStack`` directly under the same mocks when a test needs the resource
objects and their options (parents, ignore_changes, depends_on).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from lib.tap_stack import TapStack, TapStackArgs
from tapctl.planner import (
    MOCK_ACCOUNT,
    MOCK_REGION,
    PlannedResource,
    ProgramResult,
    RecordingMocks,
    run_program,
)
from tapctl.project import find_project

PROJECT = find_project(Path(__file__).resolve().parents[2])
ACCOUNT = MOCK_ACCOUNT
REGION = MOCK_REGION
_RESULTS: dict[str, ProgramResult] = {}


def config(env: str = "dev", **overrides: Any) -> dict[str, Any]:
    """An environment's real config map with ``tap:`` keys overridden."""
    values = PROJECT.load_config(env)
    values.update({f"tap:{key}": value for key, value in overrides.items()})
    return values


def plan(env: str = "dev", stack: str | None = None, **overrides: Any) -> ProgramResult:
    """The program's result for an environment (cached per config)."""
    cache_key = json.dumps([env, stack, overrides], sort_keys=True)
    if cache_key not in _RESULTS:
        _RESULTS[cache_key] = run_program(
            PROJECT.root / "tap.py", config(env, **overrides), stack=stack or env
        )
    return _RESULTS[cache_key]


def named(result: ProgramResult, type_token: str, name: str) -> PlannedResource:
    """The one resource of a type whose logical name ends with ``name``."""
    found = [r for r in result.of_type(type_token) if r.name.endswith(name)]
    assert len(found) == 1, f"{len(found)} {type_token} named *{name}"
    return found[0]


def referenced(result: ProgramResult, reference: str) -> PlannedResource:
    """The resource behind a mocked id (``<name>-id``) or ARN (``...:<name>``)."""
    for resource in result.resources:
        if reference in (f"{resource.name}-id", mock_arn(resource)):
            return resource
    raise AssertionError(f"no resource behind {reference!r}")


def mock_arn(resource: PlannedResource) -> str:
    service = resource.type.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource.name}"


def document(resource: PlannedResource, key: str = "policy") -> dict[str, Any]:
    """A JSON policy (or similar) input, parsed."""
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def statements(resource: PlannedResource, key: str = "policy") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document(resource, key)["Statement"]
    return found


def container(task: PlannedResource) -> dict[str, Any]:
    """The single container of a task definition."""
    definitions = json.loads(task.inputs["containerDefinitions"])
    assert len(definitions) == 1
    only: dict[str, Any] = definitions[0]
    return only


def forward_weights(result: ProgramResult, listener: PlannedResource) -> dict[str, int]:
    """Weight per target group logical name of a listener's forward action."""
    (action,) = listener.inputs["defaultActions"]
    assert action["type"] == "forward"
    return {
        referenced(result, group["arn"]).name: int(group["weight"])
        for group in action["forward"]["targetGroups"]
    }


@dataclass
class Registration:
    """A resource as constructed, with the options it was given."""

    resource: pulumi.Resource
    type: str
    name: str
    opts: pulumi.ResourceOptions


def build_stack(args: TapStackArgs, stack: str = "dev") -> list[Registration]:
    """Construct TapStack under the offline mocks and record every resource
    of its tree with its options (a transformation sees each one)."""
    seen: list[Registration] = []

    def record(
        step: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult:
        seen.append(Registration(step.resource, step.type_, step.name, step.opts))
        return pulumi.ResourceTransformationResult(step.props, step.opts)

    _run_under_mocks(
        lambda: TapStack(
            f"tap-{args.environment_suffix}",
            args,
            pulumi.ResourceOptions(transformations=[record]),
        ),
        stack,
    )
    return seen


def _run_under_mocks(build: Callable[[], Any], stack: str) -> None:
    settings.ROOT.set(None)
    mocks.set_mocks(RecordingMocks(stack), project="tap", stack=stack, preview=False)
    _sync_await(run_pulumi_func(build))


def dev_args(**changes: Any) -> TapStackArgs:
    """Valid settings shaped like dev, with ``changes`` applied."""
    values: dict[str, Any] = {
        "environment_suffix": "dev",
        "vpc_cidr": "10.20.0.0/16",
        "blue_image": "example/app:1",
        "green_image": "example/app:2",
    }
    values.update(changes)
    return TapStackArgs(**values)
