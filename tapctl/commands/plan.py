"""``tapctl plan``: what the program would build, checked, without credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapctl import console
from tapctl.errors import CheckFailed
from tapctl.options import EnvOption, JsonOption, current_project

if TYPE_CHECKING:
    from tapctl.planner import Plan


def plan(env: EnvOption, as_json: JsonOption = False) -> None:
    """Plan an environment offline and check it against the security rules.

    Runs the real program under Pulumi's mock runtime with Pulumi.ENV.yaml
    (no credentials, no engine), lists its resources and exports, and exits 1
    if a check fails.
    """
    from tapctl.planner import plan_environment

    out = console.get()
    project = current_project()
    project.config_path(env)  # an unknown environment fails before any work

    out.info(f"planning {project.name} for environment {env} (offline, mocked)")
    result = plan_environment(project, env)

    if as_json:
        out.json(result.to_json())
    else:
        _render(result)
    failed = [check for check in result.checks if not check.ok]
    if failed:
        names = ", ".join(check.id for check in failed)
        raise CheckFailed(f"{len(failed)} plan check(s) failed: {names}")
    count = len(result.program.resources)
    out.done(f"{env}: {count} resources planned, all {len(result.checks)} checks ok")


def _render(result: Plan) -> None:
    out = console.get()
    program = result.program
    out.table(
        f"Resources ({program.stack})",
        ["type", "name", "physical name"],
        [(r.type, r.name, r.physical_name or "") for r in program.resources],
    )
    out.mapping("Outputs", program.masked_outputs())
    out.table(
        "Checks",
        ["id", "status", "detail"],
        [(c.id, "ok" if c.ok else "fail", c.detail) for c in result.checks],
        status_column="status",
    )
