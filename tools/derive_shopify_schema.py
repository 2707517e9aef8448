#!/usr/bin/env python3
"""Derive the sandbox's committed copy of the Shopify Admin GraphQL schema.

Reads the real introspection result (``shopify-admin-2026-10.introspection.json.gz``,
see ``../shared/contracts/README.md``) and writes
``sandbox/ordersync_sandbox/schema/admin-2026-10.introspection.min.json.gz``.

The derived form is the *complete* schema (every type, field, argument, input
field, enum value, directive and deprecation flag), with only the human
documentation removed: every ``description`` is set to null. Descriptions play no
part in parsing, validation or execution, so validation against the derived schema
is identical to validation against the original. It stays an introspection result
(not printed SDL) because graphql-core builds a client schema from it in ~0.5 s,
while parsing the equivalent 0.8 MB of SDL takes ~1.6 s.

The output is byte-for-byte deterministic (compact JSON, gzip mtime 0), so
``tests/unit/test_graphql_documents.py`` can check that the committed file is what
this script produces.

Usage (from the repository root)::

    python tools/derive_shopify_schema.py [SOURCE] [--output PATH] [--check]

``SOURCE`` defaults to ``../shared/contracts/shopify-admin-2026-10.introspection.json.gz``
relative to the repository root. ``--check`` writes nothing and exits 1 when the
committed file is out of date.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
API_VERSION = "2026-10"
DEFAULT_SOURCE = (
    REPO_ROOT.parent / "shared" / "contracts" / f"shopify-admin-{API_VERSION}.introspection.json.gz"
)
DEFAULT_OUTPUT = (
    REPO_ROOT / "sandbox" / "ordersync_sandbox" / "schema" / f"admin-{API_VERSION}.introspection.min.json.gz"
)


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (None if k == "description" else _strip_descriptions(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def derive_json(source: Path | str = DEFAULT_SOURCE) -> bytes:
    """The derived introspection document (uncompressed UTF-8 JSON bytes)."""
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    data = raw.get("data", raw)
    if "__schema" not in data:
        raise ValueError(f"{source}: not a GraphQL introspection result (no __schema)")
    derived = {"data": _strip_descriptions(data)}
    return json.dumps(derived, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def gzip_bytes(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source", nargs="?", default=str(DEFAULT_SOURCE), help="introspection .json.gz (default: %(default)s)"
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="derived file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only check that --output is up to date")
    args = parser.parse_args(argv)

    payload = derive_json(args.source)
    out = Path(args.output)
    if args.check:
        current = gzip.decompress(out.read_bytes()) if out.exists() else b""
        if current != payload:
            print(f"{out} is out of date; run tools/derive_shopify_schema.py", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip_bytes(payload))
    print(f"wrote {out} ({out.stat().st_size:,} bytes gzipped, {len(payload):,} bytes JSON)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
