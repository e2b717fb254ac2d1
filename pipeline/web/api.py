"""The JSON API over the report registry (pipeline/store/registry.py): request validation,
answers, and the OpenAPI document, generated from the same registry so it cannot drift."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from pipeline.store.registry import CSV, REPORTS, Report
from pipeline.store.reports import ReportQuery


class BadRequest(ValueError):
    """A request parameter is invalid; the message is safe to show."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
            for e in errors))
        self.errors = errors


def parse_query(params: Mapping[str, str], takes_query: bool = True,
                sorts: tuple[str, ...] | None = None) -> ReportQuery:
    """Validate query-string parameters; unknown names and bad values are a BadRequest.
    `sorts`: the columns the report sorts by (None: do not check)."""
    if not takes_query and params:
        raise BadRequest([{"loc": [k], "msg": f"unknown parameter {k!r}"} for k in params])
    if replaced := [k for k in ("start", "end") if k in params]:
        raise BadRequest([{"loc": [k], "msg": "start/end were replaced by one parameter, "
                           "range=START/DURATION (e.g. range=2026-11-01/P30D)"}
                          for k in replaced])
    try:
        query = ReportQuery.model_validate(dict(params))
    except ValidationError as exc:
        raise BadRequest([{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(
            include_url=False, include_context=False, include_input=False)]) from exc
    if sorts is not None and query.sort is not None and query.sort not in sorts:
        known = ", ".join(sorts) or "none"
        raise BadRequest([{"loc": ["sort"],
                           "msg": f"unknown sort {query.sort!r}; this report sorts by {known}"}])
    return query


RANGE_EXAMPLES = {
    "preset": {"summary": "The last 30 days", "value": "30d"},
    "month": {"summary": "November 2026 (UTC)", "value": "2026-11-01/P30D"},
    "hours": {"summary": "36 hours from 06:00 at UTC+1", "value": "2026-11-01T06:00+01:00/P1DT12H"},
    "year": {"summary": "A leap year, the longest window", "value": "2028-01-01/P366D"},
}


def answer_json(route: Report, result: Any) -> Any:
    return TypeAdapter(route.answer).dump_python(result, mode="json")


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 for every route, from the models themselves."""
    components: dict[str, Any] = {}

    def schema_of(form: Any) -> dict[str, Any]:
        schema = TypeAdapter(form).json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        return schema

    query_schema = schema_of(ReportQuery)

    def query_params(route: Report) -> list[dict[str, Any]]:
        """The route's parameters, exactly what it accepts: `sort` only where the report
        sorts, as the list of its columns."""
        params = []
        for name, prop in query_schema["properties"].items():
            if name == "sort":
                if not route.sorts:
                    continue
                prop = {**prop, "type": "string", "enum": list(route.sorts)}
                prop.pop("anyOf", None)
                prop.pop("maxLength", None)
                prop.pop("default", None)
            params.append({"name": name, "in": "query", "required": False, "schema": prop,
                           **({"description": prop["description"]}
                              if "description" in prop else {}),
                           **({"examples": RANGE_EXAMPLES} if name == "range" else {})})
        return params

    error = {"description": "Invalid parameters", "content": {"application/json": {
        "schema": {"type": "object", "properties": {
            "error": {"type": "string"}, "details": {"type": "array"}}}}}}
    paths: dict[str, Any] = {}
    for route in REPORTS:
        content = ({CSV: {"schema": {"type": "string"}}} if route.media == CSV else
                   {route.media: {"schema": schema_of(route.answer)}})
        # 400 for all: a report without parameters refuses unknown ones.
        responses = {"200": {"description": "OK", "content": content}, "400": error}
        paths[route.path] = {"get": {
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": query_params(route) if route.takes_query else [],
            "responses": responses,
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "smtp-auth-insights", "version": "1",
                 "description": "The SMTP AUTH clients report, live, for any mail estate."},
        "paths": paths,
        "components": {"schemas": components},
    }

