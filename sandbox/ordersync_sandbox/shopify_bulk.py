"""Bulk query operations of the sandbox Shopify store, as the GraphQL Admin API 2026-10 runs them.

GraphQL (all validated against the real schema, priced by the normal cost model):

* ``bulkOperationRunQuery(query: String!, groupObjects: Boolean! = false)`` ->
  ``BulkOperationRunQueryPayload { bulkOperation, userErrors { field message code } }``. The new
  operation is returned ``CREATED``. ``query`` must be a valid query document against the schema and
  follow Shopify's bulk rules; otherwise ``bulkOperation`` is null and ``userErrors`` say why, each with
  ``field: ["query"]`` and ``code: INVALID`` (wording as Shopify's):

  - a document that does not parse or validate: ``"Invalid bulk query: <the GraphQL error>"`` (one
    user error per error, graphql-ruby wording as for normal requests);
  - a mutation or subscription: ``"Invalid operation type. Only `query` operations are supported."``;
  - a top-level ``node`` / ``nodes`` field: ``"Bulk queries cannot contain a top level `node` field."``;
  - no connection at all: ``"Bulk queries must contain at least one connection."``;
  - more than 5 connections: ``"Bulk queries cannot contain more than 5 connections."``;
  - connections nested more than 2 levels deep (the root connection is level 1):
    ``"Bulk queries cannot contain connections with a nesting depth greater than 2."``;
  - a connection read through ``nodes { … }`` instead of ``edges { node { … } }``: "All connection
    fields in a bulk query must select their contents using 'edges' > 'node', …";
  - a nested connection whose parent node does not select ``id`` (unaliased): "The parent 'node' field
    for a nested connection must select the 'id' field without an alias …";
  - a connection inside a list field (e.g. ``Order.fulfillments``): "Queries that contain a connection
    field within a list field are not currently supported.".

  While ``store.bulk_max_concurrent_queries`` (5, Shopify's limit since 2026-01) query operations are
  CREATED, RUNNING or CANCELING, another is refused: ``field: null``, ``code: OPERATION_IN_PROGRESS``,
  ``"A bulk query operation for this app and shop is already in progress: <their ids, comma-separated>."``
  (Shopify's sentence; before 2026-01 it named the one running operation). Match on the code.
* ``bulkOperationCancel(id: ID!)`` -> ``{ bulkOperation, userErrors { field message } }``: an operation
  in progress becomes ``CANCELING`` (its counts stop), then ``CANCELED`` after
  ``store.bulk_cancel_delay`` seconds (default 0: at the next read). A finished one: "A bulk operation
  cannot be canceled when it is completed" (``failed``, ``canceled``, ``expired``); an unknown id:
  ``field: ["id"]``, "Bulk operation does not exist".
* ``bulkOperation(id:)``, ``node(id:)`` (``... on BulkOperation``), ``bulkOperations(first/last/after/
  before, query, sortKey: CREATED_AT|COMPLETED_AT, reverse)`` - newest first by default, as Shopify's;
  search fields ``status`` (``created``, ``running``, ``completed``, ``canceling``, ``canceled``,
  ``failed``, ``expired``), ``operation_type`` (``query`` / ``mutation``), ``created_at``, ``id`` - and
  the deprecated ``currentBulkOperation(type: QUERY)`` (the most recent operation of that type).
  ``BulkOperation``: ``id``, ``type`` (QUERY), ``status``, ``errorCode``, ``createdAt``, ``completedAt``
  (COMPLETED only), ``objectCount`` and ``rootObjectCount`` (running counts, strings as UnsignedInt64),
  ``fileSize`` (bytes of the file at ``url``), ``url``, ``partialDataUrl``, ``query``.

Execution. The sandbox runs the query over the store's data when the operation is created (Shopify
reads while it runs: do not rely on either) with the store's normal resolvers, so ``orders(query:,
sortKey:, reverse:)`` filters and sorts exactly as the paged ``orders`` query does, nested connections
(``lineItems``, ``fulfillmentOrders``, …) included. Pagination arguments (``first``, ``last``,
``after``, ``before``) are ignored, as Shopify ignores them in bulk queries: every node is written.
Fields of a connection other than ``edges { node }`` (``pageInfo``, ``cursor``) are not written.

Output: JSONL, one object per line (compact JSON, UTF-8, every line ends in a newline). Each node of
the root connection is a line with its fields (nested plain objects inline); each node of a nested
connection is a line of its own with ``"__parentId"`` (last key) = the ``id`` of the node it belongs
to. With ``groupObjects: true`` every parent is directly followed by its children (depth first). With
``groupObjects: false`` (the default, as on Shopify since 2026-01) the sandbox writes every root object
first and then the children, **the last parent's children first**, so a client that assumes children
follow their parent breaks here as it would on Shopify: rebuild the tree from ``__parentId``.

Lifecycle, on ``store.clock`` (monotonic seconds; nothing runs in the background, the status is worked
out whenever an operation is read):

* ``CREATED`` for ``store.bulk_start_delay`` seconds (default 0.1), then ``RUNNING``: ``objectCount``
  grows at ``store.bulk_objects_per_second`` (default 1000; ``rootObjectCount`` counts the root
  objects among them, in file order), then ``COMPLETED`` once every object is written (after
  ``start_delay + objects / rate`` seconds), with ``completedAt``, ``fileSize`` and ``url``. Nothing
  matched: ``COMPLETED``, ``objectCount`` ``"0"``, ``url`` and ``fileSize`` null.
* ``url`` serves the file over the store's own loopback server (``GET /bulk-operation-outputs/<token>-
  final?Expires=…&Signature=…``; ``partialDataUrl``: ``…-partial``): no access token (a signed URL, like
  Shopify's storage URLs), ``Content-Type: application/jsonl``, logged in the request log with the
  operation label ``bulk-operation-output`` (so server faults can target downloads).
* ``EXPIRED`` ``store.bulk_url_lifetime`` seconds (default 7 days, Shopify's) after an operation
  completed or failed, or at once with ``store.expire_bulk_operation(id)``: ``url`` and
  ``partialDataUrl`` become null and the old URLs answer 400 ``ExpiredToken`` (as an expired signed
  storage URL does); an unknown token is 404 ``NoSuchKey``.
* ``FAILED`` only when told: ``store.fail_next_bulk_operation(error_code="INTERNAL_SERVER_ERROR",
  partial=True, after_objects=None)`` makes the next ``bulkOperationRunQuery`` fail (``errorCode``
  ``INTERNAL_SERVER_ERROR``, ``TIMEOUT`` or ``ACCESS_DENIED``) after writing ``after_objects`` objects
  (default: half of them when ``partial``, else none); with ``partial`` and at least one object written
  ``partialDataUrl`` serves those first lines, else it is null. ``url``, ``fileSize`` stay null.
* A refused start when told: ``store.refuse_next_bulk_run(code="LIMIT_REACHED")`` makes the next
  ``bulkOperationRunQuery`` answer ``bulkOperation: null`` with one userError of that
  ``BulkOperationUserErrorCode`` (the message is the sandbox's wording; match on the code).
* ``CANCELING`` / ``CANCELED`` through ``bulkOperationCancel``.

Cost: bulk operations run outside the rate limit. The mutation and every poll are charged as any
document is (``cost.py``: ``bulkOperationRunQuery { bulkOperation { id status } userErrors { … } }``
requests 12); the objects the operation reads and writes cost nothing, and the inner query's own cost
is neither checked against the single-query limit nor charged.

Python: ``store.list_bulk_operations()`` (public fields, oldest first), ``store.bulk_operation(id)``,
``store.bulk_output(id, partial=False)`` (the file's bytes, ``None`` when there is none),
``store.fail_next_bulk_operation(...)``, ``store.expire_bulk_operation(id)``, the settings above.
Control endpoints (``server.py``): ``GET /_sandbox/bulk-operations`` (the list), ``POST
/_sandbox/bulk-operations/fail-next`` (``{"error_code", "partial", "after_objects"}``), ``POST
/_sandbox/bulk-operations/expire`` (``{"id"}``), ``GET|POST /_sandbox/bulk-operations/settings``
(``objects_per_second``, ``start_delay``, ``cancel_delay``, ``url_lifetime``, ``max_concurrent_queries``).

Not implemented: ``bulkOperationRunMutation`` (and staged uploads), the ``bulk_operations/finish``
webhook, the 10-day run limit, the size limit of the query text, a check that the query has exactly
one top-level field (several are executed and written one after another), variables in the inner
query (it has none on Shopify either; a document declaring some is executed with none).

Sources: the 2026-10 schema's descriptions; shopify.dev's bulk operations guide (5 concurrent query
operations per shop since 2026-01, at least one connection, at most 5 connections nested at most 2
deep, no top-level ``node``/``nodes``, ``__parentId``, results kept 7 days) and the changelog making
``groupObjects`` default to false in 2026-01. The ``OPERATION_IN_PROGRESS`` sentence is the one
clients in the wild match on; the other rule messages are the wording observed from Shopify by a
public Shopify API emulator's conformance captures, not Shopify's documentation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
)

from . import search as S
from .base import Request, Response
from .cost import is_connection_type, select_operation

MAX_CONCURRENT_QUERIES = 5
MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2
DEFAULT_OBJECTS_PER_SECOND = 1000.0
DEFAULT_START_DELAY = 0.1
URL_LIFETIME = 7 * 24 * 3600.0
ERROR_CODES = ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT")
IN_PROGRESS = ("CREATED", "RUNNING", "CANCELING")
OUTPUT_PREFIX = "/bulk-operation-outputs/"
OUTPUT_LABEL = "bulk-operation-output"
IN_PROGRESS_MESSAGE = "A bulk query operation for this app and shop is already in progress"


# ----------------------------------------------------------------------------------------------
# the query: Shopify's bulk rules
# ----------------------------------------------------------------------------------------------


def _user_error(message: str, fld: list[str] | None = None, code: str | None = "INVALID") -> dict[str, Any]:
    return {"field": fld if fld is not None else ["query"], "message": message, "code": code}


class _Selections:
    """Fields of a selection set with their definitions, fragments expanded in place."""

    def __init__(self, schema: Any, doc: DocumentNode) -> None:
        self.schema = schema
        self.frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}

    def fields(
        self, parent: Any, sel: SelectionSetNode | None, seen: tuple = ()
    ) -> list[tuple[FieldNode, Any]]:
        out: list[tuple[FieldNode, Any]] = []
        for s in sel.selections if sel else ():
            if isinstance(s, FieldNode):
                fdef = (getattr(parent, "fields", None) or {}).get(s.name.value)
                if fdef is not None:
                    out.append((s, fdef))
                continue
            if isinstance(s, FragmentSpreadNode):
                frag = self.frags.get(s.name.value)
                if frag is None or s.name.value in seen:
                    continue
                tc, sub, seen = frag.type_condition, frag.selection_set, seen + (s.name.value,)
            else:
                assert isinstance(s, InlineFragmentNode)
                tc, sub = s.type_condition, s.selection_set
            owner = self.schema.get_type(tc.name.value) if tc is not None else parent
            out.extend(self.fields(owner or parent, sub, seen))
        return out

    def by_key(
        self, parent: Any, sel: SelectionSetNode | None
    ) -> dict[str, tuple[Any, list[SelectionSetNode]]]:
        """Response key -> (field definition, every selection set asked of it)."""
        out: dict[str, tuple[Any, list[SelectionSetNode]]] = {}
        for fnode, fdef in self.fields(parent, sel):
            key = (fnode.alias or fnode.name).value
            entry = out.setdefault(key, (fdef, []))
            if fnode.selection_set is not None:
                entry[1].append(fnode.selection_set)
        return out


def _merged(sets: list[SelectionSetNode]) -> SelectionSetNode | None:
    if not sets:
        return None
    if len(sets) == 1:
        return sets[0]
    return SelectionSetNode(selections=tuple(s for ss in sets for s in ss.selections))


@dataclass
class _Analysis:
    connections: int = 0
    depth: int = 0
    via_nodes: list[str] = field(default_factory=list)
    without_parent_id: list[str] = field(default_factory=list)
    in_list: bool = False


def _analyze_bulk(sel: _Selections, root: Any, op: OperationDefinitionNode) -> _Analysis:
    a = _Analysis()

    def walk(
        parent: Any, ss: SelectionSetNode | None, level: int, in_list: bool, parent_has_id: bool
    ) -> None:
        for fnode, fdef in sel.fields(parent, ss):
            named = get_named_type(fdef.type)
            if is_leaf_type(named):
                continue
            if is_connection_type(named):
                a.connections += 1
                a.depth = max(a.depth, level + 1)
                if in_list:
                    a.in_list = True
                if level >= 1 and not parent_has_id:
                    a.without_parent_id.append(fnode.name.value)
                for cf, cdef in sel.fields(named, fnode.selection_set):
                    if cf.name.value == "nodes":
                        a.via_nodes.append(fnode.name.value)
                    elif cf.name.value == "edges":
                        edge_type = get_named_type(cdef.type)
                        for ef, edef in sel.fields(edge_type, cf.selection_set):
                            if ef.name.value == "node":
                                node_type = get_named_type(edef.type)
                                has_id = any(
                                    f.name.value == "id" and f.alias is None
                                    for f, _ in sel.fields(node_type, ef.selection_set)
                                )
                                walk(node_type, ef.selection_set, level + 1, False, has_id)
                continue
            listy = is_list_type(get_nullable_type(fdef.type))
            walk(named, fnode.selection_set, level, in_list or listy, parent_has_id)

    walk(root, op.selection_set, 0, False, False)
    return a


def check_bulk_query(
    schema: Any, text: str, implemented: tuple[str, ...]
) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    """The parsed document, or the ``BulkOperationUserError`` s Shopify answers for ``text``."""
    from .shopify import _analyze, _node_paths, _root_fields, shopify_error

    if not text.strip():
        return None, [_user_error("Invalid bulk query: syntax error, unexpected end of file")]
    doc, errors = _analyze(text)
    if errors:
        paths = _node_paths(doc) if doc is not None else None
        return None, [
            _user_error(f"Invalid bulk query: {shopify_error(e, paths)['message']}") for e in errors
        ]
    assert doc is not None
    op = select_operation(doc)
    if op is None:
        return None, [_user_error("Invalid bulk query: An operation name is required")]
    if op.operation != OperationType.QUERY:
        return None, [_user_error("Invalid operation type. Only `query` operations are supported.")]
    sel = _Selections(schema, doc)
    roots = _root_fields(doc, op)
    a = _analyze_bulk(sel, schema.query_type, op)
    out: list[dict[str, Any]] = []
    if a.via_nodes:
        listed = "', '".join(a.via_nodes)
        out.append(
            _user_error(
                "All connection fields in a bulk query must select their contents using 'edges' > 'node', "
                f"e.g: '{a.via_nodes[0]} {{ edges {{ node {{'. Selecting via 'nodes' is not supported. "
                f"Invalid connection fields: '{listed}'."
            )
        )
    top_node = [r for r in roots if r in ("node", "nodes")]
    if top_node:
        out.append(_user_error(f"Bulk queries cannot contain a top level `{top_node[0]}` field."))
    if a.depth > MAX_CONNECTION_DEPTH:
        out.append(
            _user_error(
                f"Bulk queries cannot contain connections with a nesting depth greater than "
                f"{MAX_CONNECTION_DEPTH}."
            )
        )
    if a.connections > MAX_CONNECTIONS:
        out.append(_user_error(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."))
    if a.without_parent_id:
        out.append(
            _user_error(
                "The parent 'node' field for a nested connection must select the 'id' field without an alias "
                "and must be of 'ID' return type. Connection fields without 'id': "
                f"{', '.join(a.without_parent_id)}."
            )
        )
    if a.in_list:
        out.append(
            _user_error(
                "Queries that contain a connection field within a list field are not currently supported."
            )
        )
    only_top_node = len(out) == 1 and bool(top_node)
    if a.connections == 0 and (not out or only_top_node):
        out.append(_user_error("Bulk queries must contain at least one connection."))
    if not out:
        missing = [r for r in roots if r not in implemented]
        if missing:
            out.append(
                _user_error(
                    f"Field '{missing[0]}' on type 'QueryRoot' is not implemented by the ordersync sandbox"
                )
            )
    return (None, out) if out else (doc, [])


# ----------------------------------------------------------------------------------------------
# the output: flat JSONL with __parentId
# ----------------------------------------------------------------------------------------------


@dataclass
class _Record:
    line: dict[str, Any]
    children: list[_Record] = field(default_factory=list)


def flatten(schema: Any, doc: DocumentNode, data: dict[str, Any], group: bool) -> list[tuple[bytes, bool]]:
    """The JSONL lines for an executed bulk query's ``data``: ``(line, is a root object)`` in file order."""
    sel = _Selections(schema, doc)
    op = select_operation(doc)
    assert op is not None

    def nodes_of(conn_type: Any, sets: list[SelectionSetNode], value: Any) -> list[tuple[Any, Any, Any]]:
        """(node type, node selection, node value) for each node a connection value holds."""
        out: list[tuple[Any, Any, Any]] = []
        if not isinstance(value, dict):
            return out
        for key, (cdef, csets) in sel.by_key(conn_type, _merged(sets)).items():
            if cdef is not conn_type.fields.get("edges") or not isinstance(value.get(key), list):
                continue
            edge_type = get_named_type(cdef.type)
            node_key = [
                (k, d, s)
                for k, (d, s) in sel.by_key(edge_type, _merged(csets)).items()
                if d is edge_type.fields.get("node")
            ]
            for edge in value[key]:
                for nk, ndef, nsets in node_key:
                    if isinstance(edge, dict) and isinstance(edge.get(nk), dict):
                        out.append((get_named_type(ndef.type), _merged(nsets), edge[nk]))
            break
        return out

    def clean(parent: Any, ss: SelectionSetNode | None, value: Any, owner: _Record) -> Any:
        if isinstance(value, list):
            return [clean(parent, ss, v, owner) for v in value]
        if not isinstance(value, dict):
            return value
        keys = sel.by_key(parent, ss)
        out: dict[str, Any] = {}
        for key, v in value.items():
            if key not in keys:
                out[key] = v
                continue
            fdef, sets = keys[key]
            named = get_named_type(fdef.type)
            if is_leaf_type(named):
                out[key] = v
            elif is_connection_type(named):
                for ntype, nsel, nval in nodes_of(named, sets, v):
                    owner.children.append(record(ntype, nsel, nval))
            else:
                out[key] = clean(named, _merged(sets), v, owner)
        return out

    def record(ntype: Any, nsel: SelectionSetNode | None, nval: dict[str, Any]) -> _Record:
        rec = _Record({})
        rec.line = clean(ntype, nsel, nval, rec)
        for c in rec.children:  # clean() collected them before the line (and its id) existed
            c.line["__parentId"] = rec.line.get("id")
        return rec

    roots: list[_Record] = []
    for key, (fdef, sets) in sel.by_key(schema.query_type, op.selection_set).items():
        named = get_named_type(fdef.type)
        if is_connection_type(named):
            roots.extend(record(t, s, v) for t, s, v in nodes_of(named, sets, data.get(key)))

    ordered: list[tuple[_Record, bool]] = []
    if group:

        def dfs(rec: _Record, is_root: bool) -> None:
            ordered.append((rec, is_root))
            for c in rec.children:
                dfs(c, False)

        for r in roots:
            dfs(r, True)
    else:
        ordered.extend((r, True) for r in roots)
        level = roots
        while level:
            nxt = [c for rec in reversed(level) for c in rec.children]
            ordered.extend((c, False) for c in nxt)
            level = nxt
    return [(_encode_line(rec.line), is_root) for rec, is_root in ordered]


def _encode_line(line: dict[str, Any]) -> bytes:
    if "__parentId" in line:  # Shopify writes it last
        parent = line.pop("__parentId")
        line["__parentId"] = parent
    return (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


# ----------------------------------------------------------------------------------------------
# the store side (mixed into ShopifyStore)
# ----------------------------------------------------------------------------------------------


def _xml_error(status: int, code: str, message: str) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return Response(status, body, {"Content-Type": "application/xml; charset=UTF-8"})


class BulkOperationsMixin:
    """Bulk query operations for :class:`~ordersync_sandbox.shopify.ShopifyStore` (see the module doc)."""

    # provided by ShopifyStore
    lock: Any
    clock: Any
    schema: Any
    url: str
    _id_base: int

    def _init_bulk(self) -> None:
        self.bulk_objects_per_second = DEFAULT_OBJECTS_PER_SECOND
        self.bulk_start_delay = DEFAULT_START_DELAY
        self.bulk_cancel_delay = 0.0
        self.bulk_url_lifetime = URL_LIFETIME
        self.bulk_max_concurrent_queries = MAX_CONCURRENT_QUERIES
        self.bulk_operations: list[dict[str, Any]] = []  # GraphQL-shaped, with ``_`` bookkeeping keys
        self._bulk_fail_next: dict[str, Any] | None = None
        self._bulk_refuse_next: dict[str, Any] | None = None  # the next run query's userError (refuse_next_…)
        self._bulk_mode = 0  # > 0 while a bulk query executes: connections ignore pagination
        self._bulk_key = secrets.token_bytes(16)

    # --- lifecycle ---

    def _bulk_wall(self, op: dict[str, Any], t: float) -> str:
        from .shopify import fmt_time

        return fmt_time(op["_created_dt"] + timedelta(seconds=max(0.0, t - op["_t0"])))

    def _bulk_url(self, op: dict[str, Any], kind: str) -> str:
        ended = op["_created_dt"] + timedelta(seconds=max(0.0, op["_ended_at"] - op["_t0"]))
        expires = int((ended + timedelta(seconds=self.bulk_url_lifetime)).timestamp())
        path = f"{OUTPUT_PREFIX}{op['_token']}-{kind}"
        sig = hmac.new(self._bulk_key, f"{path}{expires}".encode(), hashlib.sha256).hexdigest()
        return (
            f"{self.url}{path}?Expires={expires}&Signature={sig}"
            f"&response-content-disposition=attachment%3B+filename%3D%22bulk-{op['_num']}.jsonl%22"
            "&response-content-type=application%2Fjsonl"
        )

    def _bulk_advance(self, op: dict[str, Any]) -> dict[str, Any]:
        """Bring ``op``'s public fields up to ``store.clock`` (see the module docstring)."""
        now = self.clock()
        status = op["status"]
        if status in ("COMPLETED", "FAILED"):
            if op["_expired"] or now >= op["_ended_at"] + self.bulk_url_lifetime:
                op.update(status="EXPIRED", url=None, partialDataUrl=None)
            return op
        if status in ("CANCELED", "EXPIRED"):
            return op
        if status == "CANCELING":
            if now >= op["_cancel_done_at"]:
                op["status"] = "CANCELED"
            return op
        if now < op["_start"]:
            return op
        total = len(op["_lines"])
        fail = op["_fail"]
        limit = fail["at"] if fail else total
        rate = op["_rate"]
        end = op["_start"] + (limit / rate if rate > 0 else 0.0)
        if now >= end:
            self._bulk_counts(op, limit)
            op["_ended_at"] = end
            if fail:
                op.update(status="FAILED", errorCode=fail["error_code"])
                if fail["partial"] and limit > 0:
                    op["partialDataUrl"] = self._bulk_url(op, "partial")
            else:
                op.update(status="COMPLETED", completedAt=self._bulk_wall(op, end))
                if total:
                    op["fileSize"] = str(sum(len(line) for line in op["_lines"]))
                    op["url"] = self._bulk_url(op, "final")
            return op
        op["status"] = "RUNNING"
        self._bulk_counts(op, min(limit, math.floor((now - op["_start"]) * rate)))
        return op

    @staticmethod
    def _bulk_counts(op: dict[str, Any], n: int) -> None:
        op["objectCount"] = str(n)
        op["rootObjectCount"] = str(sum(1 for r in op["_roots"][:n] if r))

    def _bulk_all(self) -> list[dict[str, Any]]:
        return [self._bulk_advance(op) for op in self.bulk_operations]

    def _bulk_get(self, ident: Any) -> dict[str, Any] | None:
        op = next((o for o in self.bulk_operations if o["id"] == ident), None)
        return self._bulk_advance(op) if op is not None else None

    # --- GraphQL resolvers ---

    def _m_bulk_run_query(
        self, source: Any, info: Any, query: str, groupObjects: bool = False
    ) -> dict[str, Any]:
        from .shopify import QUERY_ROOT_FIELDS, gid

        doc, errors = check_bulk_query(self.schema, query, QUERY_ROOT_FIELDS)
        if errors:
            return {"bulkOperation": None, "userErrors": errors}
        assert doc is not None
        refuse, self._bulk_refuse_next = self._bulk_refuse_next, None
        if refuse is not None:
            return {"bulkOperation": None, "userErrors": [refuse]}
        busy = [o["id"] for o in self._bulk_all() if o["type"] == "QUERY" and o["status"] in IN_PROGRESS]
        if len(busy) >= self.bulk_max_concurrent_queries:
            message = f"{IN_PROGRESS_MESSAGE}: {', '.join(busy)}."
            return {
                "bulkOperation": None,
                "userErrors": [{"field": None, "message": message, "code": "OPERATION_IN_PROGRESS"}],
            }
        self._bulk_mode += 1
        try:
            result: ExecutionResult = execute(
                self.schema,
                doc,
                root_value={},
                context_value={"search": []},
                field_resolver=getattr(self, "_resolve"),  # noqa: B009 - ShopifyStore's
                type_resolver=getattr(self, "_type_of"),  # noqa: B009
            )
        finally:
            self._bulk_mode -= 1
        if result.errors:
            first: GraphQLError = result.errors[0]
            return {"bulkOperation": None, "userErrors": [_user_error(f"ordersync sandbox: {first.message}")]}
        lines = flatten(self.schema, doc, result.data or {}, bool(groupObjects))
        fail, self._bulk_fail_next = self._bulk_fail_next, None
        if fail is not None:
            at = fail["after_objects"]
            if at is None:
                at = max(1, len(lines) // 2) if fail["partial"] and lines else 0
            fail = {**fail, "at": max(0, min(int(at), len(lines)))}
        num = getattr(self, "_new_id")()  # noqa: B009 - ShopifyStore's id counter
        now = self.clock()
        op: dict[str, Any] = {
            "id": gid("BulkOperation", num),
            "type": "QUERY",
            "status": "CREATED",
            "errorCode": None,
            "createdAt": getattr(self, "_stamp")(),  # noqa: B009
            "completedAt": None,
            "objectCount": "0",
            "rootObjectCount": "0",
            "fileSize": None,
            "url": None,
            "partialDataUrl": None,
            "query": query,
            "_num": num,
            "_group": bool(groupObjects),
            "_lines": [line for line, _ in lines],
            "_roots": [is_root for _, is_root in lines],
            "_t0": now,
            "_start": now + max(0.0, float(self.bulk_start_delay)),
            "_rate": float(self.bulk_objects_per_second),
            "_created_dt": getattr(self, "_now_dt")(),  # noqa: B009
            "_token": secrets.token_hex(16),
            "_fail": fail,
            "_ended_at": None,
            "_cancel_done_at": None,
            "_expired": False,
        }
        self.bulk_operations.append(op)
        return {"bulkOperation": self._bulk_advance(op), "userErrors": []}

    def _m_bulk_cancel(self, source: Any, info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        op = self._bulk_get(id)
        if op is None:
            return {
                "bulkOperation": None,
                "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}],
            }
        if op["status"] not in IN_PROGRESS:
            message = f"A bulk operation cannot be canceled when it is {op['status'].lower()}"
            return {"bulkOperation": op, "userErrors": [{"field": None, "message": message}]}
        if op["status"] != "CANCELING":
            op["status"] = "CANCELING"
            op["_cancel_done_at"] = self.clock() + max(0.0, float(self.bulk_cancel_delay))
        return {"bulkOperation": op, "userErrors": []}

    def _bulk_filter(self, query: str | None) -> S.Filter:
        from .shopify import parse_gid

        now = getattr(self, "_now_dt")()  # noqa: B009
        handlers = {
            "id": lambda o, op, v: S.compare_id((parse_gid(o["id"]) or ("", 0))[1], op, v),
            "created_at": lambda o, op, v: S.compare_time(o.get("createdAt"), op, v, now),
            "status": lambda o, op, v: S.compare_text(o["status"].lower(), op, v),
            "operation_type": lambda o, op, v: S.compare_text(o["type"].lower(), op, v),
        }
        return S.Filter(query, handlers, lambda o, v: v.lower() in o["id"].lower())

    def _q_bulk_operations(
        self,
        source: Any,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
        sortKey: str = "CREATED_AT",
        reverse: bool = False,
        **_: Any,
    ) -> dict[str, Any]:
        flt = self._bulk_filter(query)
        getattr(self, "_search_note")(info, flt, query)  # noqa: B009
        items = flt.apply(self._bulk_all())
        key = "completedAt" if sortKey == "COMPLETED_AT" else "createdAt"
        keyed = [((o.get(key) or "", o["_num"]), o) for o in items]
        keyed.sort(key=lambda e: e[0], reverse=not reverse)  # newest first unless reversed, as Shopify's
        return getattr(self, "_connection")(  # noqa: B009 - ShopifyStore's relay pagination
            keyed, dict(first=first, after=after, last=last, before=before), descending=not reverse
        )

    def _q_current_bulk_operation(self, source: Any, info: Any, type: str = "QUERY") -> dict[str, Any] | None:  # noqa: A002
        ops = [o for o in self._bulk_all() if o["type"] == type]
        return ops[-1] if ops else None

    def _bulk_resolvers(self) -> dict[tuple[str, str], Any]:
        q, m = "QueryRoot", "Mutation"
        return {
            (q, "bulkOperation"): lambda s, i, id: self._bulk_get(id),
            (q, "bulkOperations"): self._q_bulk_operations,
            (q, "currentBulkOperation"): self._q_current_bulk_operation,
            (m, "bulkOperationRunQuery"): self._m_bulk_run_query,
            (m, "bulkOperationCancel"): self._m_bulk_cancel,
        }

    # --- the files ---

    def _bulk_download(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _xml_error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        name = request.path[len(OUTPUT_PREFIX) :]
        token, _, kind = name.rpartition("-")
        with self.lock:
            op = next((o for o in self.bulk_operations if o["_token"] == token), None)
            if op is not None:
                self._bulk_advance(op)
            if op is not None and op["status"] == "EXPIRED":
                return _xml_error(400, "ExpiredToken", "The provided token has expired.")
            body = None
            if op is not None and kind == "final" and op["url"]:
                body = b"".join(op["_lines"])
            elif op is not None and kind == "partial" and op["partialDataUrl"]:
                body = b"".join(op["_lines"][: op["_fail"]["at"]])
            if body is None:
                return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
            return Response(
                200,
                body,
                {
                    "Content-Type": "application/jsonl",
                    "Content-Disposition": f'attachment; filename="bulk-{op["_num"]}.jsonl"',
                },
            )

    # --- Python API ---

    @staticmethod
    def _bulk_public(op: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def list_bulk_operations(self) -> list[dict[str, Any]]:
        """Every bulk operation's public fields (as ``BulkOperation`` shows them), oldest first."""
        with self.lock:
            return [self._bulk_public(o) for o in self._bulk_all()]

    def bulk_operation(self, ident: str) -> dict[str, Any] | None:
        with self.lock:
            op = self._bulk_get(ident)
            return self._bulk_public(op) if op is not None else None

    def bulk_output(self, ident: str, partial: bool = False) -> bytes | None:
        """The bytes ``url`` (or ``partialDataUrl``) serves now; None when it serves nothing."""
        with self.lock:
            op = self._bulk_get(ident)
            if op is None:
                return None
            if partial:
                return b"".join(op["_lines"][: op["_fail"]["at"]]) if op["partialDataUrl"] else None
            return b"".join(op["_lines"]) if op["url"] else None

    def fail_next_bulk_operation(
        self,
        error_code: str = "INTERNAL_SERVER_ERROR",
        partial: bool = True,
        after_objects: int | None = None,
    ) -> None:
        """Make the next ``bulkOperationRunQuery`` end FAILED with ``error_code`` (see the module doc)."""
        if error_code not in ERROR_CODES:
            raise ValueError(f"unknown BulkOperationErrorCode {error_code!r}; expected one of {ERROR_CODES}")
        with self.lock:
            self._bulk_fail_next = {
                "error_code": error_code,
                "partial": bool(partial),
                "after_objects": after_objects,
            }

    def refuse_next_bulk_run(
        self, code: str = "LIMIT_REACHED", message: str = "Bulk operations limit reached for this shop."
    ) -> None:
        """Make the next ``bulkOperationRunQuery`` answer no operation and one userError with ``code`` (a
        ``BulkOperationUserErrorCode``: INVALID, LIMIT_REACHED, OPERATION_IN_PROGRESS). The message is the
        sandbox's own wording; clients should match on the code."""
        if code not in ("INVALID", "LIMIT_REACHED", "OPERATION_IN_PROGRESS"):
            raise ValueError(f"unknown BulkOperationUserErrorCode {code!r}")
        with self.lock:
            self._bulk_refuse_next = {"field": None, "message": message, "code": code}

    def expire_bulk_operation(self, ident: str) -> dict[str, Any]:
        """Expire a COMPLETED or FAILED operation now (its URLs stop working); its public fields."""
        with self.lock:
            op = self._bulk_get(ident)
            if op is None:
                raise KeyError(f"no bulk operation {ident!r}")
            if op["status"] not in ("COMPLETED", "FAILED", "EXPIRED"):
                raise ValueError(f"bulk operation {ident} is {op['status']}: only a finished one can expire")
            op["_expired"] = True
            return self._bulk_public(self._bulk_advance(op))

    _BULK_SETTINGS = {
        "objects_per_second": "bulk_objects_per_second",
        "start_delay": "bulk_start_delay",
        "cancel_delay": "bulk_cancel_delay",
        "url_lifetime": "bulk_url_lifetime",
        "max_concurrent_queries": "bulk_max_concurrent_queries",
    }

    def bulk_control(self, route: str, req: Request) -> Response | None:
        """The ``/_sandbox/bulk-operations*`` control endpoints; None: no such endpoint."""
        if route == "/_sandbox/bulk-operations" and req.method == "GET":
            return Response.json(200, self.list_bulk_operations())
        if route == "/_sandbox/bulk-operations/fail-next" and req.method == "POST":
            spec = req.json() or {}
            unknown = set(spec) - {"error_code", "partial", "after_objects"}
            if unknown:
                raise ValueError(f"unknown fields: {sorted(unknown)}")
            self.fail_next_bulk_operation(**spec)
            return Response.json(200, {"fail_next": self._bulk_fail_next})
        if route == "/_sandbox/bulk-operations/expire" and req.method == "POST":
            return Response.json(200, self.expire_bulk_operation((req.json() or {})["id"]))
        if route == "/_sandbox/bulk-operations/settings":
            if req.method == "POST":
                spec = req.json() or {}
                unknown = set(spec) - set(self._BULK_SETTINGS)
                if unknown:
                    raise ValueError(f"unknown bulk settings: {sorted(unknown)}")
                with self.lock:
                    for name, value in spec.items():
                        cast = int if name == "max_concurrent_queries" else float
                        setattr(self, self._BULK_SETTINGS[name], cast(value))
            if req.method in ("GET", "POST"):
                return Response.json(200, {n: getattr(self, a) for n, a in self._BULK_SETTINGS.items()})
        return None


__all__ = [
    "BulkOperationsMixin",
    "ERROR_CODES",
    "MAX_CONCURRENT_QUERIES",
    "check_bulk_query",
    "flatten",
]
