"""The exit codes of tapctl and the exceptions that map onto them.

Every failure the tool knows about is a ``TapctlError``: one line that says
what happened, optionally one that says what to do next. The command-line edge
(``tapctl.cli.main``) is the only place that turns them into exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes; scripts may rely on them."""

    OK = 0
    #: An operation failed or a check did not pass.
    FAILED = 1
    #: Bad usage or configuration: nothing was changed.
    USAGE = 2
    #: Interrupted by the user (Ctrl-C); any change in flight was undone or reported.
    INTERRUPTED = 130


class TapctlError(Exception):
    """A failure with a one-line message and an optional hint."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(TapctlError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """Stack configuration or an input file is missing or invalid."""

    def __init__(self, message: str, hint: str | None = None, key: str = "") -> None:
        super().__init__(message, hint)
        self.key = key


class CheckFailed(TapctlError):
    """One or more checks did not pass; their results were already printed."""


class AwsError(TapctlError):
    """An AWS API could not be reached or refused the request."""


class EngineError(TapctlError):
    """The Pulumi engine could not run or reported a failed operation."""


class Interrupted(TapctlError):
    """The user interrupted an operation."""

    exit_code = ExitCode.INTERRUPTED


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) as one space: a
    message from AWS, the engine or a file may span lines, and tapctl's
    messages, hints and check details are one line each."""
    return " ".join(text.split())
