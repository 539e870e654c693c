"""Outputs files: read strictly, matched to the environment they are used for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tapctl.errors import ConfigError
from tapctl.outputs import load_for_environment, require


def _file(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    return path


def test_the_environments_own_file_is_accepted(tmp_path: Path) -> None:
    path = _file(tmp_path, {"environment_suffix": "dev", "alb_arn": "arn:x"})

    assert load_for_environment(path, "dev", "dev")["alb_arn"] == "arn:x"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"environment_suffix": "prod"}, "is for environment suffix 'prod', not 'dev'"),
        ({"alb_arn": "arn:x"}, "has no environment_suffix"),
        ({"environment_suffix": None}, "has no environment_suffix"),
        ({"environment_suffix": 7}, "has no environment_suffix"),
    ],
)
def test_a_file_that_cannot_be_shown_to_be_this_environments_is_refused(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_for_environment(_file(tmp_path, document), "dev", "dev")

    assert refused.value.key == "environment_suffix"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("alarm_names", "tap-dev-5xx", "must be a list of alarm names"),
        ("alarm_names", ["ok", 3], "must be a list of alarm names"),
        ("rds_port", "54x", "must be a port number"),
        ("rds_port", True, "must be a port number"),
        ("alb_arn", 12345, "must be a string"),
    ],
)
def test_outputs_of_the_wrong_type_name_the_key(
    key: str, value: Any, problem: str
) -> None:
    with pytest.raises(ConfigError, match=f"output {key} {problem}"):
        require({key: value}, [key], purpose="test")


@pytest.mark.parametrize("port", [5432, "5432"])
def test_a_port_may_be_a_number_or_digits(port: Any) -> None:
    require(
        {"rds_port": port, "alarm_names": ["a"]},
        ["rds_port", "alarm_names"],
        purpose="t",
    )
