"""The Pulumi project on disk: where it is, which environments it has, and
what each environment's config file says.

An environment is any ``Pulumi.<env>.yaml`` next to ``Pulumi.yaml``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tapctl.errors import ConfigError, UsageError

PROJECT_FILE = "Pulumi.yaml"
CONFIG_NAMESPACE = "tap"
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z", re.ASCII)
MAX_ENV_NAME = 64


@dataclass(frozen=True)
class Project:
    root: Path
    name: str

    @property
    def state_dir(self) -> Path:
        """Folder of the embedded default (file) backend; git-ignored."""
        return self.root / ".pulumi-state"

    def environments(self) -> list[str]:
        names = (path.name[len("Pulumi.") : -len(".yaml")] for path in self._configs())
        return sorted(name for name in names if _ENV_NAME.match(name))

    def config_path(self, env: str) -> Path:
        check_env_name(env)
        known = self.environments()
        if env not in known:
            listed = ", ".join(known) or "none"
            # One line: the known names are the fix; a new file is the other.
            raise UsageError(
                f"unknown environment {env!r}; known environments: {listed} "
                f"(or add Pulumi.{env}.yaml)"
            )
        return self.root / f"Pulumi.{env}.yaml"

    def load_config(self, env: str) -> dict[str, Any]:
        """The ``config:`` map of an environment, keys as written (``tap:x``)."""
        path = self.config_path(env)
        document = _read_yaml(path)
        config = document.get("config") or {}
        if not isinstance(config, dict):
            raise ConfigError(f"{path.name}: 'config' must be a mapping", key="config")
        return {str(key): value for key, value in config.items()}

    def environment_suffix(self, env: str) -> str:
        """The suffix in every physical name: the stack name unless the
        config overrides it."""
        configured = self.load_config(env).get(f"{CONFIG_NAMESPACE}:environmentSuffix")
        return configured if isinstance(configured, str) and configured else env

    def _configs(self) -> list[Path]:
        return [
            path
            for path in self.root.glob("Pulumi.*.yaml")
            if path.name != PROJECT_FILE and path.is_file()
        ]


def check_env_name(env: str) -> str:
    """Environment names become file and stack names: keep them plain."""
    if len(env) > MAX_ENV_NAME or not _ENV_NAME.match(env):
        raise UsageError(
            f"invalid environment name {env!r:.40}",
            hint=f"use letters, digits, '.', '_' and '-' (at most {MAX_ENV_NAME})",
        )
    return env


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path.name}: not UTF-8 text", hint="save it as UTF-8"
        ) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path.name}{where}: not valid YAML", hint="fix the file's syntax"
        ) from err
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name}: expected a mapping at the top level")
    return document


def find_project(explicit: str | os.PathLike[str] | None = None) -> Project:
    """The project named by ``explicit`` or ``TAPCTL_PROJECT_DIR``, else the
    nearest folder at or above the working directory holding ``Pulumi.yaml``."""
    chosen = explicit or os.environ.get("TAPCTL_PROJECT_DIR")
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if not (root / PROJECT_FILE).is_file():
            raise UsageError(
                f"no {PROJECT_FILE} in {root}",
                hint="point --project-dir (or TAPCTL_PROJECT_DIR) at the project",
            )
        return _load(root)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return _load(folder)
    raise UsageError(
        f"no {PROJECT_FILE} in {here} or any folder above it",
        hint="run tapctl inside the project or pass --project-dir",
    )


def _load(root: Path) -> Project:
    document = _read_yaml(root / PROJECT_FILE)
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"{root / PROJECT_FILE}: 'name' must be the project's name (a string)",
            key="name",
        )
    return Project(root=root, name=name)
