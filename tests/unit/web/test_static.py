"""The static file table: the page and the vendored chart library with its licence."""

from __future__ import annotations

from pipeline.web.static import STATIC, static_files


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

