"""The one boundary to Pulumi's Automation API.

Every call into ``pulumi.automation`` lives here; the rest of tapctl gets
plain Python values (``StackOutputs``, ``PreviewReport``, ``UpReport``,
``HistoryEntry``, ``EngineEvent``) and ``tapctl`` errors.

Stacks: one per environment, in a LocalWorkspace on the project folder. The
stack is named after the environment unless ``--stack`` gives a fully
qualified name; its last part must still be the environment, because the
workspace reads ``Pulumi.<last part>.yaml`` as the stack's config. ``preview``,
``up`` and ``set_config`` create the stack on first use; reading commands
(outputs, history, refresh, destroy, get_config) never create one.

Backend: when ``PULUMI_BACKEND_URL`` is set (an S3 bucket, Pulumi Cloud, ...)
it is used as is, together with ``PULUMI_SECRETS_PROVIDER`` or the passphrase
variables. When it is not set, the embedded default is a file backend in the
project's git-ignored ``.pulumi-state/`` folder, so a new user needs no
account. That backend encrypts secrets with a passphrase; if neither
``PULUMI_CONFIG_PASSPHRASE``, ``PULUMI_CONFIG_PASSPHRASE_FILE`` nor
``PULUMI_SECRETS_PROVIDER`` is set, tapctl uses an EMPTY passphrase for the
embedded backend only and says so in a warning. It never invents a non-empty
secret, and a remote backend never gets the empty default.

The import of ``pulumi.automation`` happens inside functions so that
``tapctl --help`` and modules that only need the error types stay light.

Tests replace ``open_stack`` (the single seam) with an in-process double.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tapctl.errors import (
    ConfigError,
    EngineError,
    Interrupted,
    TapctlError,
    UsageError,
)
from tapctl.project import CONFIG_NAMESPACE, Project

if TYPE_CHECKING:
    from pulumi import automation as auto

T = TypeVar("T")

INSTALL_HINT = (
    "install it with: curl -fsSL https://get.pulumi.com | sh "
    "(or see https://www.pulumi.com/docs/install/)"
)
PASSPHRASE_VARS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
#: Operations that leave a resource as it is.
UNCHANGED_OPS = frozenset({"same", "read", "refresh"})
#: Steps the engine emits around a replacement; the "replace" step stands for them.
_REPLACEMENT_STEPS = frozenset(
    {"create-replacement", "delete-replaced", "discard-replaced", "read-replacement"}
)
_STACK_TYPE = "pulumi:pulumi:Stack"


# -- errors ----------------------------------------------------------------


class CliMissing(EngineError):
    """The ``pulumi`` binary the Automation API drives is not on PATH."""


class StackLocked(EngineError):
    """Another update holds the stack's lock."""


class StackNotFound(EngineError):
    """The backend has no stack of that name."""


class BackendUnavailable(EngineError):
    """The state backend cannot be reached or refused the login."""


class UpdateFailed(EngineError):
    """The engine ran, but resource operations failed."""

    def __init__(
        self, message: str, hint: str | None = None, failures: Sequence[str] = ()
    ) -> None:
        super().__init__(message, hint)
        self.failures = list(failures)


class ProgramFailed(EngineError):
    """The Pulumi program itself raised before the engine could act."""


# -- plain values ------------------------------------------------------------


@dataclass(frozen=True)
class PropertyChange:
    """One changed property of a resource: path, kind of change, old and new."""

    path: str
    kind: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class EngineEvent:
    """An engine event reduced to what tapctl shows.

    ``kind`` is one of ``start`` (a resource step begins), ``done``,
    ``failed``, ``diagnostic`` or ``summary``.
    """

    kind: str
    urn: str = ""
    type: str = ""
    op: str = ""
    message: str = ""
    severity: str = ""
    planning: bool = False
    diffs: tuple[PropertyChange, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The resource's logical name: the last part of its URN."""
        return self.urn.rsplit("::", 1)[-1] if self.urn else ""


@dataclass(frozen=True)
class StackOutputs:
    """Stack outputs as plain values, with the keys the engine marks secret."""

    values: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ResourceChange:
    """A resource a preview would change."""

    urn: str
    type: str
    op: str
    diffs: tuple[PropertyChange, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "diffs": [vars(diff) for diff in self.diffs],
        }


@dataclass(frozen=True)
class PreviewReport:
    stack: str
    counts: dict[str, int]
    changes: list[ResourceChange]

    @property
    def pending(self) -> int:
        """How many resource operations would change something."""
        return sum(n for op, n in self.counts.items() if op not in UNCHANGED_OPS)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "counts": self.counts,
            "pending": self.pending,
            "changes": [change.to_json() for change in self.changes],
        }


@dataclass(frozen=True)
class OperationReport:
    """What a refresh or destroy did: change counts and how long it took."""

    stack: str
    kind: str
    summary: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class UpReport(OperationReport):
    outputs: StackOutputs = field(default_factory=lambda: StackOutputs({}))


@dataclass(frozen=True)
class HistoryEntry:
    version: int | None
    kind: str
    result: str
    started: datetime
    ended: datetime | None
    message: str
    changes: dict[str, int]

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.ended else None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "result": self.result,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "seconds": self.seconds,
            "message": self.message,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class Backend:
    """Where state lives and the environment the engine runs with."""

    url: str
    embedded: bool
    env_vars: dict[str, str]
    secrets_provider: str | None
    warnings: tuple[str, ...] = ()


# -- stack and backend selection -------------------------------------------


def stack_name(project: Project, env: str, stack: str | None = None) -> str:
    """The stack for ``env``: the env itself, or ``--stack`` if it fits the env."""
    if stack is None:
        return env
    parts = stack.split("/")
    if len(parts) > 3 or not all(parts):
        raise UsageError(
            f"--stack {stack!r} is not a stack name",
            hint="use NAME, ORG/NAME or ORG/PROJECT/NAME",
        )
    if len(parts) == 3 and parts[1] != project.name:
        raise UsageError(
            f"--stack {stack!r} names project {parts[1]!r}, "
            f"but this project is {project.name!r}"
        )
    if parts[-1] != env:
        raise UsageError(
            f"--stack {stack!r} does not match --env {env}: the stack's last part "
            "picks the Pulumi.<name>.yaml it is configured by",
            hint=f"use --stack ORG/{project.name}/{env}",
        )
    return stack


def backend_for(project: Project, environ: Mapping[str, str]) -> Backend:
    """The configured backend, or the embedded file backend of the project."""
    provider = environ.get("PULUMI_SECRETS_PROVIDER") or None
    configured = environ.get("PULUMI_BACKEND_URL")
    if configured:
        return Backend(_redacted(configured), False, {}, provider)

    url = project.state_dir.as_uri()
    env_vars = {"PULUMI_BACKEND_URL": url}
    warnings: tuple[str, ...] = ()
    if provider is None and not any(environ.get(name) for name in PASSPHRASE_VARS):
        # The file backend refuses to run without some passphrase; an empty one
        # keeps a first run account-free and is announced, never silent.
        env_vars["PULUMI_CONFIG_PASSPHRASE"] = ""
        warnings = (
            "no PULUMI_CONFIG_PASSPHRASE set: secrets in the local state "
            f"({project.state_dir.name}/) are encrypted with an empty passphrase",
        )
    return Backend(url, True, env_vars, provider, warnings)


def _redacted(url: str) -> str:
    """The URL without a password, so that it can be shown."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_stack(
    work_dir: str,
    name: str,
    *,
    create: bool,
    env_vars: Mapping[str, str],
    secrets_provider: str | None,
) -> auto.Stack:
    """The seam to the Automation API: a stack in a LocalWorkspace on work_dir.

    Tests replace this function with an in-process double.
    """
    from pulumi import automation as auto

    options = auto.LocalWorkspaceOptions(
        work_dir=work_dir, env_vars=dict(env_vars), secrets_provider=secrets_provider
    )
    if create:
        return auto.create_or_select_stack(name, work_dir=work_dir, opts=options)
    return auto.select_stack(name, work_dir=work_dir, opts=options)


# -- the engine --------------------------------------------------------------


class Engine:
    """One environment's stack, driven through the Automation API."""

    def __init__(self, project: Project, env: str, *, stack: str | None = None) -> None:
        project.config_path(env)  # an unknown environment fails before any work
        self.project = project
        self.env = env
        self.stack_name = stack_name(project, env, stack)
        self.backend = backend_for(project, os.environ)
        self.warnings = list(self.backend.warnings)
        self._stack: auto.Stack | None = None

    def open(self, *, create: bool = False) -> None:
        """Reach the CLI, the backend and the stack now, so that a missing CLI
        or stack fails before any progress is shown. ``create`` makes the stack
        on first use. Every other method opens the stack itself if needed."""
        with self._translated("open"):
            self._open(create=create)

    # -- reading ------------------------------------------------------------
    def outputs(self) -> StackOutputs:
        """The outputs of the last update, secret keys marked."""
        with self._translated("outputs"):
            raw = self._open(create=False).outputs()
        return _plain_outputs(raw)

    def get_config(self, key: str) -> str | None:
        """A stack config value (``activeColor`` reads ``tap:activeColor``)."""
        from pulumi import automation as auto

        with self._translated("config get"):
            stack = self._open(create=False)
            try:
                return stack.get_config(_qualified(key)).value
            except auto.CommandError as error:
                if "configuration key" in str(error) and "not found" in str(error):
                    return None
                raise

    def set_config(self, values: Mapping[str, str]) -> None:
        """Write ``tap:<key>`` values into Pulumi.<env>.yaml through the workspace."""
        from pulumi import automation as auto

        config = {
            _qualified(key): auto.ConfigValue(value=v) for key, v in values.items()
        }
        with self._translated("config set"):
            self._open(create=True).set_all_config(config)

    def history(self, limit: int) -> list[HistoryEntry]:
        """The newest ``limit`` operations on the stack, newest first."""
        with self._translated("history"):
            summaries = self._open(create=False).history(
                page_size=limit, show_secrets=False
            )
        return [_history_entry(summary) for summary in summaries[:limit]]

    # -- operations -----------------------------------------------------------
    def preview(
        self,
        *,
        diff: bool = False,
        on_event: Callable[[EngineEvent], None] | None = None,
    ) -> PreviewReport:
        """What an ``up`` would change, without changing anything."""
        recorder = _Recorder(on_event)
        result = self._operate(
            "preview",
            lambda stack: stack.preview(diff=diff or None, on_event=recorder),
            recorder,
            create=True,
        )
        return PreviewReport(
            stack=self.stack_name,
            counts=_counts(result.change_summary),
            changes=recorder.changes,
        )

    def up(
        self,
        *,
        targets: Sequence[str] | None = None,
        refresh: bool = False,
        on_event: Callable[[EngineEvent], None] | None = None,
    ) -> UpReport:
        """Create or update the stack's resources; returns the new outputs."""
        recorder = _Recorder(on_event)
        started = time.monotonic()
        result = self._operate(
            "up",
            lambda stack: stack.up(
                target=list(targets) if targets else None,
                refresh=refresh or None,
                on_event=recorder,
            ),
            recorder,
            create=True,
        )
        outputs = _plain_outputs(result.outputs)
        return UpReport(
            stack=self.stack_name,
            kind="update",
            summary=_counts(result.summary.resource_changes),
            seconds=time.monotonic() - started,
            outputs=outputs,
        )

    def refresh(
        self, *, on_event: Callable[[EngineEvent], None] | None = None
    ) -> OperationReport:
        """Adopt the cloud's actual state of the stack's resources into state."""
        return self._whole_stack("refresh", on_event)

    def destroy(
        self, *, on_event: Callable[[EngineEvent], None] | None = None
    ) -> OperationReport:
        """Delete every resource of the stack; history and config stay."""
        return self._whole_stack("destroy", on_event)

    def _whole_stack(
        self, kind: str, on_event: Callable[[EngineEvent], None] | None
    ) -> OperationReport:
        """A refresh or destroy: one engine call over every resource."""
        recorder = _Recorder(on_event)
        started = time.monotonic()
        result = self._operate(
            kind, lambda stack: getattr(stack, kind)(on_event=recorder), recorder
        )
        changes = _counts(result.summary.resource_changes)
        return OperationReport(
            self.stack_name, kind, changes, time.monotonic() - started
        )

    # -- plumbing -------------------------------------------------------------
    def _open(self, *, create: bool) -> auto.Stack:
        if self._stack is not None:
            return self._stack
        if self.backend.embedded:
            self.project.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._stack = open_stack(
                str(self.project.root),
                self.stack_name,
                create=create,
                env_vars=self.backend.env_vars,
                secrets_provider=self.backend.secrets_provider,
            )
        except FileNotFoundError as error:
            raise CliMissing(
                f"the Pulumi CLI is not on PATH; {INSTALL_HINT}"
            ) from error
        return self._stack

    def _operate(
        self,
        action: str,
        run: Callable[[auto.Stack], T],
        recorder: _Recorder,
        *,
        create: bool = False,
    ) -> T:
        """Run one engine operation; Ctrl-C cancels it through the stack.

        A preview holds no update to cancel, so it is only reported."""
        with self._translated(action, recorder):
            stack = self._open(create=create)
            try:
                return run(stack)
            except KeyboardInterrupt:
                if action == "preview":
                    message = f"preview of stack {self.stack_name} interrupted"
                    raise Interrupted(message) from None
                raise self._cancelled(stack, action) from None

    def _cancelled(self, stack: auto.Stack, action: str) -> Interrupted:
        from pulumi import automation as auto

        try:
            stack.cancel()
        except auto.CommandError:
            return Interrupted(
                f"{action} of stack {self.stack_name} interrupted; "
                "cancelling it through the backend failed",
                hint=f"if the stack stays locked: {self._pulumi('cancel')}",
            )
        return Interrupted(
            f"{action} of stack {self.stack_name} interrupted and cancelled",
            hint=f"resources may be half-changed; run: tapctl refresh --env {self.env}",
        )

    def _pulumi(self, command: str) -> str:
        """A pulumi CLI command line that reaches this stack's backend."""
        prefix = (
            f"PULUMI_BACKEND_URL={self.backend.url} " if self.backend.embedded else ""
        )
        return f"{prefix}pulumi {command} --stack {self.stack_name}"

    @contextmanager
    def _translated(
        self, action: str, recorder: _Recorder | None = None
    ) -> Iterator[None]:
        """Turn Automation API errors into tapctl's one-line errors."""
        from pulumi import automation as auto

        try:
            yield
        except auto.ConcurrentUpdateError as error:
            raise self._locked(str(error)) from error
        except auto.StackNotFoundError as error:
            raise StackNotFound(
                f"stack {self.stack_name} not found in backend {self.backend.url}",
                hint=f"create it with: tapctl up --env {self.env}, or set "
                "PULUMI_BACKEND_URL to the backend that holds it",
            ) from error
        except auto.CommandError as error:
            raise self._failed(action, error, recorder) from error
        except auto.InvalidVersionError as error:
            raise EngineError(
                f"unsupported Pulumi CLI: {error}", hint=INSTALL_HINT
            ) from error

    def _locked(self, text: str) -> StackLocked:
        holder = _LOCK_HOLDER.search(text)
        by = ""
        if holder:
            who, pid, when = holder["who"], holder["pid"], holder["when"]
            by = f" (held by {who}, pid {pid}, since {when})"
        return StackLocked(
            f"stack {self.stack_name} is locked by another update{by}",
            hint="wait for it to finish; if it died, cancel it with: "
            + self._pulumi("cancel"),
        )

    def _failed(
        self, action: str, error: Exception, recorder: _Recorder | None
    ) -> TapctlError:
        from pulumi import automation as auto

        diagnostics = recorder.error_text() if recorder else ""
        text = f"{error}\n{diagnostics}"
        known = _config_error(text, self.env) or self._backend_error(text)
        if known is not None:
            return known
        if recorder and recorder.failures():
            failures = recorder.failures()
            return UpdateFailed(
                f"{action} of stack {self.stack_name} failed: " + "; ".join(failures),
                hint=f"fix the cause and run again; tapctl history --env {self.env} "
                "records the attempt",
                failures=failures,
            )
        general = recorder.general_error() if recorder else ""
        reason = general or _error_line(str(error))
        if isinstance(error, auto.RuntimeError | auto.CompilationError):
            return ProgramFailed(
                f"the Pulumi program failed during {action}: "
                + (_raised(text) or reason),
                hint=f"run tapctl plan --env {self.env} to reproduce it offline",
            )
        return EngineError(f"{action} of stack {self.stack_name} failed: {reason}")

    def _backend_error(self, text: str) -> EngineError | None:
        if not any(marker in text for marker in _BACKEND_MARKERS):
            return None
        return BackendUnavailable(
            f"cannot use the Pulumi backend {self.backend.url}: {_error_line(text)}",
            hint="check PULUMI_BACKEND_URL and its credentials (or run pulumi login)",
        )


# -- event handling ------------------------------------------------------------


class _Recorder:
    """Receives the engine's events: keeps what errors and reports need, and
    forwards a plain ``EngineEvent`` to the caller's callback."""

    def __init__(self, forward: Callable[[EngineEvent], None] | None) -> None:
        self.forward = forward
        self.changes: list[ResourceChange] = []
        self.failed: dict[str, str] = {}  # urn -> resource type
        self.messages: dict[str, list[str]] = {}  # urn ("" for none) -> errors

    def __call__(self, raw: auto.EngineEvent) -> None:
        event = plain_event(raw)
        if event is None:
            return
        self._record(event)
        if self.forward is not None:
            self.forward(event)

    def _record(self, event: EngineEvent) -> None:
        if event.kind == "start" and event.planning and _is_change(event.op):
            self.changes.append(
                ResourceChange(event.urn, event.type, event.op, event.diffs)
            )
        elif event.kind == "failed":
            self.failed[event.urn] = event.type
        elif event.kind == "diagnostic" and event.severity == "error":
            self.messages.setdefault(event.urn, []).append(event.message)

    def failures(self) -> list[str]:
        """``name (type): provider message`` for each failed resource."""
        failed = dict(self.failed)
        for urn in self.messages:
            if urn and not _is_stack(urn):
                failed.setdefault(urn, _type_of(urn))
        found = []
        for urn, kind in failed.items():
            said = [_error_line(text) for text in self.messages.get(urn, [])]
            detail = f": {' / '.join(said)}" if said else ""
            found.append(f"{urn.rsplit('::', 1)[-1]} ({kind}){detail}")
        return found

    def general_error(self) -> str:
        """The first error the engine reported outside any single resource."""
        for urn, texts in self.messages.items():
            if not urn or _is_stack(urn):
                return _error_line(texts[0])
        return ""

    def error_text(self) -> str:
        return "\n".join(text for texts in self.messages.values() for text in texts)


def plain_event(raw: auto.EngineEvent) -> EngineEvent | None:
    """Reduce an Automation API event to tapctl's ``EngineEvent``."""
    if raw.resource_pre_event is not None:
        pre = raw.resource_pre_event
        return _step_event("start", pre.metadata, planning=bool(pre.planning))
    if raw.res_outputs_event is not None:
        done = raw.res_outputs_event
        return _step_event("done", done.metadata, planning=bool(done.planning))
    if raw.res_op_failed_event is not None:
        return _step_event("failed", raw.res_op_failed_event.metadata, planning=False)
    if raw.diagnostic_event is not None:
        diag = raw.diagnostic_event
        return EngineEvent(
            kind="diagnostic",
            urn=diag.urn or "",
            message=_clean(diag.message),
            severity=diag.severity,
        )
    if raw.summary_event is not None:
        return EngineEvent(
            kind="summary", counts=_counts(raw.summary_event.resource_changes)
        )
    return None


def _step_event(
    kind: str, step: auto.StepEventMetadata, *, planning: bool
) -> EngineEvent:
    op = _op_name(step.op)
    return EngineEvent(
        kind=kind,
        urn=step.urn,
        type=step.type,
        op=op,
        planning=planning,
        diffs=_property_changes(step) if _is_change(op) else (),
    )


def _property_changes(step: auto.StepEventMetadata) -> tuple[PropertyChange, ...]:
    old = (step.old.inputs if step.old else None) or {}
    new = (step.new.inputs if step.new else None) or {}
    detailed = step.detailed_diff or {}
    paths = list(detailed) or list(step.diffs or [])
    changes = []
    for path in paths:
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        kind = _op_name(detailed[path].diff_kind) if path in detailed else "update"
        changes.append(PropertyChange(path, kind, old.get(top), new.get(top)))
    return tuple(changes)


def _is_change(op: str) -> bool:
    return op not in UNCHANGED_OPS and op not in _REPLACEMENT_STEPS


def _op_name(op: Any) -> str:
    return str(op.value) if isinstance(op, Enum) else str(op)


def _counts(changes: Mapping[Any, int] | None) -> dict[str, int]:
    return {_op_name(op): int(count) for op, count in (changes or {}).items()}


def _history_entry(summary: auto.UpdateSummary) -> HistoryEntry:
    return HistoryEntry(
        version=summary.version,
        kind=summary.kind,
        result=summary.result,
        started=summary.start_time,
        ended=summary.end_time,
        message=summary.message,
        changes=_counts(summary.resource_changes),
    )


def _is_stack(urn: str) -> bool:
    return f"::{_STACK_TYPE}::" in urn


def _type_of(urn: str) -> str:
    """The resource type in a URN (``urn:pulumi:STACK::PROJECT::TYPE::NAME``)."""
    qualified = urn.split("::")[-2] if urn.count("::") >= 3 else ""
    return qualified.rsplit("$", 1)[-1]


def _qualified(key: str) -> str:
    return key if ":" in key else f"{CONFIG_NAMESPACE}:{key}"


# -- reading the engine's error text -------------------------------------------

_LOCK_HOLDER = re.compile(
    r"created by (?P<who>\S+) \(pid (?P<pid>\d+)\) at (?P<when>\S+)"
)
_CONFIG_MISSING = re.compile(r"Missing required configuration variable '([^']+)'")
_CONFIG_INVALID = re.compile(
    r"Configuration '([^']+)' value '([^']*)' is not a valid ([\w ]+)"
)
_PASSPHRASE = re.compile(r"incorrect passphrase|passphrase must be set", re.IGNORECASE)
_BACKEND_MARKERS = (
    "NoSuchBucket",
    "PULUMI_ACCESS_TOKEN must be set",
    "problem logging in",
    "could not log in",
    "unable to open bucket",
    "failed to create backend",
)
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")
_COLOR_CODES = re.compile(r"<\{%[^%]*%\}>|\x1b\[[0-9;]*m")
_GENERIC_ERRORS = (
    "update failed",
    "preview failed",
    "refresh failed",
    "destroy failed",
)


def _config_error(text: str, env: str) -> ConfigError | None:
    if match := _CONFIG_MISSING.search(text):
        key = match[1]
        return ConfigError(
            f"stack config {key} is missing",
            hint=f"add {key} to Pulumi.{env}.yaml",
            key=key,
        )
    if match := _CONFIG_INVALID.search(text):
        key, value, kind = match[1], match[2], match[3].strip()
        return ConfigError(
            f"stack config {key}={value!r} is not a valid {kind}",
            hint=f"fix {key} in Pulumi.{env}.yaml",
            key=key,
        )
    if _PASSPHRASE.search(text):
        return ConfigError(
            "the stack's secrets passphrase is missing or wrong",
            hint="set PULUMI_CONFIG_PASSPHRASE (or _FILE) to the stack's passphrase",
            key="PULUMI_CONFIG_PASSPHRASE",
        )
    return None


def _raised(text: str) -> str:
    """The exception line closing a Python traceback in the program's output."""
    _, found, after = text.partition("unhandled exception:")
    lines = [line.strip() for line in after.splitlines()] if found else []
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return _shorten(line)
    return ""


def _clean(message: str) -> str:
    return _COLOR_CODES.sub("", message).strip()


def _error_line(text: str) -> str:
    """The most telling line of an engine message, shortened to fit one line."""
    lines = [line.strip() for line in _clean(text).splitlines() if line.strip()]
    for line in lines:
        reason = line.split("error:", 1)[1].strip() if "error:" in line else ""
        if reason and not reason.startswith(_GENERIC_ERRORS):
            return _shorten(reason)
    for line in lines:
        if not line.startswith(("code:", "stdout:", "stderr:")):
            return _shorten(line)
    return "no error message"


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain_outputs(raw: Mapping[str, Any]) -> StackOutputs:
    """The engine's output map as plain values, secret keys marked."""
    return StackOutputs(
        values={key: item.value for key, item in raw.items()},
        secret_keys={key for key, item in raw.items() if item.secret},
    )
