"""Access control without a server: open when nothing is configured, bearer or basic,
secrets from files, the Host allow-list."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from pipeline.settings import Settings
from pipeline.web.access import Access, allowed_hosts, host_name


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_open_when_nothing_is_configured():
    access = Access(Settings())
    assert not access.enabled and access.allows(None) and access.header() == {}


@pytest.mark.parametrize(("header", "allowed"), [
    ("Bearer t0ken", True),
    ("bearer t0ken", True),
    ("Bearer t0ken2", False),
    ("Bearer ", False),
    (basic("admin", "s3cret"), True),
    (basic("admin", "wrong"), False),
    (basic("other", "s3cret"), False),
    ("Basic not-base64!!", False),
    ("Digest abc", False),
    (None, False),
    ("", False),
])
def test_bearer_or_basic(header, allowed):
    access = Access(Settings(web_token="t0ken", web_user="admin", web_password="s3cret"))
    assert access.allows(header) is allowed


def test_secrets_come_from_files_and_never_show(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    settings = Settings(web_token_file=tmp_path / "token")
    assert Access(settings).allows("Bearer from-file")
    assert "from-file" not in repr(settings)
    assert Access(settings).header() == {"Authorization": "Bearer from-file"}


def test_basic_auth_needs_both_halves():
    with pytest.raises(ValueError, match="go together"):
        Settings(web_user="admin")


def test_undecodable_credentials_are_refused_not_an_error():
    access = Access(Settings(_env_file=None, web_token=SecretStr("t0ken")))
    assert not access.allows("Bearer \udcff\udcfe")  # what aiohttp makes of raw 0xff bytes
    assert not access.allows("Basic \udcff")
    assert access.allows("Bearer t0ken")

def test_host_names_without_ports_and_brackets():
    hosts = allowed_hosts(Settings(_env_file=None, web_allowed_hosts="mail-report.example"))
    assert {host_name(h) for h in ("127.0.0.1:6066", "[::1]:6066", "LOCALHOST",
                                   "mail-report.example:443")} <= hosts
    assert host_name("attacker.example:6066") not in hosts
