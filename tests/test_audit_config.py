"""The audit config: the init template loads, and every mistake names the file and key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from msgtrack.audit.config import RULE_NAMES, load_config, render_template
from msgtrack.errors import ConfigError


def test_template_loads_with_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "audit.toml"
    path.write_text(render_template(logs=["logs/EX01", "C:\\Logs"], zone="Europe/Berlin",
                                    accepted_domains=["contoso.com", "@Fabrikam.com"]))
    cfg = load_config(path)
    assert cfg.zone == "Europe/Berlin"
    assert cfg.output == tmp_path / "audit-out"
    assert [f.display for f in cfg.source.logs] == ["logs/EX01", "C:\\Logs"]
    assert cfg.source.logs[0].path == str(tmp_path / "logs" / "EX01")
    assert cfg.accepted_domains == {"contoso.com", "fabrikam.com"}
    assert set(cfg.rules) == set(RULE_NAMES) and all(r.enabled for r in cfg.rules.values())
    assert cfg.rules["smime-activesync-reply"]["reply_prefixes"][:2] == ("RE:", "AW:")
    assert ipaddress.ip_network("10.0.0.0/8") in cfg.internal_ranges
    assert not cfg.notify.enabled


def test_template_with_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "audit.toml"
    path.write_text(render_template(profile="prod"))
    cfg = load_config(path)
    assert cfg.source.remote and cfg.source.profile == "prod"


@pytest.mark.parametrize(("toml", "message"), [
    ('[audit]\nzone = "Mars/Olympus"\n[source]\nlogs=["x"]',
     '[audit] zone: unknown time zone'),
    ('[source]\nlogs=["x"]\n[rules.volume-spike]\nfactor = "x"',
     "[rules.volume-spike] factor: expected a number > 0, got 'x'"),
    ('[source]\nlogs=["x"]\n[rules.anonymous-submission]\nallow_ips = ["10.0.0.300"]',
     "[rules.anonymous-submission] allow_ips: not an IP address or network: '10.0.0.300'"),
    ('[source]\nlogs=["x"]\n[rules.new-submiter]\nenabled = false',
     "unknown rule(s): new-submiter"),
    ('[source]\nlogs=["x"]\n[rules.cleartext-login]\nallow_ip = []',
     "[rules.cleartext-login] unknown key(s): allow_ip"),
    ('[source]\nlogs=["x"]\n[notify]\nenabled = true\nhost = "smtp"\nfrom = "a@b"\npassword = "x"',
     "[notify] holds a secret (password)"),
    ('[source]\nlogs=["x"]\n[notify]\nenabled = true\nhost = "smtp"\nfrom = "a@b"',
     "[notify] to: required when notification is enabled"),
    ('[source]\nlogs=["x"]\nprofile = "prod"', "names both log folders and remote servers"),
    ('[audit]\nfail_severity = "urgent"\n[source]\nlogs=["x"]',
     "[audit] fail_severity: expected one of info, low, medium, high"),
    ('[audit]\nzone = "UTC"', "no [source] table"),
    ('[audit\n', "not valid TOML"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "audit.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.hint and "audit init" in info.value.hint
