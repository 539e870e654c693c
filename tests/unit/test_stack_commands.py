"""The stack commands (preview, up, outputs, history, refresh, destroy)
through typer's CliRunner, with the Automation API replaced by the double;
plus one real run of the console script with no Pulumi CLI on PATH."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi import automation as auto
from rich.console import Console
from typer.testing import CliRunner

from tapctl import engine as engine_module
from tapctl import progress
from tapctl.cli import app
from tapctl.commands import stack as stack_commands
from tapctl.engine import EngineEvent
from tests.conftest import PROJECT_ROOT
from tests.unit.automation_double import (
    AutomationDouble,
    command_error,
    diagnostic,
    done,
    failed,
    pre,
    summary,
    update_summary,
    urn,
)

runner = CliRunner()
VPC = "aws:ec2/vpc:Vpc"
SERVICE = "aws:ecs/service:Service"
OUTPUTS = {
    "vpc_id": auto.OutputValue("vpc-0abc", False),
    "rds_port": auto.OutputValue(5432, False),
    "alarm_names": auto.OutputValue(["tap-5xx-dev", "tap-cpu-dev"], False),
    "db_secret_arn": auto.OutputValue("arn:aws:secretsmanager:us-east-1:1:s", True),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's files, so no state folder lands in the repo."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_ROOT / name, root / name)
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(root))
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")
    monkeypatch.delenv("PULUMI_SECRETS_PROVIDER", raising=False)
    return root


@pytest.fixture
def double(project: Path, monkeypatch: pytest.MonkeyPatch) -> AutomationDouble:
    fake = AutomationDouble()
    monkeypatch.setattr(engine_module, "open_stack", fake.open_stack)
    return fake


@pytest.fixture
def deployed(double: AutomationDouble) -> AutomationDouble:
    """A dev and a prod stack that were deployed before."""
    double.stacks.update({"dev", "prod"})
    double.outputs = dict(OUTPUTS)
    return double


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat stdin as a terminal, so that commands may ask."""
    monkeypatch.setattr(stack_commands, "_is_interactive", lambda: True)


def _run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tapctl: error:")]


# -- preview -----------------------------------------------------------------------


def _planned(double: AutomationDouble) -> None:
    double.events["preview"] = [
        pre("same", VPC, "tap-vpc", planning=True),
        pre(
            "update",
            SERVICE,
            "blue",
            planning=True,
            detailedDiff={"taskDefinition": {"diffKind": "update", "inputDiff": True}},
            old={"type": SERVICE, "urn": "u", "inputs": {"taskDefinition": "td:1"}},
            new={"type": SERVICE, "urn": "u", "inputs": {"taskDefinition": "td:2"}},
        ),
        pre("create", "aws:s3/bucket:Bucket", "static", planning=True),
        summary({"same": 40, "update": 1, "create": 1}),
    ]


def test_preview_shows_counts_per_operation_and_the_changed_resources(
    double: AutomationDouble,
) -> None:
    _planned(double)

    code, out, err = _run("preview", "--env", "dev")

    assert code == 0, err
    assert "Operations (dev)" in out
    counts = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 2
    }
    assert counts == {
        "create": "1",
        "update": "1",
        "replace": "0",
        "delete": "0",
        "same": "40",
    }
    assert "aws:ecs/service:Service" in out and "blue" in out
    assert "static" in out and "tap-vpc" not in out
    assert "td:2" not in out  # property values only with --diff
    assert "dev: 2 change(s) pending" in err


def test_preview_diff_shows_property_changes(double: AutomationDouble) -> None:
    _planned(double)

    code, out, _ = _run("preview", "--env", "dev", "--diff")

    assert code == 0
    assert double.call("preview").kwargs["diff"] is True
    row = next(line for line in out.splitlines() if "taskDefinition" in line)
    assert [c.strip() for c in row.split("│") if c.strip()] == [
        "blue",
        "taskDefinition",
        "update",
        "td:1",
        "td:2",
    ]


def test_preview_json_is_one_document(double: AutomationDouble) -> None:
    _planned(double)

    code, out, _ = _run("preview", "--env", "dev", "--json")

    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "dev"
    assert document["counts"] == {"same": 40, "update": 1, "create": 1}
    assert document["pending"] == 2
    assert [(c["op"], c["name"]) for c in document["changes"]] == [
        ("update", "blue"),
        ("create", "static"),
    ]


def test_preview_expect_no_changes_exits_1_when_something_would_change(
    double: AutomationDouble,
) -> None:
    _planned(double)

    code, out, err = _run("preview", "--env", "dev", "--expect-no-changes")

    assert code == 1
    assert "Changed resources" in out  # what drifted is shown before failing
    assert _error_lines(err) == [
        "tapctl: error: dev: 2 change(s) pending; expected none"
    ]


def test_preview_expect_no_changes_passes_without_changes(
    double: AutomationDouble,
) -> None:
    double.events["preview"] = [summary({"same": 42})]

    code, _, err = _run("preview", "--env", "dev", "--expect-no-changes")

    assert code == 0, err


def test_preview_with_a_stack_that_does_not_match_the_env_exits_2(
    double: AutomationDouble,
) -> None:
    code, _, err = _run("preview", "--env", "dev", "--stack", "acme/tap/prod")

    assert code == 2
    assert _error_lines(err)[0].startswith(
        "tapctl: error: --stack 'acme/tap/prod' does not match --env dev"
    )
    assert double.opened == []


# -- up ----------------------------------------------------------------------------


def _deploys(double: AutomationDouble) -> None:
    double.events["up"] = [
        pre("create", VPC, "tap-vpc"),
        done("create", VPC, "tap-vpc"),
        pre("update", SERVICE, "blue"),
        done("update", SERVICE, "blue"),
        summary({"create": 1, "update": 1, "same": 30}),
    ]
    double.changes = {"create": 1, "update": 1, "same": 30}
    double.outputs = dict(OUTPUTS)


def test_up_without_a_terminal_needs_yes(double: AutomationDouble) -> None:
    code, _, err = _run("up", "--env", "dev")

    assert code == 2
    assert _error_lines(err) == [
        "tapctl: error: update dev (stack dev) needs confirmation and stdin is "
        "not a terminal"
    ]
    assert "--yes" in err
    assert double.opened == [] and double.calls == []


def test_up_with_yes_streams_progress_and_prints_masked_outputs(
    double: AutomationDouble,
) -> None:
    _deploys(double)

    code, out, err = _run("up", "--env", "dev", "--yes")

    assert code == 0, err
    assert f"created {VPC} tap-vpc" in err
    assert f"updated {SERVICE} blue" in err
    assert "updated dev (stack dev): 1 created, 1 updated, 30 unchanged in" in err
    assert "Outputs (dev)" in out
    assert "vpc-0abc" in out
    assert "[secret]" in out
    assert "arn:aws:secretsmanager" not in out + err


def test_up_passes_targets_and_refresh(double: AutomationDouble) -> None:
    _deploys(double)
    target = urn(SERVICE, "blue")

    code, _, err = _run("up", "-e", "dev", "-y", "--target", target, "--refresh")

    assert code == 0, err
    kwargs = double.call("up").kwargs
    assert kwargs["target"] == [target]
    assert kwargs["refresh"] is True


def test_up_on_a_terminal_asks_and_stops_on_no(
    double: AutomationDouble, terminal: None
) -> None:
    code, _, err = _run("up", "--env", "dev", input="n\n")

    assert code == 1
    assert "update dev (stack dev)? [y/N]" in err
    # The prompt's line ends with the user's Enter, which CliRunner does not echo.
    assert err.rstrip().endswith(
        "tapctl: error: update dev (stack dev) not confirmed; nothing was changed"
    )
    assert "up" not in double.methods()


def test_up_waits_for_no_one_while_a_release_holds_the_stack(
    double: AutomationDouble, project: Path
) -> None:
    from tapctl.project import find_project
    from tapctl.release import stack_update_lock

    found = find_project(project)
    with stack_update_lock(found.name, "dev", found.state_dir):
        code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 1
    assert "another tapctl release on stack" in _error_lines(err)[0]
    assert "up" not in double.methods()


def test_end_of_input_at_the_prompt_is_a_cancel_with_exit_130(
    double: AutomationDouble, terminal: None
) -> None:
    code, _, err = _run("up", "--env", "dev", input="")

    assert code == 130
    assert _error_lines(err) == [
        "tapctl: error: cancelled at the prompt; nothing was changed"
    ]
    assert "Aborted" not in err
    assert "up" not in double.methods()


def test_up_on_a_terminal_goes_on_after_yes(
    double: AutomationDouble, terminal: None
) -> None:
    _deploys(double)

    code, _, err = _run("up", "--env", "dev", input="y\n")

    assert code == 0, err
    assert double.methods() == ["up"]


def test_up_on_prod_needs_the_environment_name_typed(
    double: AutomationDouble, terminal: None
) -> None:
    code, _, err = _run("up", "--env", "prod", input="y\n")

    assert code == 1
    assert "type the environment name" in err
    assert "not confirmed" in err
    assert double.calls == []


def test_up_on_prod_goes_on_when_its_name_is_typed(
    double: AutomationDouble, terminal: None
) -> None:
    _deploys(double)

    code, _, err = _run("up", "--env", "prod", input="prod\n")

    assert code == 0, err
    assert double.methods() == ["up"]
    assert double.opened[0]["name"] == "prod"


def test_up_that_fails_names_the_resource_and_provider_message(
    double: AutomationDouble,
) -> None:
    double.events["up"] = [
        pre("update", SERVICE, "blue"),
        diagnostic(
            "updating ECS Service (tap-blue-dev): InvalidParameterException: "
            "Unable to assume role\n",
            resource=urn(SERVICE, "blue"),
        ),
        failed("update", SERVICE, "blue"),
    ]
    double.errors["up"] = command_error("error: update failed")

    code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 1
    assert f"failed update of {SERVICE} blue" in err
    assert "error: blue: updating ECS Service (tap-blue-dev)" in err
    assert _error_lines(err) == [
        f"tapctl: error: up of stack dev failed: blue ({SERVICE}): updating ECS "
        "Service (tap-blue-dev): InvalidParameterException: Unable to assume role"
    ]
    assert "Traceback" not in err


def test_up_interrupted_cancels_and_exits_130(double: AutomationDouble) -> None:
    double.events["up"] = [pre("create", VPC, "tap-vpc")]
    double.errors["up"] = KeyboardInterrupt()

    code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 130
    assert double.methods() == ["up", "cancel"]
    assert _error_lines(err) == [
        "tapctl: error: up of stack dev interrupted and cancelled"
    ]


def test_up_on_a_locked_stack_says_by_whom_and_how_to_cancel(
    double: AutomationDouble,
) -> None:
    double.errors["up"] = command_error(
        "error: the stack is currently locked by 1 lock(s). Either wait for the "
        "other process(es) to end or delete the lock file with `pulumi cancel`.\n"
        "  file:///x/.pulumi/locks/organization/tap/dev/1.json: created by "
        "ana@laptop (pid 77) at 2025-05-01T09:00:00Z"
    )

    code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 1
    assert _error_lines(err) == [
        "tapctl: error: stack dev is locked by another update (held by "
        "ana@laptop, pid 77, since 2025-05-01T09:00:00Z)"
    ]
    assert "pulumi cancel --stack dev" in err


def test_up_with_missing_config_exits_2_naming_the_key(
    double: AutomationDouble,
) -> None:
    double.errors["up"] = command_error(
        "error: update failed",
        stdout="error: Missing required configuration variable 'tap:vpcCidr'",
    )

    code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 2
    assert _error_lines(err) == ["tapctl: error: stack config tap:vpcCidr is missing"]
    assert "Pulumi.dev.yaml" in err


def test_up_without_the_cli_says_how_to_install_it(double: AutomationDouble) -> None:
    double.cli_missing = True

    code, _, err = _run("up", "--env", "dev", "--yes")

    assert code == 1
    assert err.strip().splitlines() == [
        "tapctl: error: the Pulumi CLI is not on PATH; install it with: "
        "curl -fsSL https://get.pulumi.com | sh (or see "
        "https://www.pulumi.com/docs/install/)"
    ]


def test_embedded_backend_without_passphrase_warns_once(
    double: AutomationDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    double.events["preview"] = [summary({"same": 1})]

    code, _, err = _run("preview", "--env", "dev")

    assert code == 0, err
    assert err.count("tapctl: warning: no PULUMI_CONFIG_PASSPHRASE set") == 1
    assert double.opened[0]["env_vars"]["PULUMI_CONFIG_PASSPHRASE"] == ""


# -- outputs -----------------------------------------------------------------------


def test_outputs_table_masks_secrets(deployed: AutomationDouble) -> None:
    code, out, err = _run("outputs", "--env", "dev")

    assert code == 0, err
    assert "vpc-0abc" in out and "5432" in out
    assert '["tap-5xx-dev", "tap-cpu-dev"]' in out
    assert "[secret]" in out
    assert "secretsmanager" not in out + err


def test_outputs_json_is_the_flat_object_verify_reads(
    deployed: AutomationDouble,
) -> None:
    code, out, _ = _run("outputs", "--env", "dev", "--json")

    assert code == 0
    assert json.loads(out) == {
        "vpc_id": "vpc-0abc",
        "rds_port": 5432,
        "alarm_names": ["tap-5xx-dev", "tap-cpu-dev"],
        "db_secret_arn": "[secret]",
    }


def test_outputs_show_secrets_shows_them(deployed: AutomationDouble) -> None:
    code, out, _ = _run("outputs", "--env", "dev", "--json", "--show-secrets")

    assert code == 0
    assert json.loads(out)["db_secret_arn"] == "arn:aws:secretsmanager:us-east-1:1:s"


def test_outputs_file_holds_the_flat_masked_object(
    deployed: AutomationDouble, tmp_path: Path
) -> None:
    target = tmp_path / "outputs.json"

    code, _, err = _run("outputs", "--env", "dev", "--output-file", str(target))

    assert code == 0, err
    assert json.loads(target.read_text()) == {
        "vpc_id": "vpc-0abc",
        "rds_port": 5432,
        "alarm_names": ["tap-5xx-dev", "tap-cpu-dev"],
        "db_secret_arn": "[secret]",
    }
    assert f"wrote 4 output(s) of dev to {target}" in err


def test_outputs_file_with_secrets_in_clear_is_private(
    deployed: AutomationDouble, tmp_path: Path
) -> None:
    target = tmp_path / "outputs.json"
    target.write_text("{}")
    target.chmod(0o644)

    code, _, _ = _run(
        "outputs", "--env", "dev", "--show-secrets", "--output-file", str(target)
    )

    assert code == 0
    assert json.loads(target.read_text())["db_secret_arn"].startswith("arn:")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_outputs_file_in_a_missing_folder_exits_2(
    deployed: AutomationDouble, tmp_path: Path
) -> None:
    target = tmp_path / "nowhere" / "outputs.json"

    code, _, err = _run("outputs", "--env", "dev", "--output-file", str(target))

    assert code == 2
    assert _error_lines(err) == [
        f"tapctl: error: cannot write outputs file {target}: No such file or directory"
    ]


def test_outputs_of_a_stack_never_created_exits_1_and_says_how_to_create_it(
    double: AutomationDouble,
) -> None:
    code, _, err = _run("outputs", "--env", "dev")

    assert code == 1
    assert _error_lines(err)[0].startswith(
        "tapctl: error: stack dev not found in backend"
    )
    assert "tapctl up --env dev" in err
    assert double.stacks == set()


# -- history -----------------------------------------------------------------------


def test_history_lists_the_newest_operations(deployed: AutomationDouble) -> None:
    deployed.history = [
        update_summary("update", "failed", 3, {"update": 1}, "release green"),
        update_summary("update", "succeeded", 2, {"create": 40}),
        update_summary("refresh", "succeeded", 1),
    ]

    code, out, err = _run("history", "--env", "dev", "--limit", "2")

    assert code == 0, err
    assert deployed.call("history").kwargs["page_size"] == 2
    assert "release green" in out and "1 updated" in out and "1m15s" in out
    assert "40 created" in out
    assert "refresh" not in out


def test_history_json_lists_entries(deployed: AutomationDouble) -> None:
    deployed.history = [update_summary("update", "succeeded", 5, {"same": 3})]

    code, out, _ = _run("history", "--env", "dev", "--json")

    assert code == 0
    assert json.loads(out) == [
        {
            "version": 5,
            "kind": "update",
            "result": "succeeded",
            "started": "2025-05-01T12:05:00",
            "ended": "2025-05-01T12:06:15",
            "seconds": 75.0,
            "message": "",
            "changes": {"same": 3},
        }
    ]


def test_history_limit_below_one_is_a_usage_error(deployed: AutomationDouble) -> None:
    code, _, _ = _run("history", "--env", "dev", "--limit", "0")

    assert code == 2
    assert deployed.calls == []


# -- refresh and destroy -------------------------------------------------------------


def test_refresh_without_a_terminal_needs_yes(deployed: AutomationDouble) -> None:
    code, _, err = _run("refresh", "--env", "dev")

    assert code == 2
    assert "needs confirmation" in err
    assert deployed.calls == []


def test_refresh_with_yes_reports_what_changed(deployed: AutomationDouble) -> None:
    deployed.events["refresh"] = [
        pre("refresh", SERVICE, "blue"),
        done("refresh", SERVICE, "blue"),
    ]
    deployed.changes = {"same": 30, "update": 2}

    code, _, err = _run("refresh", "--env", "dev", "--yes")

    assert code == 0, err
    assert f"refreshed {SERVICE} blue" in err
    assert "refreshed dev (stack dev): 2 updated, 30 unchanged in" in err


def test_destroy_refuses_prod_without_force(deployed: AutomationDouble) -> None:
    code, _, err = _run("destroy", "--env", "prod", "--yes")

    assert code == 2
    assert _error_lines(err) == [
        "tapctl: error: refusing to destroy prod: it is a protected environment"
    ]
    assert deployed.opened == [] and deployed.calls == []


def test_destroy_prod_with_force_still_asks_for_its_name(
    deployed: AutomationDouble, terminal: None
) -> None:
    code, _, err = _run("destroy", "--env", "prod", "--force", input="dev\n")

    assert code == 1
    assert "not confirmed" in err
    assert "destroy" not in deployed.methods()


def test_destroy_prod_with_force_and_yes_destroys(deployed: AutomationDouble) -> None:
    deployed.changes = {"delete": 41}

    code, _, err = _run("destroy", "--env", "prod", "--force", "--yes")

    assert code == 0, err
    assert deployed.methods() == ["destroy"]
    assert "destroyed prod (stack prod): 41 deleted in" in err


def test_destroy_dev_without_a_terminal_needs_yes(deployed: AutomationDouble) -> None:
    code, _, err = _run("destroy", "--env", "dev")

    assert code == 2
    assert "pass --yes" in err
    assert deployed.calls == []


# -- help, progress view, and the real console script --------------------------------


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("preview", "--expect-no-changes"),
        ("up", "--target"),
        ("outputs", "--show-secrets"),
        ("history", "--limit"),
        ("refresh", "--yes"),
        ("destroy", "--force"),
    ],
)
def test_each_command_documents_itself(command: str, says: str) -> None:
    code, out, _ = _run(command, "--help")

    assert code == 0
    assert says in out
    assert "--env" in out


def test_live_view_counts_resources_in_flight_done_and_failed() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    start = EngineEvent(kind="start", urn=urn(VPC, "vpc"), type=VPC, op="create")
    other = EngineEvent(kind="start", urn=urn(SERVICE, "s"), type=SERVICE, op="update")

    with progress.follow(screen, "up dev") as view:
        assert view.live is not None
        for event in (start, other):
            view.handle(event)
        view.handle(EngineEvent(kind="done", urn=start.urn, type=VPC, op="create"))
        view.handle(
            EngineEvent(kind="failed", urn=other.urn, type=SERVICE, op="update")
        )
        view.handle(EngineEvent(kind="start", urn="x", type=VPC, op="same"))
        text = _plain(view.render(), screen)

    assert text.startswith("up dev: 0 in flight, 1 done, 1 failed, 0s")
    assert view.failed == [f"{SERVICE} s"]


def test_live_view_shows_resources_in_flight() -> None:
    screen = Console(file=io.StringIO(), force_terminal=True, width=120)
    view = progress.ProgressView(screen, "up dev")

    view.handle(EngineEvent(kind="start", urn=urn(VPC, "vpc"), type=VPC, op="create"))

    assert _plain(view.render(), screen).splitlines() == [
        "up dev: 1 in flight, 0 done, 0 failed, 0s",
        f"  {VPC} vpc (0s)",
    ]


def test_quiet_view_keeps_engine_errors_and_drops_progress() -> None:
    screen = Console(file=io.StringIO(), width=120, color_system=None)
    failure = EngineEvent(
        kind="diagnostic", urn=urn(VPC, "vpc"), severity="error", message="quota"
    )

    with progress.follow(screen, "up dev", enabled=False) as view:
        view.handle(EngineEvent(kind="start", urn=urn(VPC, "v"), type=VPC, op="create"))
        view.handle(EngineEvent(kind="done", urn=urn(VPC, "v"), type=VPC, op="create"))
        view.handle(failure)

    assert screen.file.getvalue().splitlines() == ["error: vpc: quota"]  # type: ignore[attr-defined]


def _plain(renderable: object, screen: Console) -> str:
    """The renderable as plain text, the way ``screen`` would lay it out."""
    plain = Console(file=io.StringIO(), width=screen.width, color_system=None)
    plain.print(renderable, no_wrap=True)
    return plain.file.getvalue()  # type: ignore[attr-defined]


def test_console_script_without_pulumi_on_path_says_the_cli_is_missing(
    tmp_path: Path,
) -> None:
    """For real: no double, the tapctl script, and a PATH without pulumi."""
    bin_dir = Path(sys.executable).parent
    assert not (bin_dir / "pulumi").exists(), "this test needs pulumi off PATH"
    empty = tmp_path / "bin"
    empty.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    env = {
        "PATH": f"{empty}{os.pathsep}{bin_dir}",
        "HOME": str(tmp_path),
        "TAPCTL_PROJECT_DIR": str(project),
        "PULUMI_CONFIG_PASSPHRASE": "test-only",
    }

    done_ = subprocess.run(
        [str(bin_dir / "tapctl"), "preview", "--env", "dev"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done_.returncode == 1
    assert done_.stdout == ""
    assert done_.stderr.strip().splitlines() == [
        "tapctl: error: the Pulumi CLI is not on PATH; install it with: "
        "curl -fsSL https://get.pulumi.com | sh (or see "
        "https://www.pulumi.com/docs/install/)"
    ]
