"""Profiles and credentials: flags > environment > file; secrets never from the file or argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgtrack.cli import remote as rem
from msgtrack.config import load_profile
from msgtrack.credentials import PASSWORD_ENV, get_password
from msgtrack.errors import ConfigError, UsageError

PROFILE = """
default_profile = "prod"

[profiles.prod]
connect = "ex01.contoso.com"
servers = ["EX01", "EX02"]
auth = "ntlm"
ssl = true
port = 8443
username = "CONTOSO\\\\svc"

[profiles.lab]
all_servers = true
connect = "lab-ex.contoso.com"
auth = "kerberos"
parallel = 8
workers = "process"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(PROFILE, encoding="utf-8")
    monkeypatch.setenv("MSGTRACK_CONFIG", str(path))
    monkeypatch.setenv(PASSWORD_ENV, "pw-from-env")
    return path


def settings(**overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        profile_name=None, server=None, all_servers=False, connect=None, auth=None, port=None,
        ssl=None, ca_bundle=None, insecure=False, username=None, operation_timeout=20,
        connect_timeout=30, slice_timeout=None, slice_hours=1.0, cap=5000, parallel=None,
        retries=3, culture=None)
    args.update(overrides)
    return rem.settings(**args)  # type: ignore[arg-type]


def test_default_profile_fills_unset_flags(config: Path) -> None:
    conn, plan = settings()
    assert (conn.auth, conn.ssl, conn.port, conn.username) == ("ntlm", True, 8443, "CONTOSO\\svc")
    assert plan.servers == ("EX01", "EX02") and plan.connect == "ex01.contoso.com"
    assert conn.password == "pw-from-env"


def test_flags_beat_the_profile(config: Path) -> None:
    conn, plan = settings(server=["EX09"], auth="basic", port=443, connect="other")
    assert (conn.auth, conn.port, plan.servers, plan.connect) == ("basic", 443, ("EX09",), "other")


def test_named_profile_and_all_servers(config: Path) -> None:
    conn, plan = settings(profile_name="lab")
    assert plan.all_servers and plan.connect == "lab-ex.contoso.com" and conn.auth == "kerberos"
    assert (plan.parallel, plan.workers) == (8, "process")
    assert settings(profile_name="lab", workers="thread")[1].workers == "thread"
    assert settings()[1].workers == "auto"  # the default profile names none


def test_no_remote_request_means_no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGTRACK_CONFIG", str(tmp_path / "missing.toml"))
    assert settings() is None


def test_secret_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles.x]\nauth = "ntlm"\npassword = "hunter2"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile("x", path)
    assert "secrets never go in the config file" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_unknown_key_and_missing_profile(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[profiles.x]\nservres = ["a"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown keys: servres"):
        load_profile("x", path)
    with pytest.raises(ConfigError, match=r"no \[profiles.y\] table"):
        load_profile("y", path)


def test_basic_auth_over_http_is_refused() -> None:
    from msgtrack.sources.remote import Connection

    with pytest.raises(UsageError, match="clear text"):
        Connection(auth="basic", ssl=False, password="x").wsman_kwargs("ex01")


def test_password_is_not_in_the_connection_repr() -> None:
    from msgtrack.sources.remote import Connection

    assert "s3cret" not in repr(Connection(auth="ntlm", username="u", password="s3cret"))


def test_kerberos_needs_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert get_password("svc@CONTOSO.COM", "kerberos", interactive=False) is None


def test_no_prompt_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("msgtrack.credentials._from_keyring", lambda user: None)
    with pytest.raises(ConfigError, match="no password for bob"):
        get_password("bob", "ntlm", interactive=False)


def test_keyring_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    # The system keyring cannot exist on a CI box: keyring itself is replaced by a
    # dict-backed backend through keyring's own API, so our lookup path is real.
    import keyring
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store = {("msgtrack", "bob"): "from-keyring"}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        assert get_password("bob", "ntlm", interactive=False) == "from-keyring"
    finally:
        keyring.set_keyring(previous)
