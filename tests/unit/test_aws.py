"""The one boto3 session: where region, profile and endpoint come from, and
how a bad setting becomes one line (exit 2) instead of a botocore error."""

from __future__ import annotations

import pytest
from botocore.config import Config

from tapctl.aws import Aws
from tapctl.errors import ExitCode, UsageError


def test_aws_region_alone_sets_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    assert Aws().region == "eu-west-1"


def test_aws_region_wins_over_the_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")

    assert Aws().region == "eu-central-1"


def test_no_region_at_all_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")

    with pytest.raises(UsageError, match="no AWS region configured"):
        Aws()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AWS_PROFILE", "nosuch", "AWS profile 'nosuch' not found"),
        ("AWS_ENDPOINT_URL", "not a url", "invalid AWS endpoint 'not a url'"),
        ("AWS_REGION", "us east 1", "invalid AWS region 'us east 1'"),
    ],
)
def test_bad_settings_become_one_usage_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(UsageError) as raised:
        Aws().client("elbv2")

    assert raised.value.message.startswith(message)
    assert raised.value.exit_code == ExitCode.USAGE
    assert raised.value.hint


def test_clients_are_shared_per_service_and_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    aws = Aws()
    fast = Config(read_timeout=2, retries={"max_attempts": 1})

    assert aws.client("elbv2") is aws.client("elbv2")
    quick = aws.client("elbv2", fast)
    assert quick is not aws.client("elbv2")
    assert quick.meta.config.read_timeout == 2
    assert quick.meta.config.retries == {"total_max_attempts": 2, "mode": "adaptive"}
    assert aws.client("elbv2").meta.config.read_timeout == 30


def test_a_client_for_a_freed_config_is_never_handed_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    aws = Aws()
    timeouts = []
    for seconds in range(1, 30):
        # Each Config is dropped by the caller at once; were its id reused,
        # a client with another timeout would come back.
        client = aws.client("sts", Config(read_timeout=seconds))
        timeouts.append(client.meta.config.read_timeout)

    assert timeouts == list(range(1, 30))
