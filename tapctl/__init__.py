"""tapctl: plan, deploy, verify and roll back the TAP service on AWS."""

__version__ = "0.1.0"
