"""``tapctl deploy|switch|rollback|status``: blue/green releases.

Each command reads its options, calls one function of ``tapctl.release`` and
renders what comes back. Changing traffic asks first on a terminal; without
one it needs ``--yes``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tapctl import console
from tapctl.errors import UsageError
from tapctl.options import (
    Color,
    EnvOption,
    JsonOption,
    OutputsFileOption,
    StackOption,
    YesOption,
    current_project,
)

if TYPE_CHECKING:
    from tapctl.aws import Aws
    from tapctl.release import (
        Hooks,
        ReleaseEngine,
        ReleaseOutcome,
        ReleasePlan,
        ReleaseStatus,
        RollbackOutcome,
        StackRef,
    )


ImageOption = Annotated[
    str,
    typer.Option(
        "--image", help="Image to release, REGISTRY/REPO:TAG or REPO@sha256:DIGEST."
    ),
]
StepsOption = Annotated[
    str,
    typer.Option(
        "--steps", help="Traffic percentages for the new color, increasing to 100."
    ),
]
BakeOption = Annotated[
    float,
    typer.Option("--bake", help="Seconds to watch each step before the next."),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait for the new service to settle."),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print the plan of steps; change nothing. With --outputs-file it "
        "needs neither the Pulumi engine nor AWS.",
    ),
]
PlanOutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs-file",
        dir_okay=False,
        help="With --dry-run: plan from this flat JSON file of stack outputs "
        "(tapctl outputs --json --output-file) instead of asking the engine.",
    ),
]
ToOption = Annotated[
    Color | None,
    typer.Option("--to", help="Color to move traffic to; default: the other one."),
]
SkipCheckOption = Annotated[
    list[str] | None,
    typer.Option(
        "--skip-check",
        metavar="ID[,ID]",
        help="Leave these checks out of the pre-shift gate (e.g. http.health "
        "where the test listener is out of reach); said in a warning.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Roll back even to a color with no healthy target."),
]


def deploy(
    env: EnvOption,
    image: ImageOption,
    steps: StepsOption = "10,50,100",
    bake: BakeOption = 60.0,
    timeout: TimeoutOption = 600.0,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    outputs_file: PlanOutputsOption = None,
    skip_check: SkipCheckOption = None,
    stack: StackOption = None,
) -> None:
    """Release an image on the idle color and move traffic to it in steps.

    Sets the image, updates the stack, waits for the service, runs the verify
    checks through the test listener, then shifts traffic step by step while
    watching target health and the alarms. Any failed gate or Ctrl-C puts
    traffic back on the old color.
    """
    from tapctl.aws import Aws
    from tapctl.release import (
        DeployRequest,
        check_deploy_request,
        parse_steps,
        plan_deploy,
    )
    from tapctl.release import deploy as run_deploy

    request = check_deploy_request(
        DeployRequest(
            image, parse_steps(steps), bake, timeout, dry_run, _ids(skip_check)
        )
    )
    if dry_run:
        outputs = _plan_outputs(env, stack, outputs_file, "deploy")
        _render_dry_run(plan_deploy(outputs, _stack_ref(env, stack), request))
        return
    _refuse_outputs_file(outputs_file, "deploy")
    ref = _stack_ref(env, stack)
    outcome = run_deploy(_engine(env, stack), Aws(), ref, request, _hooks(yes))
    _render_release(outcome)


def switch(
    env: EnvOption,
    to: ToOption = None,
    steps: StepsOption = "10,50,100",
    bake: BakeOption = 60.0,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    outputs_file: PlanOutputsOption = None,
    skip_check: SkipCheckOption = None,
    stack: StackOption = None,
) -> None:
    """Move traffic between the two running colors in steps, no image change.

    A dry run reads no listener: without --to it plans the move away from the
    active color that the outputs record.
    """
    from tapctl.aws import Aws
    from tapctl.release import check_switch_options, parse_steps, plan_switch
    from tapctl.release import switch as run_switch

    color = to.value if to else None
    parsed = parse_steps(steps)
    skipped = _ids(skip_check)
    check_switch_options(parsed, bake, skipped)
    if dry_run:
        outputs = _plan_outputs(env, stack, outputs_file, "switch")
        ref = _stack_ref(env, stack)
        _render_dry_run(plan_switch(outputs, ref, to=color, steps=parsed, bake=bake))
        return
    _refuse_outputs_file(outputs_file, "switch")
    outcome = run_switch(
        _engine(env, stack),
        Aws(),
        _stack_ref(env, stack),
        to=color,
        steps=parsed,
        bake=bake,
        skip_checks=skipped,
        hooks=_hooks(yes),
    )
    _render_release(outcome)


def rollback(
    env: EnvOption,
    to: ToOption = None,
    force: ForceOption = False,
    outputs_file: OutputsFileOption = None,
    yes: YesOption = False,
    stack: StackOption = None,
) -> None:
    """Put all traffic back on the previous color at once, then record it.

    One listener change through the AWS API comes first; the stack config and
    a targeted update follow. If the engine cannot run, traffic stays restored
    and the command prints the drift and the command that closes it.
    """
    from tapctl.aws import Aws
    from tapctl.release import rollback as run_rollback

    aws = Aws()
    if outputs_file is not None:
        outputs = _file_outputs(env, outputs_file)
        open_engine: Callable[[], ReleaseEngine] = lambda: _engine(env, stack)  # noqa: E731
    else:
        engine = _engine(env, stack)
        outputs = _rollback_outputs(engine, aws, env)
        open_engine = lambda: engine  # noqa: E731
    config = current_project().load_config(env)
    outcome = run_rollback(
        aws,
        outputs,
        _stack_ref(env, stack),
        open_engine,
        to=to.value if to else None,
        force=force,
        idle_weight=config.get("tap:idleWeight"),
        config_active=config.get("tap:activeColor"),
        hooks=_hooks(yes),
    )
    _render_rollback(outcome)


def status(
    env: EnvOption,
    outputs_file: OutputsFileOption = None,
    as_json: JsonOption = False,
    stack: StackOption = None,
) -> None:
    """Live color, listener weights, images, tasks, target health and drift."""
    from tapctl.aws import Aws
    from tapctl.release import read_status

    outputs, idle_weight = _status_inputs(env, stack, outputs_file)
    report = read_status(
        Aws(), outputs, env=env, idle_weight=idle_weight, info=console.get().info
    )
    if as_json:
        console.get().json(report.to_json())
    else:
        _render_status(report)


# -- wiring --------------------------------------------------------------------


def _engine(env: str, stack: str | None) -> ReleaseEngine:
    from tapctl.engine import Engine

    return Engine(current_project(), env, stack=stack)


def _engine_outputs(engine: ReleaseEngine, doing: str, usage: str) -> dict[str, Any]:
    """Outputs from the engine; when it cannot give them, say how to do
    without it (``usage``: the command line's start, e.g. ``rollback``)."""
    from tapctl.errors import EngineError

    try:
        return dict(engine.outputs().values)
    except EngineError as error:
        raise EngineError(
            error.message,
            hint=f"{doing} without the engine: tapctl {usage} --env ENV "
            "--outputs-file FILE (written by tapctl outputs --json --output-file)",
        ) from error


def _rollback_outputs(engine: ReleaseEngine, aws: Aws, env: str) -> dict[str, Any]:
    """The engine's outputs, or, when the engine fails, the listener and the
    target groups found by the stack's names: the way back needs no engine."""
    from tapctl.errors import AwsError, EngineError
    from tapctl.release import find_traffic

    try:
        return dict(engine.outputs().values)
    except EngineError as error:
        console.get().warn(
            f"cannot read outputs from the engine ({error.message}); "
            "finding the production listener by the stack's names"
        )
    try:
        return dict(find_traffic(aws, current_project().environment_suffix(env)))
    except AwsError as error:
        raise AwsError(
            error.message,
            hint="roll back without the engine: tapctl rollback --env ENV "
            "--outputs-file FILE (written by tapctl outputs --json --output-file)",
        ) from error


def _ids(values: list[str] | None) -> tuple[str, ...]:
    """``--skip-check a,b --skip-check c`` as ``("a", "b", "c")``."""
    parts = (part.strip() for value in values or () for part in value.split(","))
    return tuple(part for part in parts if part)


def _file_outputs(env: str, path: Path) -> dict[str, Any]:
    """An outputs file, refused (exit 2) when it belongs to another environment."""
    from tapctl.outputs import load_for_environment

    project = current_project()
    project.config_path(env)  # an unknown environment is refused first
    return load_for_environment(path, env, project.environment_suffix(env))


def _plan_outputs(
    env: str, stack: str | None, outputs_file: Path | None, verb: str
) -> dict[str, Any]:
    """Outputs for a dry run: the file's, else the engine's."""
    if outputs_file is not None:
        return _file_outputs(env, outputs_file)
    return _engine_outputs(_engine(env, stack), f"plan a {verb}", f"{verb} --dry-run")


def _refuse_outputs_file(outputs_file: Path | None, verb: str) -> None:
    if outputs_file is not None:
        raise UsageError(
            f"--outputs-file is for --dry-run only: a real {verb} reads the "
            "outputs from the engine it updates; nothing was changed",
            hint=f"add --dry-run, or drop --outputs-file to run the {verb}",
        )


def _stack_ref(env: str, stack: str | None) -> StackRef:
    from tapctl.release import StackRef

    project = current_project()
    return StackRef(project.name, env, project.state_dir, stack)


def _status_inputs(
    env: str, stack: str | None, outputs_file: Path | None
) -> tuple[dict[str, Any], Any]:
    """Outputs and ``tap:idleWeight``: from the file and the environment's
    config file, or both from the engine."""
    if outputs_file is not None:
        outputs = _file_outputs(env, outputs_file)
        return outputs, current_project().load_config(env).get("tap:idleWeight")
    engine = _engine(env, stack)
    return dict(engine.outputs().values), engine.get_config("idleWeight")


def _hooks(yes: bool) -> Hooks:
    from tapctl.release import Hooks

    out = console.get()
    return Hooks(
        confirm=_confirmer(yes),
        info=out.info,
        warn=out.warn,
    )


def _confirmer(yes: bool) -> Callable[[str], bool]:
    def ask(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError(
                f"{question.rstrip('?')}: needs confirmation and stdin is not a "
                "terminal; nothing was changed",
                hint="pass --yes to confirm without a prompt",
            )
        return typer.confirm(question, default=False, err=True)

    return ask


# -- rendering -------------------------------------------------------------------


def _render_dry_run(plan: ReleasePlan) -> None:
    from tapctl.release import DRY_RUN_NOTE, ReleaseOutcome

    _render_release(ReleaseOutcome(plan, done=False, note=DRY_RUN_NOTE))


def _render_release(outcome: ReleaseOutcome) -> None:
    out = console.get()
    plan = outcome.plan
    if not outcome.done:
        out.table(
            f"{plan.kind} plan ({plan.env}: {plan.shift.old} -> {plan.shift.new})",
            ["#", "step"],
            list(enumerate(plan.steps, start=1)),
        )
        out.done(outcome.note)
        return
    image = f" with {plan.image}" if plan.image else ""
    out.result(
        f"{plan.env}: {plan.shift.new} is live{image} "
        f"(steps {','.join(map(str, plan.shift.steps))}) in {outcome.seconds:.1f}s"
    )


def _render_rollback(outcome: RollbackOutcome) -> None:
    out = console.get()
    if outcome.moved:
        out.result(
            f"{outcome.env}: all traffic on {outcome.color} ({outcome.after}; was "
            f"{outcome.before}) after {outcome.seconds_to_traffic:.2f}s"
        )
    else:
        out.result(
            f"{outcome.env}: already on {outcome.color} ({outcome.after}); "
            "the listener was not changed"
        )
    if outcome.drift is None:
        out.done(f"stack config records {outcome.color} as active")
        return
    out.warn(f"{outcome.drift}; reconcile with: {outcome.drift.command}")


def _render_status(report: ReleaseStatus) -> None:
    out = console.get()
    live = report.weights.live or "split evenly"
    out.table(
        f"{report.env}: live color {live} ({report.weights})",
        ["color", "weight", "image", "source", "tasks", "targets"],
        [
            (
                status.color,
                status.weight,
                status.image,
                status.image_source,
                _tasks(status.running, status.desired),
                str(status.targets),
            )
            for status in report.colors
        ],
    )
    if report.drift:
        for line in report.drift:
            out.warn(f"drift: {line}")
    else:
        out.done(f"listeners match the stack config (active {report.active_color})")


def _tasks(running: int | None, desired: int | None) -> str:
    if desired is None:
        return "service not found"
    return f"{running}/{desired} running"
