"""Options shared by several commands, defined once.

Commands annotate their parameters with these types instead of repeating
``typer.Option(...)`` calls. The root callback records the global options
(project folder, debug) here for the commands to read.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tapctl.project import Project, check_env_name, find_project


class Color(StrEnum):
    """The two colors of a blue/green release, as a choice on the command line."""

    blue = "blue"
    green = "green"


EnvOption = Annotated[
    str,
    typer.Option(
        "--env",
        "-e",
        envvar="TAPCTL_ENV",
        show_envvar=True,
        callback=check_env_name,
        help="Environment: any Pulumi.<env>.yaml in the project.",
    ),
]
StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        help="Fully qualified stack name (org/project/stack); default: the env.",
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of tables.")
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
]
OutputsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs-file",
        dir_okay=False,
        help="Read stack outputs from this flat JSON file instead of the engine.",
    ),
]


class _Globals:
    project_dir: Path | None = None
    debug: bool = False


GLOBALS = _Globals()


def current_project() -> Project:
    return find_project(GLOBALS.project_dir)
