"""Request validation against the report registry."""

from __future__ import annotations

import pytest

from pipeline.store.registry import BY_NAME
from pipeline.web import api


def test_unknown_sort_is_a_clear_400_naming_the_choices():
    route = BY_NAME["volume"]
    assert api.parse_query({"sort": "tls12"}, True, route.sorts).sort == "tls12"
    with pytest.raises(api.BadRequest, match="unknown sort 'colour'; this report sorts by "
                                             "sender, domain, messages"):
        api.parse_query({"sort": "colour"}, True, route.sorts)
    with pytest.raises(api.BadRequest, match="sorts by none"):
        api.parse_query({"sort": "failures"}, True, BY_NAME["failures"].sorts)



def test_the_openapi_document_says_exactly_what_each_route_accepts():
    """Published pattern == validator, `sort` only where a report sorts and only its columns;
    every documented example of `range` is accepted."""
    from pipeline.store.registry import REPORTS
    from pipeline.store.reports.query import RANGE_PATTERN

    paths = api.openapi()["paths"]
    for route in REPORTS:
        params = {p["name"]: p for p in paths[route.path]["get"]["parameters"]}
        if not route.takes_query:
            assert params == {}
            continue
        assert params["range"]["schema"]["pattern"] == RANGE_PATTERN
        for example in params["range"]["examples"].values():
            api.parse_query({"range": example["value"]}, True, route.sorts)
        assert "start" not in params and "end" not in params
        if route.sorts:
            assert params["sort"]["schema"]["enum"] == list(route.sorts)
            for column in route.sorts:
                api.parse_query({"sort": column}, True, route.sorts)
        else:
            assert "sort" not in params
            with pytest.raises(api.BadRequest):
                api.parse_query({"sort": "sender"}, True, route.sorts)
