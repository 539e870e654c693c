"""How fast `tapctl rollback --outputs-file F` moves traffic, from process start.

The script starts moto's server on 127.0.0.1 behind a small WSGI wrapper that
notes when each AWS request arrives and which operation it is, builds a world
where green is live and blue is healthy, then times, in fresh interpreters:

- `python -m tapctl rollback --env dev --outputs-file F --yes`: from process
  start to the moment the listener change (ModifyListener) reaches the server,
  with the number of AWS calls that came before it, and to process exit;
- `python -m tapctl --help`: to process exit, as the baseline.

Runs are interleaved and medians compared, so the ratios do not depend on how
fast this machine is. The Pulumi CLI is not needed: without it the rollback
reports the drift and exits 0 after traffic has moved, which is the case this
measures.

    python bench/rollback_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class RequestLog:
    """WSGI middleware: (arrival time, operation) of every request."""

    def __init__(
        self, app: Callable[[Environ, StartResponse], Iterable[bytes]]
    ) -> None:
        self.app = app
        self.calls: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __call__(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        arrived = time.perf_counter()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self._lock:
            self.calls.append((arrived, _operation(environ, body)))
        return self.app(environ, start_response)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


def _operation(environ: Environ, body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    form = urllib.parse.parse_qs(body.decode(errors="replace"))
    return form.get("Action", [environ.get("PATH_INFO", "?")])[0]


def start_moto() -> tuple[str, RequestLog]:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    log = RequestLog(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, log, threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", log


def aws_environment(endpoint: str, project: Path) -> dict[str, str]:
    """Only the local endpoint and dummy credentials; no profile, no metadata."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_"))}
    env |= {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TAPCTL_PROJECT_DIR": str(project),
        "NO_COLOR": "1",
    }
    return env


def green_live_world(folder: Path) -> tuple[dict[str, Any], Path]:
    from tests.aws_world import build_world

    outputs = build_world(suffix="dev") | {"active_color": "green"}
    path = folder / "outputs.json"
    path.write_text(json.dumps(outputs))
    return outputs, path


def make_green_live(outputs: dict[str, Any]) -> None:
    import boto3

    groups = [
        {"TargetGroupArn": outputs["blue_target_group_arn"], "Weight": 0},
        {"TargetGroupArn": outputs["green_target_group_arn"], "Weight": 100},
    ]
    action: Any = {"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}
    boto3.client("elbv2").modify_listener(
        ListenerArn=outputs["prod_listener_arn"], DefaultActions=[action]
    )


def project_copy(folder: Path) -> Path:
    """The project's files in a scratch folder, so the lock stays out of the repo."""
    project = folder / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(ROOT / name, project / name)
    return project


def run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Start time and wall time of one fresh interpreter."""
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
    return started, time.perf_counter() - started


def time_rollback(
    outputs: dict[str, Any], outputs_file: Path, env: dict[str, str], log: RequestLog
) -> tuple[float, int, float]:
    """Seconds to the listener change, AWS calls before it, seconds to exit."""
    make_green_live(outputs)
    log.clear()
    command = [sys.executable, "-m", "tapctl", "rollback", "--env", "dev"]
    started, total = run([*command, "--outputs-file", str(outputs_file), "--yes"], env)
    writes = [i for i, (_, name) in enumerate(log.calls) if name == "ModifyListener"]
    if not writes:
        raise SystemExit("the rollback never changed the listener")
    arrived = log.calls[writes[0]][0]
    return arrived - started, writes[0], total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    endpoint, log = start_moto()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = aws_environment(endpoint, project_copy(folder))
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        outputs, outputs_file = green_live_world(folder)

        to_change: list[float] = []
        to_exit: list[float] = []
        help_runs: list[float] = []
        calls_before: set[int] = set()
        for _ in range(args.runs):
            change, before, total = time_rollback(outputs, outputs_file, env, log)
            to_change.append(change)
            to_exit.append(total)
            calls_before.add(before)
            help_runs.append(run([sys.executable, "-m", "tapctl", "--help"], env)[1])

    report(to_change, to_exit, help_runs, calls_before, args.runs)


def report(
    to_change: list[float],
    to_exit: list[float],
    help_runs: list[float],
    calls_before: set[int],
    runs: int,
) -> None:
    change, total, baseline = (
        statistics.median(x) for x in (to_change, to_exit, help_runs)
    )
    print(f"runs: {runs} (medians)")
    print(f"tapctl --help, start to exit:              {baseline:.3f}s")
    print(f"tapctl rollback, start to listener change: {change:.3f}s")
    print(f"tapctl rollback, start to exit:            {total:.3f}s")
    print(f"AWS calls before the listener change:      {sorted(calls_before)}")
    print(f"ratio listener change / --help:            {change / baseline:.2f}")
    print(f"ratio rollback exit / --help:              {total / baseline:.2f}")


if __name__ == "__main__":
    main()
