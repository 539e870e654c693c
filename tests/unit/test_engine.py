"""tapctl.engine against the in-process Automation API double: stack and
backend selection, the values it hands out, and each error it translates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pulumi import automation as auto

from tapctl import engine as engine_module
from tapctl.engine import (
    BackendUnavailable,
    CliMissing,
    Engine,
    EngineEvent,
    ProgramFailed,
    StackLocked,
    StackNotFound,
    UpdateFailed,
    backend_for,
    plain_event,
    stack_name,
)
from tapctl.errors import ConfigError, EngineError, ExitCode, Interrupted, UsageError
from tapctl.project import Project, find_project
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

VPC = "aws:ec2/vpc:Vpc"
SERVICE = "aws:ecs/service:Service"
LOCK_STDERR = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other "
    "process(es) to end or delete the lock file with `pulumi cancel`.\n"
    "  file:///p/.pulumi-state/.pulumi/locks/organization/tap/dev/0b1c.json: "
    "created by ci@runner-7 (pid 4242) at 2025-05-01T11:58:03Z"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A copy of the project's files, so no state folder lands in the repo."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    monkeypatch.setenv("TAPCTL_PROJECT_DIR", str(tmp_path))
    for name in (
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_SECRETS_PROVIDER",
    ):
        monkeypatch.delenv(name, raising=False)
    return find_project(tmp_path)


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> AutomationDouble:
    fake = AutomationDouble()
    monkeypatch.setattr(engine_module, "open_stack", fake.open_stack)
    return fake


# -- stack and backend selection ------------------------------------------------


def test_stack_name_defaults_to_the_environment(project: Project) -> None:
    assert stack_name(project, "dev") == "dev"
    assert stack_name(project, "dev", "acme/tap/dev") == "acme/tap/dev"
    assert stack_name(project, "dev", "acme/dev") == "acme/dev"


@pytest.mark.parametrize(
    ("stack", "says"),
    [
        ("acme/tap/prod", "does not match --env dev"),
        ("acme/other/dev", "names project 'other'"),
        ("a/b/c/dev", "is not a stack name"),
        ("acme//dev", "is not a stack name"),
    ],
)
def test_stack_name_rejects_a_stack_that_does_not_fit_the_env(
    project: Project, stack: str, says: str
) -> None:
    with pytest.raises(UsageError, match=says):
        stack_name(project, "dev", stack)


def test_unknown_environment_fails_before_the_engine_is_reached(
    project: Project, double: AutomationDouble
) -> None:
    with pytest.raises(UsageError, match="unknown environment 'qa'"):
        Engine(project, "qa")
    assert double.opened == []


def test_default_backend_is_the_state_folder_with_an_announced_empty_passphrase(
    project: Project,
) -> None:
    backend = backend_for(project, {})

    assert backend.embedded
    assert backend.url == (project.root / ".pulumi-state").as_uri()
    assert backend.env_vars == {
        "PULUMI_BACKEND_URL": backend.url,
        "PULUMI_CONFIG_PASSPHRASE": "",
    }
    assert len(backend.warnings) == 1
    assert "empty passphrase" in backend.warnings[0]


@pytest.mark.parametrize(
    "setting",
    [
        {"PULUMI_CONFIG_PASSPHRASE": "correct horse"},
        {"PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/pass"},
        {"PULUMI_SECRETS_PROVIDER": "awskms://alias/tap"},
    ],
)
def test_a_configured_passphrase_or_provider_is_left_to_pulumi(
    project: Project, setting: dict[str, str]
) -> None:
    backend = backend_for(project, setting)

    assert "PULUMI_CONFIG_PASSPHRASE" not in backend.env_vars
    assert backend.warnings == ()
    assert backend.secrets_provider == setting.get("PULUMI_SECRETS_PROVIDER")


def test_a_configured_backend_url_is_used_as_is_and_never_gets_the_empty_passphrase(
    project: Project,
) -> None:
    backend = backend_for(project, {"PULUMI_BACKEND_URL": "s3://tap-state?region=eu"})

    assert not backend.embedded
    assert backend.url == "s3://tap-state?region=eu"
    assert backend.env_vars == {}
    assert backend.warnings == ()


def test_backend_url_is_shown_without_its_password(project: Project) -> None:
    backend = backend_for(
        project, {"PULUMI_BACKEND_URL": "https://me:hunter2@h:8080/x"}
    )

    assert backend.url == "https://me:***@h:8080/x"


def test_engine_opens_a_local_workspace_on_the_project_with_the_backend_settings(
    project: Project, double: AutomationDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_SECRETS_PROVIDER", "awskms://alias/tap")
    double.stacks.add("dev")

    Engine(project, "dev").outputs()

    assert double.opened == [
        {
            "work_dir": str(project.root),
            "name": "dev",
            "create": False,
            "env_vars": {"PULUMI_BACKEND_URL": project.state_dir.as_uri()},
            "secrets_provider": "awskms://alias/tap",
        }
    ]
    assert project.state_dir.is_dir()


# -- values -------------------------------------------------------------------------


def test_outputs_are_plain_values_with_secret_keys_marked(
    project: Project, double: AutomationDouble
) -> None:
    double.stacks.add("dev")
    double.outputs = {
        "vpc_id": auto.OutputValue("vpc-123", False),
        "alarm_names": auto.OutputValue(["a", "b"], False),
        "db_password": auto.OutputValue("s3cret", True),
    }

    found = Engine(project, "dev").outputs()

    assert found.values == {
        "vpc_id": "vpc-123",
        "alarm_names": ["a", "b"],
        "db_password": "s3cret",
    }
    assert found.secret_keys == {"db_password"}


def test_preview_creates_the_stack_on_first_use_and_reports_changes(
    project: Project, double: AutomationDouble
) -> None:
    double.events["preview"] = [
        pre("same", VPC, "tap-vpc", planning=True),
        pre(
            "update",
            SERVICE,
            "blue",
            planning=True,
            diffs=["taskDefinition"],
            detailedDiff={"taskDefinition": {"diffKind": "update", "inputDiff": True}},
            old={"type": SERVICE, "urn": "u", "inputs": {"taskDefinition": "td:1"}},
            new={"type": SERVICE, "urn": "u", "inputs": {"taskDefinition": "td:2"}},
        ),
        pre("replace", "aws:lb/targetGroup:TargetGroup", "green-tg", planning=True),
        pre(
            "create-replacement",
            "aws:lb/targetGroup:TargetGroup",
            "green-tg",
            planning=True,
        ),
        summary({"same": 40, "update": 1, "replace": 1}),
    ]

    report = Engine(project, "dev").preview(diff=True)

    assert double.opened[0]["create"] is True
    assert double.call("preview").kwargs["diff"] is True
    assert report.counts == {"same": 40, "update": 1, "replace": 1}
    assert report.pending == 2
    assert [(c.op, c.name) for c in report.changes] == [
        ("update", "blue"),
        ("replace", "green-tg"),
    ]
    change = report.changes[0].diffs[0]
    assert (change.path, change.kind, change.old, change.new) == (
        "taskDefinition",
        "update",
        "td:1",
        "td:2",
    )


def test_preview_without_changes_has_nothing_pending(
    project: Project, double: AutomationDouble
) -> None:
    double.events["preview"] = [summary({"same": 41})]

    report = Engine(project, "dev").preview()

    assert report.pending == 0
    assert report.changes == []


def test_up_passes_targets_and_refresh_and_forwards_plain_events(
    project: Project, double: AutomationDouble
) -> None:
    double.events["up"] = [
        pre("create", VPC, "tap-vpc"),
        done("create", VPC, "tap-vpc"),
    ]
    double.changes = {"create": 1, "same": 3}
    double.outputs = {"vpc_id": auto.OutputValue("vpc-9", False)}
    seen: list[EngineEvent] = []
    target = urn(SERVICE, "blue")

    report = Engine(project, "dev").up(
        targets=[target], refresh=True, on_event=seen.append
    )

    kwargs = double.call("up").kwargs
    assert kwargs["target"] == [target]
    assert kwargs["refresh"] is True
    assert [(e.kind, e.op, e.name, e.type) for e in seen] == [
        ("start", "create", "tap-vpc", VPC),
        ("done", "create", "tap-vpc", VPC),
    ]
    assert report.summary == {"create": 1, "same": 3}
    assert report.outputs.values == {"vpc_id": "vpc-9"}
    assert report.seconds >= 0


def test_plain_event_reads_diagnostics_and_summaries() -> None:
    warning = plain_event(
        diagnostic(
            "<{%fg 3%}>deprecated<{%reset%}>\n", severity="warning", resource="u"
        )
    )
    totals = plain_event(summary({"create": 2}))

    assert warning == EngineEvent(
        kind="diagnostic", urn="u", message="deprecated", severity="warning"
    )
    assert totals is not None and totals.counts == {"create": 2}


def test_history_returns_the_newest_entries_as_plain_values(
    project: Project, double: AutomationDouble
) -> None:
    double.stacks.add("dev")
    double.history = [
        update_summary("update", "failed", 3, {"update": 1}, "deploy green"),
        update_summary("refresh", "succeeded", 2),
        update_summary("update", "succeeded", 1, {"create": 40}),
    ]

    entries = Engine(project, "dev").history(2)

    assert double.call("history").kwargs["page_size"] == 2
    assert [(e.version, e.kind, e.result) for e in entries] == [
        (3, "update", "failed"),
        (2, "refresh", "succeeded"),
    ]
    assert entries[0].changes == {"update": 1}
    assert entries[0].seconds == 75
    assert entries[0].to_json()["message"] == "deploy green"


def test_config_is_read_and_written_under_the_tap_namespace(
    project: Project, double: AutomationDouble
) -> None:
    double.stacks.add("dev")
    engine = Engine(project, "dev")

    engine.set_config({"activeColor": "green", "greenImage": "nginx:1.28"})

    written = double.call("set_all_config").kwargs["config"]
    assert {key: value.value for key, value in written.items()} == {
        "tap:activeColor": "green",
        "tap:greenImage": "nginx:1.28",
    }
    assert not any(value.secret for value in written.values())
    assert engine.get_config("activeColor") == "green"
    assert engine.get_config("idleWeight") is None


# -- errors ------------------------------------------------------------------


def test_missing_cli_says_how_to_install_it(
    project: Project, double: AutomationDouble
) -> None:
    double.cli_missing = True

    with pytest.raises(CliMissing) as caught:
        Engine(project, "dev").preview()

    assert "Pulumi CLI is not on PATH" in caught.value.message
    assert "curl -fsSL https://get.pulumi.com | sh" in caught.value.message
    assert caught.value.exit_code == ExitCode.FAILED


def test_locked_stack_names_the_holder_and_how_to_cancel(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["up"] = command_error(LOCK_STDERR)

    with pytest.raises(StackLocked) as caught:
        Engine(project, "dev").up()

    assert caught.value.message == (
        "stack dev is locked by another update "
        "(held by ci@runner-7, pid 4242, since 2025-05-01T11:58:03Z)"
    )
    assert caught.value.hint is not None
    assert (
        f"PULUMI_BACKEND_URL={project.state_dir.as_uri()} pulumi cancel --stack dev"
        in (caught.value.hint)
    )


def test_locked_stack_on_the_service_backend_still_says_how_to_cancel(
    project: Project, double: AutomationDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    double.errors["preview"] = command_error(
        "error: [409] Conflict: Another update is currently in progress."
    )

    with pytest.raises(StackLocked) as caught:
        Engine(project, "dev", stack="acme/tap/dev").preview()

    assert caught.value.message == "stack acme/tap/dev is locked by another update"
    assert caught.value.hint is not None
    assert caught.value.hint.endswith("pulumi cancel --stack acme/tap/dev")


def test_reading_a_stack_that_does_not_exist_says_so_and_creates_nothing(
    project: Project, double: AutomationDouble
) -> None:
    with pytest.raises(StackNotFound, match="stack dev not found in backend file://"):
        Engine(project, "dev").outputs()

    assert double.stacks == set()


def test_missing_config_names_the_key_and_is_a_usage_error(
    project: Project, double: AutomationDouble
) -> None:
    stack_urn = urn("pulumi:pulumi:Stack", "tap-dev")
    double.events["preview"] = [
        diagnostic(
            "Missing required configuration variable 'tap:vpcCidr'\n"
            "    please set a value using the command `pulumi config set tap:vpcCidr`",
            resource=stack_urn,
        )
    ]
    double.errors["preview"] = command_error("error: preview failed")

    with pytest.raises(ConfigError) as caught:
        Engine(project, "dev").preview()

    assert caught.value.message == "stack config tap:vpcCidr is missing"
    assert caught.value.key == "tap:vpcCidr"
    assert caught.value.exit_code == ExitCode.USAGE


def test_invalid_config_names_the_key_and_value(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["up"] = command_error(
        "error: update failed",
        stdout="error: Program failed with an unhandled exception:\n"
        "pulumi.config.ConfigTypeError: Configuration 'tap:taskCpu' value 'lots' "
        "is not a valid int",
    )

    with pytest.raises(ConfigError) as caught:
        Engine(project, "dev").up()

    assert caught.value.message == "stack config tap:taskCpu='lots' is not a valid int"
    assert caught.value.key == "tap:taskCpu"


def test_wrong_passphrase_is_a_config_error_naming_the_variable(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["up"] = command_error(
        "error: getting secrets manager: incorrect passphrase, please set "
        "PULUMI_CONFIG_PASSPHRASE to the correct passphrase"
    )

    with pytest.raises(ConfigError) as caught:
        Engine(project, "dev").up()

    assert caught.value.key == "PULUMI_CONFIG_PASSPHRASE"


def test_unreachable_backend_names_the_backend(
    project: Project, double: AutomationDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://tap-state")
    double.errors["preview"] = command_error(
        'error: failed to load checkpoint: blob (key ".pulumi/meta.yaml") '
        "(code=Unknown): NoSuchBucket: The specified bucket does not exist"
    )

    with pytest.raises(BackendUnavailable) as caught:
        Engine(project, "dev").preview()

    assert caught.value.message.startswith(
        "cannot use the Pulumi backend s3://tap-state:"
    )
    assert "NoSuchBucket" in caught.value.message


def test_failed_update_names_each_failed_resource_with_its_provider_message(
    project: Project, double: AutomationDouble
) -> None:
    service = urn(SERVICE, "blue")
    double.events["up"] = [
        pre("create", VPC, "tap-vpc"),
        done("create", VPC, "tap-vpc"),
        pre("update", SERVICE, "blue"),
        diagnostic(
            "  sdk-v2/provider2.go:572: sdk.helper_schema: updating ECS Service "
            "(tap-blue-dev): InvalidParameterException: The container app does not "
            "exist in the task definition.: provider=aws@7.0.0\n",
            resource=service,
        ),
        failed("update", SERVICE, "blue"),
        diagnostic(
            "error: update failed", resource=urn("pulumi:pulumi:Stack", "tap-dev")
        ),
    ]
    double.errors["up"] = command_error("error: update failed")

    with pytest.raises(UpdateFailed) as caught:
        Engine(project, "dev").up()

    assert caught.value.failures == [
        f"blue ({SERVICE}): sdk-v2/provider2.go:572: sdk.helper_schema: updating ECS "
        "Service (tap-blue-dev): InvalidParameterException: The container app does "
        "not exist in the task definition.: provider=aws@7.0.0"
    ]
    assert caught.value.message.startswith("up of stack dev failed: blue (")
    assert "\n" not in caught.value.message


def test_failed_resource_without_a_message_is_still_named(
    project: Project, double: AutomationDouble
) -> None:
    double.events["up"] = [
        pre("delete", VPC, "old-vpc"),
        failed("delete", VPC, "old-vpc"),
    ]
    double.errors["up"] = command_error("error: update failed")

    with pytest.raises(UpdateFailed) as caught:
        Engine(project, "dev").up()

    assert caught.value.failures == [f"old-vpc ({VPC})"]


def test_program_crash_is_reported_with_the_exception_it_raised(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["preview"] = command_error(
        "error: preview failed",
        stdout="Previewing update (dev):\n"
        "error: Program failed with an unhandled exception:\n"
        "Traceback (most recent call last):\n"
        '  File "/p/tap.py", line 3, in <module>\n'
        "    from lib.tap_stack import TapStack\n"
        "ModuleNotFoundError: No module named 'lib.tap_stack'",
    )

    with pytest.raises(ProgramFailed) as caught:
        Engine(project, "dev").preview()

    assert caught.value.message == (
        "the Pulumi program failed during preview: "
        "ModuleNotFoundError: No module named 'lib.tap_stack'"
    )


def test_other_engine_errors_become_one_line(
    project: Project, double: AutomationDouble
) -> None:
    double.stacks.add("dev")
    double.errors["destroy"] = command_error(
        "warning: A new version of Pulumi is available.\n"
        "error: resource urn:pulumi:dev::tap::aws:rds/instance:Instance::db is "
        "protected"
    )

    with pytest.raises(EngineError) as caught:
        Engine(project, "dev").destroy()

    assert type(caught.value) is EngineError
    assert caught.value.message == (
        "destroy of stack dev failed: resource "
        "urn:pulumi:dev::tap::aws:rds/instance:Instance::db is protected"
    )


def test_ctrl_c_cancels_the_update_through_the_stack(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["up"] = KeyboardInterrupt()

    with pytest.raises(Interrupted) as caught:
        Engine(project, "dev").up()

    assert double.methods() == ["up", "cancel"]
    assert caught.value.message == "up of stack dev interrupted and cancelled"
    assert caught.value.exit_code == ExitCode.INTERRUPTED


def test_ctrl_c_when_cancel_fails_says_how_to_unlock(
    project: Project, double: AutomationDouble
) -> None:
    double.stacks.add("dev")
    double.errors["refresh"] = KeyboardInterrupt()
    double.errors["cancel"] = command_error("error: no update is in progress")

    with pytest.raises(Interrupted) as caught:
        Engine(project, "dev").refresh()

    assert double.methods() == ["refresh", "cancel"]
    assert "cancelling it through the backend failed" in caught.value.message
    assert (
        caught.value.hint is not None
        and "pulumi cancel --stack dev" in caught.value.hint
    )


def test_ctrl_c_during_a_preview_has_no_update_to_cancel(
    project: Project, double: AutomationDouble
) -> None:
    double.errors["preview"] = KeyboardInterrupt()

    with pytest.raises(Interrupted, match="preview of stack dev interrupted"):
        Engine(project, "dev").preview()

    assert double.methods() == ["preview"]


def test_double_rejects_arguments_the_real_api_does_not_take(
    double: AutomationDouble,
) -> None:
    """The double is only worth something if it catches a wrong argument name."""
    stack = double.open_stack(
        "/p", "dev", create=True, env_vars={}, secrets_provider=None
    )

    with pytest.raises(TypeError, match="targets"):
        stack.up(targets=["urn"])
