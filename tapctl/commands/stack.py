"""``tapctl preview|up|outputs|history|refresh|destroy``: the stack's life
cycle through the engine (``tapctl.engine``).

Commands that change infrastructure ask first on a terminal; without one they
need ``--yes``. Protected environments (prod) ask for their name to be typed,
and ``destroy`` refuses them unless ``--force`` is given too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tapctl import console
from tapctl.errors import CheckFailed, TapctlError, UsageError
from tapctl.options import (
    EnvOption,
    JsonOption,
    StackOption,
    YesOption,
    current_project,
)

if TYPE_CHECKING:
    from tapctl.engine import Engine, OperationReport, PreviewReport, StackOutputs

#: Changing these asks for the environment's name; destroying them needs --force.
PROTECTED_ENVS = frozenset({"prod", "production"})
#: The operations a preview always reports, in this order, even at zero.
_PLANNED_OPS = ("create", "update", "replace", "delete", "same")
_PAST = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    "same": "unchanged",
}

DiffOption = Annotated[
    bool, typer.Option("--diff", help="Show the property diffs of changed resources.")
]
ExpectNoChangesOption = Annotated[
    bool,
    typer.Option(
        "--expect-no-changes",
        help="Exit 1 if anything would change (a drift check for CI).",
    ),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target", metavar="URN", help="Update only this resource; repeatable."
    ),
]
RefreshOption = Annotated[
    bool, typer.Option("--refresh", help="Refresh state from the cloud first.")
]
ShowSecretsOption = Annotated[
    bool, typer.Option("--show-secrets", help="Show secret outputs in clear.")
]
OutputFileOption = Annotated[
    Path | None,
    typer.Option(
        "--output-file",
        dir_okay=False,
        help="Also write the outputs as a flat JSON object (what verify "
        "--outputs-file reads) to this file.",
    ),
]
LimitOption = Annotated[
    int, typer.Option("--limit", min=1, help="How many operations to list.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Allow destroying a protected environment.")
]


def preview(
    env: EnvOption,
    stack: StackOption = None,
    diff: DiffOption = False,
    as_json: JsonOption = False,
    expect_no_changes: ExpectNoChangesOption = False,
) -> None:
    """Show what `up` would change in an environment, changing nothing.

    Lists the planned operations with counts and the resources they touch;
    --expect-no-changes exits 1 when anything would change.
    """
    out = console.get()
    engine = _engine(env, stack, create=True)

    out.info(f"previewing {env} (stack {engine.stack_name})")
    report = engine.preview(diff=diff)

    if as_json:
        out.json(report.to_json())
    else:
        _render_preview(report, diff=diff)
    if expect_no_changes and report.pending:
        raise CheckFailed(f"{env}: {report.pending} change(s) pending; expected none")
    out.done(f"{env}: {report.pending} change(s) pending")


def up(
    env: EnvOption,
    stack: StackOption = None,
    yes: YesOption = False,
    target: TargetOption = None,
    refresh: RefreshOption = False,
) -> None:
    """Create or update an environment's resources, then print its outputs.

    Progress streams on stderr. Asks for confirmation on a terminal (prod:
    type its name); without a terminal --yes is required.
    """
    from tapctl import progress
    from tapctl.release import stack_update_lock

    out = console.get()
    engine = _engine(env, stack, create=True, confirm="update", yes=yes)

    title = f"up {env}"
    project = engine.project
    # An update in the middle of a release would put the weights back.
    with (
        stack_update_lock(project.name, env, project.state_dir, stack),
        progress.follow(out.err, title, enabled=not out.quiet) as view,
    ):
        report = engine.up(targets=target, refresh=refresh, on_event=view.handle)

    _render_outputs(report.outputs, f"Outputs ({engine.stack_name})", show=False)
    out.done(
        f"updated {env} (stack {engine.stack_name}): {_summary(report.summary)} "
        f"in {progress.clock(report.seconds)}"
    )


def outputs(
    env: EnvOption,
    stack: StackOption = None,
    as_json: JsonOption = False,
    show_secrets: ShowSecretsOption = False,
    output_file: OutputFileOption = None,
) -> None:
    """Print the stack outputs; secret outputs stay masked unless asked.

    --json prints one flat JSON object; --output-file also writes it to a file.
    """
    out = console.get()
    engine = _engine(env, stack)

    found = engine.outputs()
    shown = console.mask_secrets(found.values, found.secret_keys, show=show_secrets)

    if not shown:
        out.warn(f"stack {engine.stack_name} has no outputs; deploy it with tapctl up")
    if output_file is not None:
        private = show_secrets and bool(found.secret_keys)
        _write_json(output_file, shown, private=private)
        out.done(f"wrote {len(shown)} output(s) of {env} to {output_file}")
    if as_json:
        out.json(shown)
    else:
        out.mapping(f"Outputs ({engine.stack_name})", shown)


def history(
    env: EnvOption,
    stack: StackOption = None,
    limit: LimitOption = 10,
    as_json: JsonOption = False,
) -> None:
    """List the stack's most recent operations, newest first."""
    from tapctl import progress

    out = console.get()
    engine = _engine(env, stack)

    entries = engine.history(limit)

    if as_json:
        out.json([entry.to_json() for entry in entries])
        return
    rows = [
        (
            entry.version,
            entry.kind,
            entry.result,
            entry.started.isoformat(timespec="seconds"),
            "" if entry.seconds is None else progress.clock(entry.seconds),
            _summary(entry.changes),
            entry.message,
        )
        for entry in entries
    ]
    columns = ["version", "kind", "result", "started", "took", "changes", "message"]
    out.table(f"History ({engine.stack_name})", columns, rows)


def refresh(env: EnvOption, stack: StackOption = None, yes: YesOption = False) -> None:
    """Adopt the cloud's actual state of the stack's resources into its state."""
    engine = _engine(env, stack, confirm="refresh", yes=yes)
    _whole_stack(engine, engine.refresh, "refresh", "refreshed")


def destroy(
    env: EnvOption,
    stack: StackOption = None,
    yes: YesOption = False,
    force: ForceOption = False,
) -> None:
    """Delete every resource of an environment; its history and config stay.

    Protected environments (prod) are refused unless --force is given too.
    """
    if env in PROTECTED_ENVS and not force:
        raise UsageError(
            f"refusing to destroy {env}: it is a protected environment",
            hint="add --force if you really mean to delete all of it",
        )
    engine = _engine(env, stack, confirm="destroy", yes=yes)
    _whole_stack(engine, engine.destroy, "destroy", "destroyed")


# -- helpers ---------------------------------------------------------------


def _whole_stack(
    engine: Engine,
    operation: Callable[..., OperationReport],
    kind: str,
    past: str,
) -> None:
    """A refresh or destroy with its progress view and closing line."""
    from tapctl import progress

    out = console.get()
    with progress.follow(
        out.err, f"{kind} {engine.env}", enabled=not out.quiet
    ) as view:
        report = operation(on_event=view.handle)

    out.done(
        f"{past} {engine.env} (stack {engine.stack_name}): "
        f"{_summary(report.summary)} in {progress.clock(report.seconds)}"
    )


def _engine(
    env: str,
    stack: str | None,
    *,
    create: bool = False,
    confirm: str = "",
    yes: bool = False,
) -> Engine:
    """The engine for ``env`` with its stack opened (created if asked), after
    the user confirmed ``confirm`` if that action needs it."""
    from tapctl.engine import Engine

    engine = Engine(current_project(), env, stack=stack)
    if confirm:
        _confirm(confirm, engine, yes)
    engine.open(create=create)
    for warning in engine.warnings:
        console.get().warn(warning)
    return engine


def _is_interactive() -> bool:
    """Whether a person can answer a prompt; tests replace this."""
    return sys.stdin.isatty()


def _confirm(action: str, engine: Engine, yes: bool) -> None:
    """Ask before changing infrastructure, unless --yes was given."""
    if yes:
        return
    what = f"{action} {engine.env} (stack {engine.stack_name})"
    if not _is_interactive():
        raise UsageError(
            f"{what} needs confirmation and stdin is not a terminal",
            hint="pass --yes to confirm without a prompt",
        )
    if engine.env in PROTECTED_ENVS:
        typed = typer.prompt(
            f"{what}: type the environment name to go on",
            default="",
            show_default=False,
            err=True,
        )
        confirmed = typed.strip() == engine.env
    else:
        confirmed = typer.confirm(f"{what}?", default=False, err=True)
    if not confirmed:
        raise TapctlError(f"{what} not confirmed; nothing was changed")


def _render_preview(report: PreviewReport, *, diff: bool) -> None:
    out = console.get()
    ops = list(_PLANNED_OPS) + sorted(set(report.counts) - set(_PLANNED_OPS))
    out.table(
        f"Operations ({report.stack})",
        ["operation", "count"],
        [(op, report.counts.get(op, 0)) for op in ops],
    )
    if report.changes:
        out.table(
            "Changed resources",
            ["operation", "type", "name"],
            [(change.op, change.type, change.name) for change in report.changes],
        )
    if diff:
        rows = [
            (change.name, item.path, item.kind, _short(item.old), _short(item.new))
            for change in report.changes
            for item in change.diffs
        ]
        out.table(
            "Property diffs", ["resource", "property", "change", "old", "new"], rows
        )


def _render_outputs(found: StackOutputs, title: str, *, show: bool) -> None:
    shown = console.mask_secrets(found.values, found.secret_keys, show=show)
    console.get().mapping(title, shown)


def _summary(counts: Mapping[str, int]) -> str:
    order = {op: index for index, op in enumerate(_PLANNED_OPS)}
    ops = sorted(counts, key=lambda op: (order.get(op, len(order) - 1), op))
    parts = [f"{counts[op]} {_PAST.get(op, op)}" for op in ops if counts[op]]
    return ", ".join(parts) or "no changes"


def _short(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _write_json(path: Path, document: Mapping[str, Any], *, private: bool) -> None:
    """Write the flat outputs object; a file holding clear secrets is owner-only."""
    text = json.dumps(document, indent=2, default=str) + "\n"
    mode = 0o600 if private else 0o644
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        if private:
            os.fchmod(handle, mode)  # an existing file keeps its mode otherwise
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        raise UsageError(
            f"cannot write outputs file {path}: {error.strerror or error}"
        ) from error
