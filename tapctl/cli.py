"""The root of the command line: global options, command registration, and
the single place where failures become exit codes.

Command modules import their heavy dependencies (pulumi, boto3) inside the
command functions, so that ``tapctl --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tapctl import __version__, console
from tapctl.commands import plan, release, stack, verify
from tapctl.errors import ExitCode, Interrupted, TapctlError
from tapctl.options import GLOBALS


class _ErrorMappingGroup(TyperGroup):
    """Turns tapctl's exceptions into one message and a documented exit code."""

    # typer vendors its own click; its Context type is not public API.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TapctlError as error:
            _fail(ctx, error)
        except KeyboardInterrupt:
            _fail(ctx, Interrupted("interrupted"))
        except typer.Abort:  # Ctrl-C or end of input at a confirmation prompt
            console.get().err.print()  # the prompt's line never got its Enter
            _fail(ctx, Interrupted("cancelled at the prompt; nothing was changed"))
        except (typer.Exit, typer.TyperException):
            raise  # the framework's own control flow and usage errors
        except Exception as error:  # the outermost boundary: no tracebacks
            if GLOBALS.debug:
                raise
            _fail(
                ctx,
                TapctlError(
                    f"unexpected {type(error).__name__}: {error}",
                    hint="run again with --debug for the traceback",
                ),
            )


def _fail(ctx: Any, error: TapctlError) -> None:
    if GLOBALS.debug and not isinstance(error, Interrupted):
        console.get().err.print_exception()
    console.get().error(error)
    ctx.exit(int(error.exit_code))


app = typer.Typer(
    name="tapctl",
    cls=_ErrorMappingGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Plan, deploy, verify and roll back the TAP service on AWS.\n\n"
    "Exit codes: 0 success, 1 failed operation or check, 2 bad usage or "
    "config, 130 interrupted.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tapctl {__version__}")
        raise typer.Exit(int(ExitCode.OK))


@app.callback()
def root(
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            envvar="TAPCTL_PROJECT_DIR",
            file_okay=False,
            help="Pulumi project folder; default: nearest with a Pulumi.yaml.",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only results and errors.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More progress detail.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", envvar="NO_COLOR", help="Plain output.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print version."
        ),
    ] = False,
) -> None:
    GLOBALS.project_dir = project_dir
    GLOBALS.debug = debug
    console.configure(quiet=quiet, verbose=verbose, no_color=no_color)


app.command(name="plan")(plan.plan)
app.command(name="preview")(stack.preview)
app.command(name="up")(stack.up)
app.command(name="outputs")(stack.outputs)
app.command(name="history")(stack.history)
app.command(name="refresh")(stack.refresh)
app.command(name="destroy")(stack.destroy)
app.command(name="verify")(verify.verify)
app.command(name="deploy")(release.deploy)
app.command(name="switch")(release.switch)
app.command(name="rollback")(release.rollback)
app.command(name="status")(release.status)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # before or after a command runs: still quiet
        console.get().error(Interrupted("interrupted"))
        raise SystemExit(int(ExitCode.INTERRUPTED)) from None
