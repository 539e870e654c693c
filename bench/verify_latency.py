"""Does ``tapctl verify`` take about as long as its slowest check?

Starts moto's server on 127.0.0.1, builds the healthy world of
``tests/aws_world.py`` in it and gives every AWS call a fixed latency (a
botocore ``before-send`` hook on the session ``Aws`` uses). Each run times the
full verify, then every check alone, each with a fresh ``Aws`` as the command
has. Prints the medians and the ratio full / slowest single check: near 1.0
means the checks overlap, near the number of checks would mean they queue.

    python bench/verify_latency.py [--latency 0.2] [--runs 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Only the local server may be reached: fake keys, no profile, no metadata.
SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@contextmanager
def local_aws() -> Iterator[str]:
    """moto's server on 127.0.0.1 at a free port, named by AWS_ENDPOINT_URL."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(SAFE_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    try:
        yield os.environ["AWS_ENDPOINT_URL"]
    finally:
        server.stop()


def delayed_aws(latency: float) -> Any:
    """A fresh ``Aws`` whose every call waits ``latency`` before it is sent."""
    from tapctl.aws import Aws

    aws = Aws()

    def wait(**_: Any) -> None:
        time.sleep(latency)

    aws.session.events.register("before-send", wait)
    return aws


def timed_verify(outputs: Mapping[str, Any], latency: float, only: list[str]) -> float:
    from tapctl.verification import run_checks

    started = time.perf_counter()
    report = run_checks(outputs, delayed_aws(latency), env="bench", only=only)
    elapsed = time.perf_counter() - started
    broken = [c.id for c in report.checks if c.status in ("fail", "error")]
    # moto does not echo an origin access control, so that check fails here.
    if set(broken) - {"cloudfront.deployed"}:
        raise SystemExit(f"unexpected failures in the bench world: {broken}")
    return elapsed


def one_run(outputs: Mapping[str, Any], latency: float) -> tuple[float, float, str]:
    """Full verify wall time, and the slowest check alone (time and id)."""
    from tapctl.verification import CHECK_IDS

    full = timed_verify(outputs, latency, list(CHECK_IDS))
    alone = {check: timed_verify(outputs, latency, [check]) for check in CHECK_IDS}
    slowest = max(alone, key=lambda check: alone[check])
    return full, alone[slowest], slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tests import aws_world

    os.environ.update(aws_world.settled_services_env())
    with local_aws(), aws_world.health_server() as health:
        outputs = aws_world.build_world(alb_dns_name="127.0.0.1", prod_port=health.port)
        timed_verify(outputs, 0.0, ["alb.active"])  # warm imports and models
        runs = [one_run(outputs, args.latency) for _ in range(args.runs)]

    full = statistics.median(run[0] for run in runs)
    slowest = statistics.median(run[1] for run in runs)
    names = sorted({run[2] for run in runs})
    print(f"latency per AWS call:       {args.latency * 1000:.0f} ms, {args.runs} runs")
    print(f"verify, all 11 checks:      {full:.3f} s (median)")
    print(f"slowest check alone:        {slowest:.3f} s (median; {', '.join(names)})")
    print(f"ratio all / slowest alone:  {full / slowest:.2f}")


if __name__ == "__main__":
    main()
