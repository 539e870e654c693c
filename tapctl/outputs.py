"""Stack outputs as plain values: the export keys, reading them from a flat
JSON file (what ``tapctl outputs --json`` writes), and requiring keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tapctl.errors import ConfigError

#: The stack's exports; later stages (verify, release, CI) rely on these keys.
EXPORT_KEYS = (
    "environment_suffix",
    "vpc_id",
    "alb_arn",
    "alb_dns_name",
    "prod_listener_arn",
    "test_listener_arn",
    "blue_target_group_arn",
    "green_target_group_arn",
    "ecs_cluster_name",
    "ecs_cluster_arn",
    "blue_service_name",
    "green_service_name",
    "active_color",
    "blue_image",
    "green_image",
    "rds_endpoint",
    "rds_port",
    "db_secret_arn",
    "static_bucket_name",
    "cloudfront_domain_name",
    "cloudfront_distribution_id",
    "cloudtrail_arn",
    "cloudtrail_bucket_name",
    "log_group_name",
    "alarm_names",
)

COLORS = ("blue", "green")

#: What a secret value looks like in any output.
MASK = "[secret]"


def load_outputs_file(path: Path) -> dict[str, Any]:
    """A flat JSON object of stack outputs."""
    hint = "write one with: tapctl outputs --env ENV --json --output-file FILE"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"cannot read outputs file {path}: {reason}", hint) from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"outputs file {path} is not UTF-8 text", hint) from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}: {error.msg}"
        raise ConfigError(
            f"outputs file {path} is not valid JSON ({where})", hint
        ) from error
    except RecursionError as error:
        raise ConfigError(f"outputs file {path} is nested too deeply", hint) from error
    if not isinstance(document, dict):
        raise ConfigError(
            f"outputs file {path} must hold a JSON object of outputs", hint
        )
    return document


def load_for_environment(path: Path, env: str, expected_suffix: str) -> dict[str, Any]:
    """An outputs file, refused when it was written for another environment.

    Acting on one environment with another's outputs would move the wrong
    listener's traffic, so a file whose ``environment_suffix`` differs from
    the environment's is a usage error before any AWS call.
    """
    outputs = load_outputs_file(path)
    found = outputs.get("environment_suffix")
    if not isinstance(found, str) or not found:
        raise ConfigError(
            f"outputs file {path} has no environment_suffix, so it cannot be "
            f"matched to {env}",
            hint="write it with: tapctl outputs --env ENV --json --output-file FILE",
            key="environment_suffix",
        )
    if found != expected_suffix:
        raise ConfigError(
            f"outputs file {path} is for environment suffix {found!r}, "
            f"not {expected_suffix!r} ({env})",
            hint=f"pass the outputs of {env}, or --env for the file's environment",
            key="environment_suffix",
        )
    return outputs


def require(outputs: Mapping[str, Any], keys: Iterable[str], *, purpose: str) -> None:
    """Each key present and of the type the stack exports (exit 2 otherwise)."""
    keys = list(keys)
    missing = [key for key in keys if outputs.get(key) in (None, "", [])]
    if missing:
        raise ConfigError(
            f"{purpose} needs output(s) missing here: {', '.join(missing)}",
            hint="deploy the stack first, or use an outputs file with those keys",
            key=missing[0],
        )
    for key in keys:
        problem = _type_problem(key, outputs[key])
        if problem:
            raise ConfigError(
                f"output {key} {problem}, got {outputs[key]!r:.60}",
                hint="regenerate the file with: tapctl outputs --json --output-file",
                key=key,
            )


def _type_problem(key: str, value: Any) -> str | None:
    if key == "alarm_names":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of alarm names"
    if key == "rds_port":
        ok = isinstance(value, int) and not isinstance(value, bool)
        ok = ok or (isinstance(value, str) and value.isascii() and value.isdigit())
        return None if ok else "must be a port number"
    return None if isinstance(value, str) else "must be a string"


def other_color(color: str) -> str:
    if color not in COLORS:
        raise ConfigError(f"unknown color {color!r}; use blue or green", key="color")
    return "green" if color == "blue" else "blue"
