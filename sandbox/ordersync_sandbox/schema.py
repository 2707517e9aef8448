"""The Shopify Admin GraphQL 2026-10 schema, as the sandbox and the project's tests load it.

The schema is built from ``schema/admin-2026-10.introspection.min.json.gz``, the
complete introspection result of the real API with the documentation text removed,
derived by ``tools/derive_shopify_schema.py`` from
``../shared/contracts/shopify-admin-2026-10.introspection.json.gz``. Validation
against it is identical to validation against the original (descriptions play no
part in validation). Loading takes about half a second; the result is cached.
"""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

from graphql import GraphQLError, GraphQLSchema, build_client_schema, parse, validate

API_VERSION = "2026-10"
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / f"admin-{API_VERSION}.introspection.min.json.gz"

_lock = threading.Lock()
_cache: dict[str, GraphQLSchema] = {}


def schema_from_introspection_file(path: str | Path) -> GraphQLSchema:
    """Build a schema from a gzipped (or plain) introspection JSON file, uncached."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    schema = build_client_schema(raw.get("data", raw), assume_valid=True)
    # The real schema trips graphql-core's strict self-check (validate_schema), which
    # validate() would run first; mark it as already checked and clean.
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


def load_schema(path: str | Path | None = None) -> GraphQLSchema:
    """The Shopify Admin schema (cached per path). ``path`` defaults to the committed file."""
    key = str(Path(path).resolve()) if path else str(SCHEMA_FILE)
    with _lock:
        schema = _cache.get(key)
        if schema is None:
            schema = _cache[key] = schema_from_introspection_file(key)
        return schema


def validation_errors(source: str, schema: GraphQLSchema | None = None) -> list[GraphQLError]:
    """Parse and validate ``source``; the GraphQLErrors (syntax error or validation errors)."""
    schema = schema or load_schema()
    try:
        document = parse(source)
    except GraphQLError as exc:
        return [exc]
    return list(validate(schema, document))


def validate_document(source: str, schema: GraphQLSchema | None = None) -> list[str]:
    """Error messages for ``source`` against the schema; ``[]`` means Shopify would accept it."""
    out = []
    for err in validation_errors(source, schema):
        loc = f" ({err.locations[0].line}:{err.locations[0].column})" if err.locations else ""
        out.append(f"{err.message}{loc}")
    return out
