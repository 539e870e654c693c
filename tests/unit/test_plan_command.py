"""`tapctl plan` through typer's CliRunner, on small projects made per test.

The real stack's plan is covered in the stack tests; here the projects are
tiny so that each exit path is shown on purpose.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapctl.cli import app
from tapctl.planner import drop_unretrieved
from tests.conftest import PROJECT_ROOT

runner = CliRunner()

PROGRAM = """
import pulumi
import pulumi_aws as aws

config = pulumi.Config("tap")
suffix = config.get("environmentSuffix") or pulumi.get_stack()
public = config.get_bool("public") or False
aws.rds.Instance(
    f"tap-{suffix}-db",
    identifier=f"tap-{suffix}-db",
    instance_class="db.t4g.micro",
    engine="postgres",
    allocated_storage=config.require_int("storage"),
    publicly_accessible=public,
    storage_encrypted=True,
    kms_key_id="arn:aws:kms:us-east-1:123456789012:key/k",
    manage_master_user_password=True,
)
pulumi.export("environment_suffix", suffix)
pulumi.export("token", pulumi.Output.secret("hidden-value"))
"""


def _project(tmp_path: Path, **configs: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Pulumi.yaml").write_text("name: tiny\nruntime: python\nmain: tap.py\n")
    (tmp_path / "tap.py").write_text(PROGRAM)
    for env, body in configs.items():
        (tmp_path / f"Pulumi.{env}.yaml").write_text(textwrap.dedent(body))
    return tmp_path


def _plan(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--project-dir", str(project), "plan", *args])
    return result.exit_code, result.stdout, result.stderr


def test_unknown_environment_exits_2_naming_the_known_ones() -> None:
    code, out, err = _plan(PROJECT_ROOT, "--env", "nosuch")

    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    first = err.splitlines()[0]
    assert "unknown environment 'nosuch'" in first
    assert all(env in first for env in ("dev", "staging", "prod"))
    assert "Traceback" not in err


def test_clean_plan_prints_one_json_document_and_masks_secrets(tmp_path: Path) -> None:
    project = _project(tmp_path, qa="config:\n  tap:storage: 20\n")

    code, out, _ = _plan(project, "--env", "qa", "--json")

    assert code == 0
    document = json.loads(out)
    assert set(document) == {"stack", "resources", "outputs", "checks"}
    assert document["stack"] == "qa"
    db = document["resources"][0]
    assert db["type"] == "aws:rds/instance:Instance"
    assert db["name"] == "tap-qa-db"
    assert db["inputs"]["allocatedStorage"] == 20
    assert document["outputs"] == {"environment_suffix": "qa", "token": "[secret]"}
    assert all(check["ok"] for check in document["checks"])
    assert "hidden-value" not in out


def test_failed_check_exits_1_after_reporting_it(tmp_path: Path) -> None:
    project = _project(tmp_path, qa="config:\n  tap:storage: 20\n  tap:public: true\n")

    code, out, err = _plan(project, "--env", "qa", "--json")

    assert code == 1
    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert checks["rds.not-public"]["ok"] is False
    assert "tap-qa-db" in checks["rds.not-public"]["detail"]
    assert "rds.not-public" in err


def test_table_output_lists_resources_outputs_and_checks(tmp_path: Path) -> None:
    project = _project(tmp_path, qa="config:\n  tap:storage: 20\n")

    code, out, _ = _plan(project, "--env", "qa")

    assert code == 0
    assert "aws:rds/instance:Instance" in out
    assert "environment_suffix" in out
    assert "rds.not-public" in out
    assert "hidden-value" not in out


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("config:\n  tap:storage: lots\n", "tap:storage"),
        ("config:\n  aws:region: us-east-1\n", "tap:storage"),
        ("config: [unclosed\n", "not valid YAML"),
        ("config: [1, 2]\n", "'config' must be a mapping"),
    ],
)
def test_config_errors_exit_2_with_one_line(
    tmp_path: Path, body: str, needle: str
) -> None:
    project = _project(tmp_path, qa=body)

    code, out, err = _plan(project, "--env", "qa")

    errors = [line for line in err.splitlines() if line.startswith("tapctl: error:")]
    assert code == 2
    assert len(errors) == 1
    assert needle in errors[0]
    assert "Traceback" not in err


def test_missing_project_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = _plan(tmp_path, "--env", "dev")

    assert code == 2
    assert "no Pulumi.yaml" in err


def test_help_imports_neither_pulumi_nor_boto3() -> None:
    probe = (
        "import sys\n"
        "from tapctl.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pulumi', 'pulumi_aws', 'boto3') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert "HEAVY=\n" in done.stdout
    assert "plan" in done.stdout


def test_console_script_prints_its_version() -> None:
    script = Path(sys.executable).with_name("tapctl")

    done = subprocess.run([str(script), "--version"], capture_output=True, text=True)

    assert done.returncode == 0
    assert done.stdout.startswith("tapctl ")


FAILING_PROGRAM = """
import pulumi
import pulumi_aws as aws


class KeyedError(ValueError):
    def __init__(self, message, key):
        super().__init__(message)
        self.key = key


def check(zones):
    mode = pulumi.Config("tap").require("mode")
    if mode == "keyed":
        raise KeyedError("tap:zones: more zones than the region has", "tap:zones")
    raise RuntimeError("boom in the program")


zones = aws.get_availability_zones_output()
aws.ec2.Vpc("tap-qa-vpc", cidr_block=zones.names.apply(check))
"""


@pytest.mark.parametrize(
    ("mode", "code", "needle"),
    [
        ("keyed", 2, "tap:zones: more zones than the region has"),
        ("plain", 1, "the Pulumi program failed: boom in the program"),
    ],
)
def test_error_raised_while_resolving_inputs_is_one_line(
    tmp_path: Path, mode: str, code: int, needle: str
) -> None:
    project = _project(tmp_path, qa=f"config:\n  tap:mode: {mode}\n")
    (project / "tap.py").write_text(FAILING_PROGRAM)

    exit_code, _, err = _plan(project, "--env", "qa")

    errors = [line for line in err.splitlines() if line.startswith("tapctl: error:")]
    assert exit_code == code
    assert errors == [f"tapctl: error: {needle}"]
    assert "Traceback" not in err


def test_a_failed_program_does_not_spoil_the_next_plan(tmp_path: Path) -> None:
    broken = _project(tmp_path / "broken", qa="config:\n  tap:mode: plain\n")
    (broken / "tap.py").write_text(FAILING_PROGRAM)
    sound = _project(tmp_path / "sound", qa="config:\n  tap:storage: 20\n")

    assert _plan(broken, "--env", "qa")[0] == 1
    code, out, _ = _plan(sound, "--env", "qa", "--json")

    assert code == 0
    assert [r["name"] for r in json.loads(out)["resources"]] == ["tap-qa-db"]


def test_futures_of_a_failed_program_are_not_reported_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()
        future.set_exception(ValueError("already reported"))
        drop_unretrieved(loop, {"message": "Future exception was never retrieved"})
        drop_unretrieved(loop, {"message": "something else went wrong"})
        future.exception()
    finally:
        loop.close()

    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["something else went wrong"]


def test_a_long_error_stays_on_one_line(tmp_path: Path) -> None:
    names = {
        f"environment-number-{i}-with-a-long-name": "config: {}\n" for i in range(6)
    }
    project = _project(tmp_path, **names)

    code, _, err = _plan(project, "--env", "n" * 60)

    assert code == 2
    first = err.splitlines()[0]
    assert first.startswith("tapctl: error: unknown environment")
    assert len(first) > 200
    assert all(name in first for name in names)


def test_a_key_the_program_never_reads_fails_the_plan(tmp_path: Path) -> None:
    project = _project(tmp_path, qa="config:\n  tap:storage: 20\n  tap:storag: 30\n")

    code, out, _ = _plan(project, "--env", "qa", "--json")

    checks = {c["id"]: c for c in json.loads(out)["checks"]}
    assert code == 1
    assert checks["config.keys-used"]["ok"] is False
    assert "tap:storag is set" in checks["config.keys-used"]["detail"]


def test_a_secure_value_never_appears_in_errors(tmp_path: Path) -> None:
    body = "config:\n  tap:storage:\n    secure: CIPHERTEXT\n    extra: 1\n"
    project = _project(tmp_path, qa=body)

    code, out, err = _plan(project, "--env", "qa")

    assert code == 2
    assert "tap:storage" in err
    assert "CIPHERTEXT" not in out + err
