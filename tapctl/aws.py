"""AWS access: one boto3 session from the standard environment.

Credentials, region and endpoint come from where every AWS tool reads them
(``AWS_PROFILE``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``,
the credentials chain). There is no test-only switch: tests point
``AWS_ENDPOINT_URL`` at a local AWS API like any user could.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from tapctl.errors import AwsError, UsageError

#: Retries and timeouts of every client, unless a caller adjusts them.
RETRY_MODE = "adaptive"
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30


class Aws:
    """Clients from one session, created once each (thread-safe)."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.session = session or _session_from_environment()
        self._clients: dict[tuple[str, int], tuple[Config | None, Any]] = {}
        self._lock = threading.Lock()
        if not self.session.region_name:
            raise UsageError(
                "no AWS region configured",
                hint="set AWS_REGION (or AWS_DEFAULT_REGION, or a profile region)",
            )

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client with adaptive retries; ``config`` adjusts them (for
        example shorter timeouts on a path that must fail fast)."""
        key = (service, id(config))
        with self._lock:
            if key not in self._clients:
                client = _new_client(self.session, service, _with(config))
                # Keeping the config alive keeps its id from being reused.
                self._clients[key] = (config, client)
            return self._clients[key][1]


def _with(adjust: Config | None) -> Config:
    """A fresh Config per client (botocore rewrites the retries mapping it is
    given), with ``adjust``'s timeouts and attempts where it sets them."""
    retries: Any = {"mode": RETRY_MODE, "max_attempts": MAX_ATTEMPTS}
    base = Config(
        retries=retries, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT
    )
    if adjust is None:
        return base
    wanted: dict[str, Any] = dict(getattr(adjust, "retries", None) or {})
    if "total_max_attempts" in wanted:
        retries.pop("max_attempts")
    merged: Any = {**retries, **wanted}
    return base.merge(adjust).merge(Config(retries=merged))


def _session_from_environment() -> boto3.session.Session:
    # botocore reads only AWS_DEFAULT_REGION; AWS_REGION wins over it and
    # over a profile's region, as it does for the AWS CLI and SDKs.
    region = os.environ.get("AWS_REGION") or None
    try:
        return boto3.session.Session(region_name=region)
    except botocore.exceptions.ProfileNotFound as error:
        raise UsageError(
            f"AWS profile {error.kwargs.get('profile')!r} not found",
            hint="fix AWS_PROFILE or add the profile to your AWS config",
        ) from error
    except botocore.exceptions.ConfigParseError as error:
        raise UsageError(f"cannot parse the AWS config: {error}") from error


def _new_client(session: boto3.session.Session, service: str, config: Config) -> Any:
    try:
        return session.client(service, config=config)  # type: ignore[call-overload]
    except botocore.exceptions.InvalidRegionError as error:
        raise UsageError(
            f"invalid AWS region {session.region_name!r}",
            hint="set AWS_REGION to a region name such as us-east-1",
        ) from error
    except ValueError as error:  # botocore's word for a malformed endpoint URL
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        raise UsageError(
            f"invalid AWS endpoint {endpoint!r:.80}: {error}",
            hint="set AWS_ENDPOINT_URL to a URL such as http://127.0.0.1:5000",
        ) from error
    except botocore.exceptions.BotoCoreError as error:
        raise UsageError(f"cannot set up the AWS {service} client: {error}") from error


def describe_aws_error(error: Exception) -> str:
    """One line for an AWS failure, for check details and error messages."""
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get("Error", {})
        code = info.get("Code", "Error")
        message = info.get("Message", "")
        return f"{code}: {message}" if message else str(code)
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found"
    if isinstance(error, botocore.exceptions.EndpointConnectionError):
        return (
            f"cannot connect to {error.kwargs.get('endpoint_url', 'the AWS endpoint')}"
        )
    return str(error) or type(error).__name__


@contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Turn botocore's exceptions into one-line ``AwsError``s."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as error:
        raise AwsError(
            f"{action}: no AWS credentials found",
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ) from error
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    ) as error:
        raise AwsError(
            f"{action}: {describe_aws_error(error)}",
            hint="check AWS_ENDPOINT_URL, the region and the network",
        ) from error
    except botocore.exceptions.ClientError as error:
        raise AwsError(f"{action}: {describe_aws_error(error)}") from error
    except botocore.exceptions.BotoCoreError as error:
        raise AwsError(f"{action}: {error}") from error
