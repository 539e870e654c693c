"""AWS access: one boto3 session from the standard environment.

Credentials, region and endpoint come from where every AWS tool reads them
(``AWS_PROFILE``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``,
the credentials chain). There is no test-only switch: tests point
``AWS_ENDPOINT_URL`` at a local AWS API like any user could.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from tapctl.errors import AwsError, UsageError

RETRIES = Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
)


class Aws:
    """Clients from one session, created once each (thread-safe)."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self.session = session or boto3.session.Session()
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        if not self.session.region_name:
            raise UsageError(
                "no AWS region configured",
                hint="set AWS_REGION (or AWS_DEFAULT_REGION, or a profile region)",
            )

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(
                    service,  # type: ignore[call-overload]
                    config=RETRIES,
                )
            return self._clients[service]


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
            hint="check AWS_ENDPOINT_URL / AWS_REGION and the network",
        ) from error
    except botocore.exceptions.ClientError as error:
        raise AwsError(f"{action}: {describe_aws_error(error)}") from error
    except botocore.exceptions.BotoCoreError as error:
        raise AwsError(f"{action}: {error}") from error
