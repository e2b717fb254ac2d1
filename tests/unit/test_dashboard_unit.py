"""The dashboard's server side without a server: access control, the static file table, and
the report parameters the page sends."""

from __future__ import annotations

import base64

import pytest

from pipeline.settings import Settings
from pipeline.store.registry import BY_NAME
from pipeline.web import api
from pipeline.web.access import Access
from pipeline.web.static import STATIC, static_files


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


def test_static_table_holds_the_page_and_the_vendored_chart_library_with_its_licence():
    files = static_files()
    assert files[""] == files["index.html"]
    assert {"app.js", "app.css", "vendor/chart.js/chart.umd.min.js",
            "vendor/chart.js/LICENSE.md"} <= set(files)
    assert files["app.js"][1] == "text/javascript"
    assert b"MIT" in files["vendor/chart.js/LICENSE.md"][0]
    # Only files under the static directory, by relative name: no traversal possible.
    assert all(not name.startswith(("/", "..")) for name in files)
    html = (STATIC / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing from a CDN


def test_unknown_sort_is_a_clear_400_naming_the_choices():
    route = BY_NAME["volume"]
    assert api.parse_query({"sort": "tls12"}, True, route.sorts).sort == "tls12"
    with pytest.raises(api.BadRequest, match="unknown sort 'colour'; this report sorts by "
                                             "sender, domain, messages"):
        api.parse_query({"sort": "colour"}, True, route.sorts)
    with pytest.raises(api.BadRequest, match="sorts by none"):
        api.parse_query({"sort": "failures"}, True, BY_NAME["failures"].sorts)
