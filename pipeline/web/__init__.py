"""web: the HTTP surface on the worker's port.

`api` is the JSON API over the report registry and its OpenAPI document, plus the CSV
writer; `dashboard` serves the static page (`static/`), sets safe headers and enforces the
Host allow-list and optional credentials; `health` answers /healthz, /readyz and writes the
status line.

May import: `pipeline.store`, `pipeline.metrics`, `pipeline.settings`, `schemas`.
"""
