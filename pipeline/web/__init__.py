"""web: the HTTP surface on the worker's port.

`routes` registers every route but the live views (those are `pipeline.live.counters`');
`api` validates requests against the report registry, shapes answers and builds the OpenAPI
document; `access` enforces the Host allow-list and the optional credentials; `static`
serves the dashboard (`static/`); `health` answers /healthz and /readyz and writes the
status line.

May import: `pipeline.store`, `pipeline.metrics`, `pipeline.settings`, `schemas`.
"""
