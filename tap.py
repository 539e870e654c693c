"""Pulumi entry point: stack config -> TapStackArgs -> TapStack -> exports."""

import pulumi

from lib.tap_stack import TapStack, TapStackArgs

args = TapStackArgs.from_config(pulumi.Config("tap"), pulumi.get_stack())
stack = TapStack(f"tap-{args.environment_suffix}", args)
for key, value in stack.exports.items():
    pulumi.export(key, value)
