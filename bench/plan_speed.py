"""How much `tapctl plan` costs beyond importing what it must import.

The floor is a fresh interpreter that imports tapctl's planner and exactly
the pulumi_aws modules that planning the environment loads; the measured run
is `tapctl plan --env ENV --json` in a fresh interpreter. Both are timed
several times, interleaved, in this one run, and the ratio of the medians is
printed, so the figure does not depend on how fast this machine is.

    python bench/plan_speed.py [--env dev] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LOADED = """
import json, sys
from tapctl.planner import plan_environment
from tapctl.project import find_project
plan_environment(find_project({root!r}), {env!r})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pulumi_aws"))))
"""


def loaded_modules(env: str) -> list[str]:
    code = _LOADED.format(root=str(ROOT), env=env)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    imports = ["tapctl.planner", *loaded_modules(args.env)]
    floor_cmd = [sys.executable, "-c", "; ".join(f"import {m}" for m in imports)]
    plan_cmd = [sys.executable, "-m", "tapctl", "-q", "plan", "--env", args.env]
    plan_cmd.append("--json")

    floors, plans = [], []
    for _ in range(args.runs):
        floors.append(timed(floor_cmd))
        plans.append(timed(plan_cmd))

    floor, plan = statistics.median(floors), statistics.median(plans)
    print(f"environment: {args.env}, runs: {args.runs}, modules: {len(imports)}")
    print(f"import floor median: {floor:.3f} s")
    print(f"plan median:         {plan:.3f} s")
    print(f"plan / import floor: {plan / floor:.2f}")


if __name__ == "__main__":
    main()
