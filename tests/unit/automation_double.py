"""An in-process double of Pulumi's Automation API for tapctl's engine.

It replaces ``tapctl.engine.open_stack`` (the engine's one seam) and hands out
a ``FakeStack`` that behaves like ``pulumi.automation.Stack`` for the calls
tapctl makes. It is built from the REAL pulumi.automation pieces so that a
wrong attribute or argument name fails a test instead of passing silently:

- every call's keyword arguments are bound against the real ``Stack`` method's
  signature (an argument the real API does not take raises ``TypeError``);
- events are real ``EngineEvent`` objects parsed by ``EngineEvent.from_json``
  from the JSON shape the engine writes to its event log;
- results are real ``PreviewResult``, ``UpResult``, ``RefreshResult``,
  ``DestroyResult``, ``UpdateSummary``, ``OutputValue`` and ``ConfigValue``;
- errors come from the real ``create_command_error`` given CLI-like output,
  so the error class is picked exactly as the Automation API picks it.

Events are replayed on the calling thread, before the scripted result or
error; the real API delivers them on a gRPC thread while the CLI runs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pulumi import automation as auto
from pulumi.automation import errors as auto_errors

PROJECT = "tap"
STARTED = datetime(2025, 5, 1, 12, 0, 0)


# -- building engine events the way the engine writes them --------------------


def urn(type_: str, name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


def _step(op: str, type_: str, name: str, stack: str, **extra: Any) -> dict[str, Any]:
    return {
        "op": op,
        "urn": urn(type_, name, stack),
        "type": type_,
        "provider": "urn:pulumi:dev::tap::pulumi:providers:aws::default_7_0_0::id",
        **extra,
    }


def _event(sequence: int, body: dict[str, Any]) -> auto.EngineEvent:
    return auto.EngineEvent.from_json(
        {"sequence": sequence, "timestamp": 1714564800 + sequence, **body}
    )


def pre(
    op: str,
    type_: str,
    name: str,
    *,
    planning: bool = False,
    stack: str = "dev",
    **step: Any,
) -> auto.EngineEvent:
    """A ResourcePreEvent; ``step`` takes engine JSON keys such as
    ``detailedDiff``, ``diffs``, ``old`` and ``new``."""
    metadata = _step(op, type_, name, stack, **step)
    return _event(1, {"resourcePreEvent": {"metadata": metadata, "planning": planning}})


def done(op: str, type_: str, name: str, *, stack: str = "dev") -> auto.EngineEvent:
    metadata = _step(op, type_, name, stack)
    return _event(2, {"resOutputsEvent": {"metadata": metadata}})


def failed(op: str, type_: str, name: str, *, stack: str = "dev") -> auto.EngineEvent:
    metadata = _step(op, type_, name, stack)
    return _event(
        3, {"resOpFailedEvent": {"metadata": metadata, "status": 1, "steps": 1}}
    )


def diagnostic(
    message: str, *, severity: str = "error", resource: str | None = None
) -> auto.EngineEvent:
    body: dict[str, Any] = {"message": message, "color": "raw", "severity": severity}
    if resource is not None:
        body["urn"] = resource
    return _event(4, {"diagnosticEvent": body})


def summary(changes: dict[str, int]) -> auto.EngineEvent:
    body = {
        "maybeCorrupt": False,
        "durationSeconds": 7,
        "resourceChanges": changes,
        "PolicyPacks": {},
    }
    return _event(5, {"summaryEvent": body})


def command_error(stderr: str, stdout: str = "", code: int = 255) -> auto.CommandError:
    """The error the Automation API raises for a CLI run with this output."""
    return auto_errors.create_command_error(auto.CommandResult(stdout, stderr, code))


def update_summary(
    kind: str = "update",
    result: str = "succeeded",
    version: int = 1,
    changes: dict[str, int] | None = None,
    message: str = "",
) -> auto.UpdateSummary:
    return auto.UpdateSummary(
        kind=kind,
        start_time=STARTED + timedelta(minutes=version),
        message=message,
        environment={"exec.kind": "auto.local"},
        config={"tap:activeColor": {"value": "blue", "secret": False}},
        result=result,
        end_time=STARTED + timedelta(minutes=version, seconds=75),
        version=version,
        resource_changes=changes,
    )


# -- the double -----------------------------------------------------------------


@dataclass
class Call:
    method: str
    kwargs: dict[str, Any]


@dataclass
class AutomationDouble:
    """Scripted replies for each stack method, and a record of every call."""

    stacks: set[str] = field(default_factory=set)
    events: dict[str, list[auto.EngineEvent]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    outputs: dict[str, auto.OutputValue] = field(default_factory=dict)
    config: dict[str, auto.ConfigValue] = field(default_factory=dict)
    history: list[auto.UpdateSummary] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=dict)
    cli_missing: bool = False
    opened: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def open_stack(
        self,
        work_dir: str,
        name: str,
        *,
        create: bool,
        env_vars: dict[str, str],
        secrets_provider: str | None,
    ) -> FakeStack:
        """Stands in for ``tapctl.engine.open_stack``."""
        if self.cli_missing:
            # What PulumiCommand raises when no `pulumi` binary is on PATH.
            raise FileNotFoundError(2, "No such file or directory", "pulumi")
        self.opened.append(
            {
                "work_dir": work_dir,
                "name": name,
                "create": create,
                "env_vars": dict(env_vars),
                "secrets_provider": secrets_provider,
            }
        )
        if name not in self.stacks:
            if not create:
                raise command_error(f"error: no stack named '{name}' found")
            self.stacks.add(name)
        return FakeStack(self, name)

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def call(self, method: str) -> Call:
        """The one call of ``method``; fails the test if there were others."""
        found = [call for call in self.calls if call.method == method]
        assert len(found) == 1, f"{method} called {len(found)} times: {self.methods()}"
        return found[0]


class FakeStack:
    """What the engine gets instead of ``pulumi.automation.Stack``."""

    def __init__(self, double: AutomationDouble, name: str) -> None:
        self.double = double
        self.name = name

    def _run(self, method: str, kwargs: dict[str, Any]) -> None:
        """Check the arguments against the real API, record, replay, fail."""
        inspect.signature(getattr(auto.Stack, method)).bind(self, **kwargs)
        self.double.calls.append(Call(method, kwargs))
        on_event = kwargs.get("on_event")
        for event in self.double.events.get(method, []):
            if on_event is not None:
                on_event(event)
        error = self.double.errors.get(method)
        if error is not None:
            raise error

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        self._run("preview", kwargs)
        found = [e.summary_event for e in self.double.events.get("preview", [])]
        summaries = [event for event in found if event is not None]
        if not summaries:
            raise RuntimeError("summary event never found")
        return auto.PreviewResult("", "", summaries[0].resource_changes)

    def up(self, **kwargs: Any) -> auto.UpResult:
        self._run("up", kwargs)
        record = update_summary("update", changes=self.double.changes)
        return auto.UpResult("", "", record, dict(self.double.outputs))

    def refresh(self, **kwargs: Any) -> auto.RefreshResult:
        self._run("refresh", kwargs)
        record = update_summary("refresh", changes=self.double.changes)
        return auto.RefreshResult("", "", record)

    def destroy(self, **kwargs: Any) -> auto.DestroyResult:
        self._run("destroy", kwargs)
        record = update_summary("destroy", changes=self.double.changes)
        return auto.DestroyResult("", "", record)

    def outputs(self) -> dict[str, auto.OutputValue]:
        self._run("outputs", {})
        return dict(self.double.outputs)

    def history(self, **kwargs: Any) -> list[auto.UpdateSummary]:
        self._run("history", kwargs)
        size = kwargs.get("page_size") or len(self.double.history)
        return list(self.double.history[:size])

    def get_config(self, key: str, **kwargs: Any) -> auto.ConfigValue:
        self._run("get_config", {"key": key, **kwargs})
        if key not in self.double.config:
            raise command_error(
                f"error: configuration key '{key}' not found for stack '{self.name}'"
            )
        return self.double.config[key]

    def set_all_config(
        self, config: dict[str, auto.ConfigValue], **kwargs: Any
    ) -> None:
        self._run("set_all_config", {"config": config, **kwargs})
        self.double.config.update(config)

    def cancel(self) -> None:
        self._run("cancel", {})
