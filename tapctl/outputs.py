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
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read outputs file {path}: {error.strerror or error}",
            hint="write one with: tapctl outputs --env ENV --json --output-file FILE",
        ) from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"outputs file {path} is not valid JSON (line {error.lineno}: {error.msg})",
            hint="write one with: tapctl outputs --env ENV --json --output-file FILE",
        ) from error
    if not isinstance(document, dict):
        raise ConfigError(f"outputs file {path} must hold a JSON object of outputs")
    return document


def require(outputs: Mapping[str, Any], keys: Iterable[str], *, purpose: str) -> None:
    missing = [key for key in keys if outputs.get(key) in (None, "")]
    if missing:
        raise ConfigError(
            f"{purpose} needs output(s) missing here: {', '.join(missing)}",
            hint="deploy the stack first, or use an outputs file with those keys",
            key=missing[0],
        )


def other_color(color: str) -> str:
    if color not in COLORS:
        raise ConfigError(f"unknown color {color!r}; use blue or green", key="color")
    return "green" if color == "blue" else "blue"
