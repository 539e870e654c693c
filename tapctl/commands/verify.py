"""``tapctl verify``: check a deployed environment's live resources."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tapctl import console
from tapctl.errors import CheckFailed, UsageError
from tapctl.options import (
    Color,
    EnvOption,
    JsonOption,
    OutputsFileOption,
    StackOption,
    current_project,
)

if TYPE_CHECKING:
    from tapctl.verification import Report


def verify(
    env: EnvOption,
    outputs_file: OutputsFileOption = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only", metavar="IDS", help="Run only these checks: ids, comma-separated."
        ),
    ] = None,
    skip: Annotated[
        str | None,
        typer.Option(
            "--skip",
            metavar="IDS",
            help="Leave out these checks: ids, comma-separated.",
        ),
    ] = None,
    color: Annotated[
        Color | None,
        typer.Option(
            "--color",
            help="Check this idle color through the test listener instead of "
            "the live color through the production listener.",
        ),
    ] = None,
    as_json: JsonOption = False,
    junit: Annotated[
        Path | None,
        typer.Option(
            "--junit",
            dir_okay=False,
            metavar="FILE",
            help="Also write JUnit XML to FILE.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.1,
            max=3600,
            help="Seconds each check may take.",
        ),
    ] = 10.0,
    stack: StackOption = None,
) -> None:
    """Check a deployed environment's live resources on AWS.

    Reads the stack's outputs (or --outputs-file), runs every check at once
    and prints one row per check. Exits 1 if a check failed or errored.
    Checks: alb.active, listener.weights, targets.healthy, ecs.steady,
    ecs.autoscaling, rds.secure, secret.present, s3.private,
    cloudfront.deployed, cloudtrail.logging, http.health.
    """
    from tapctl.aws import Aws
    from tapctl.verification import (
        check_writable,
        run_checks,
        select_checks,
        write_junit,
    )

    # Bad input is refused before the outputs are read or any check runs.
    only_ids, skip_ids = _ids(only), _ids(skip)
    select_checks(only_ids, skip_ids)
    if junit:
        check_writable(junit)
    outputs, secret_keys = _outputs(env, stack, outputs_file)
    chosen = color.value if color else None
    console.get().info(f"verifying {env} ({chosen or 'live'} color)")

    report = run_checks(
        outputs,
        Aws(),
        env=env,
        only=only_ids,
        skip=skip_ids,
        color=chosen,
        timeout=timeout,
    ).redacted(str(outputs[key]) for key in secret_keys if key in outputs)

    _render(report, as_json=as_json)
    if junit:
        write_junit(report, junit)
    if not report.ok:
        failed = [
            check.id for check in report.checks if check.status in ("fail", "error")
        ]
        raise CheckFailed(f"{env}: {len(failed)} check(s) failed: {', '.join(failed)}")


def _ids(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _outputs(
    env: str, stack: str | None, outputs_file: Path | None
) -> tuple[dict[str, Any], set[str]]:
    """Outputs and the names of secret ones; a file has no secret markers."""
    if outputs_file is not None:
        from tapctl.outputs import load_for_environment

        return load_for_environment(outputs_file, env, _expected_suffix(env)), set()
    return _outputs_from_engine(env, stack)


def _expected_suffix(env: str) -> str:
    """The suffix an outputs file for ``env`` must carry. In CI, verify's env
    may only label a file written elsewhere; such a label is its own suffix."""
    try:
        project = current_project()
    except UsageError:  # verify from outside a checkout: env is only a label
        return env
    return project.environment_suffix(env) if env in project.environments() else env


def _outputs_from_engine(
    env: str, stack: str | None = None
) -> tuple[dict[str, Any], set[str]]:
    from tapctl.engine import Engine

    result = Engine(current_project(), env, stack=stack).outputs()
    return dict(result.values), set(result.secret_keys)


def _render(report: Report, *, as_json: bool) -> None:
    out = console.get()
    if as_json:
        out.json(report.to_json())
        return
    out.table(
        f"verify {report.env}",
        ["id", "status", "resource", "detail", "time"],
        [
            (c.id, c.status, c.resource, c.detail, f"{c.seconds:.2f}s")
            for c in report.checks
        ],
        status_column="status",
    )
    out.result(
        f"{report.env}: {report.passed} passed, {report.failed} failed, "
        f"{report.skipped} skipped in {report.seconds:.1f}s",
        ok=report.ok,
    )
