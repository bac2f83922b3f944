"""Named connection profiles in one TOML file in the platform config dir.

Layering: command-line flags beat environment variables (typer reads ``MSGTRACK_*``),
which beat the profile. A profile value is only a default for a flag. Secrets never
go in the file: a ``password`` key is refused, not silently ignored.

Example ``~/.config/msgtrack/config.toml``::

    default_profile = "prod"

    [profiles.prod]
    connect = "ex01.contoso.com"      # the /PowerShell endpoint used for discovery
    servers = ["EX01", "EX02"]        # or all_servers = true
    auth = "kerberos"
    ssl = true
    port = 443
    ca_bundle = "/etc/ssl/certs/contoso-ca.pem"
    username = "svc-tracking@CONTOSO.COM"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

from msgtrack.errors import ConfigError

_SECRET_KEYS = {"password", "secret", "passwd", "pwd"}


@dataclass(frozen=True)
class Profile:
    name: str = ""
    connect: str | None = None
    servers: tuple[str, ...] = ()
    all_servers: bool = False
    auth: str | None = None
    port: int | None = None
    ssl: bool | None = None
    ca_bundle: str | None = None
    insecure: bool | None = None
    username: str | None = None
    culture: str | None = None
    parallel: int | None = None
    workers: str | None = None
    spn_host: str | None = None


_KNOWN = {f.name for f in fields(Profile)} - {"name"}


def config_path() -> Path:
    """``$MSGTRACK_CONFIG`` or ``<user config dir>/msgtrack/config.toml``."""
    env = os.environ.get("MSGTRACK_CONFIG")
    return Path(env) if env else Path(user_config_dir("msgtrack")) / "config.toml"


def load_profile(name: str | None, path: Path | None = None) -> Profile:
    """The named profile (or the file's ``default_profile``); an empty Profile if none."""
    path = path or config_path()
    if not path.exists():
        if name:
            raise ConfigError(f"{path}: no config file, so no profile {name!r}")
        return Profile()
    # Imported here: most runs have no config file, and every run looks for one.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    name = name or data.get("default_profile")
    if not name:
        return Profile()
    raw = data.get("profiles", {}).get(name)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: no [profiles.{name}] table")
    return _profile(path, name, raw)


def _profile(path: Path, name: str, raw: dict[str, Any]) -> Profile:
    secrets = _SECRET_KEYS & {k.lower() for k in raw}
    if secrets:
        raise ConfigError(
            f"{path}: [profiles.{name}] holds a secret ({', '.join(sorted(secrets))}); "
            "secrets never go in the config file",
            hint="use MSGTRACK_PASSWORD, the system keyring, or a Kerberos keytab")
    unknown = set(raw) - _KNOWN
    if unknown:
        raise ConfigError(f"{path}: [profiles.{name}] unknown keys: {', '.join(sorted(unknown))}")
    values = dict(raw)
    if "servers" in values:
        values["servers"] = tuple(values["servers"])
    return Profile(name=name, **values)
