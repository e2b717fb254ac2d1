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

