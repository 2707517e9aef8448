"""Shopify's calculated query cost, computed statically from a document.

Shopify charges every GraphQL Admin request its *requested* cost before running it
and refunds the difference to the *actual* cost afterwards
(https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits). The sandbox
applies the documented defaults to every field:

* scalar and enum fields cost 0 (``__typename`` and other introspection fields too);
* an object (or interface / union) field costs 1 plus the cost of its selection;
* a connection field (an object type named ``...Connection`` with ``edges``/``nodes``)
  costs ``2 + n × (cost of one node)``, where ``n`` is its ``first`` or ``last``
  argument (literal or variable; 0 when neither is given, which Shopify rejects at
  execution anyway). One node costs 1 for the object plus the cost of its
  selection; ``nodes { … }`` and ``edges { node { … } }`` both describe the node (if
  a document selects both, the dearer one counts once). ``pageInfo`` is an object
  and costs 1; other fields of the connection object are costed normally;
* a plain list of objects (``customAttributes``, ``fulfillments(first:)``,
  ``trackingInfo``, ``userErrors`` …) costs like one element (1 + selection), times
  its ``first`` argument when it has one (``nodes(ids:)``: times the number of ids);
* a mutation's root field costs 10 plus the cost of its payload's selection;
* fragments and inline fragments are expanded in place; under an abstract type, the
  unconditional selections count plus the *maximum* of the per-type selections
  ("maximum of possible selections"); fields skipped by ``@skip``/``@include`` are free.

Worked example (the README's): ``orders(first: 50) { nodes { lineItems(first: 20) {
nodes { variant { id } } } } }`` costs ``2 + 50 × (1 + (2 + 20 × (1 + 1)))`` =
``2 + 50 × 43`` = 2,152.

``actual_cost`` walks the same selection over the response data instead, counting the
nodes and list elements really returned (a null object still costs its 1). This is
the sandbox's ``actualQueryCost``; the bucket is refunded ``requested - actual``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    parse,
    value_from_ast_untyped,
)

MUTATION_COST = 10
CONNECTION_COST = 2
OBJECT_COST = 1

_MISSING = object()


def is_connection_type(named_type: Any) -> bool:
    return (
        isinstance(named_type, GraphQLObjectType)
        and named_type.name.endswith("Connection")
        and ("nodes" in named_type.fields or "edges" in named_type.fields)
    )


def select_operation(
    document: DocumentNode, operation_name: str | None = None
) -> OperationDefinitionNode | None:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        return next((o for o in ops if o.name and o.name.value == operation_name), None)
    return ops[0] if len(ops) == 1 else None


class _Costing:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = dict(variables or {})
        for vd in operation.variable_definitions or ():
            name = vd.variable.name.value
            if name not in self.variables and vd.default_value is not None:
                self.variables[name] = value_from_ast_untyped(vd.default_value)
        self.operation = operation

    # -- helpers -----------------------------------------------------------------------
    def arg(self, node: FieldNode, name: str) -> Any:
        for a in node.arguments or ():
            if a.name.value == name:
                if isinstance(a.value, VariableNode):
                    return self.variables.get(a.value.name.value)
                if isinstance(a.value, IntValueNode):
                    return int(a.value.value)
                return value_from_ast_untyped(a.value, self.variables)
        return None

    def included(self, node: Any) -> bool:
        for d in node.directives or ():
            if d.name.value not in ("skip", "include"):
                continue
            cond: Any = None
            for a in d.arguments or ():
                if a.name.value == "if":
                    if isinstance(a.value, VariableNode):
                        cond = self.variables.get(a.value.name.value)
                    elif isinstance(a.value, BooleanValueNode):
                        cond = a.value.value
            if d.name.value == "skip" and cond is True:
                return False
            if d.name.value == "include" and cond is False:
                return False
        return True

    def groups(
        self,
        parent: Any,
        selection_set: SelectionSetNode | None,
        condition: str | None = None,
        out: dict | None = None,
        seen: tuple = (),
    ) -> dict:
        """Fields of a selection set grouped by type condition (None = unconditional)."""
        out = {} if out is None else out
        for sel in selection_set.selections if selection_set else ():
            if not self.included(sel):
                continue
            if isinstance(sel, FieldNode):
                out.setdefault(condition, []).append(sel)
            else:
                if isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    frag = self.fragments.get(name)
                    if frag is None or name in seen:
                        continue
                    tc, sub, seen2 = frag.type_condition, frag.selection_set, seen + (name,)
                else:
                    assert isinstance(sel, InlineFragmentNode)
                    tc, sub, seen2 = sel.type_condition, sel.selection_set, seen
                cond = condition
                if tc is not None and tc.name.value != getattr(parent, "name", None):
                    cond = tc.name.value
                self.groups(parent, sub, cond, out, seen2)
        return out

    def field_def(self, parent: Any, type_name: str | None, name: str) -> Any:
        owner = self.schema.get_type(type_name) if type_name else parent
        fields = getattr(owner, "fields", None) or {}
        fdef = fields.get(name)
        if fdef is None and owner is not parent:
            fdef = (getattr(parent, "fields", None) or {}).get(name)
        return fdef

    # -- costing -----------------------------------------------------------------------
    def selection(self, parent: Any, selection_set: SelectionSetNode | None, data: Any = _MISSING) -> int:
        groups = self.groups(parent, selection_set)
        total = 0
        extra = 0
        for cond, fields in groups.items():
            c = sum(self.field(parent, cond, f, data) for f in fields)
            if cond is None:
                total += c
            else:
                extra = max(extra, c)
        return total + extra

    def field(self, parent: Any, cond: str | None, node: FieldNode, data: Any = _MISSING) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        fdef = self.field_def(parent, cond, name)
        if fdef is None:
            return 0
        named = get_named_type(fdef.type)
        if is_leaf_type(named):
            return 0
        value = _MISSING
        if data is not _MISSING:  # costing returned data: a missing parent means nothing below
            value = data.get((node.alias or node.name).value) if isinstance(data, dict) else None
        if is_connection_type(named):
            return self.connection(named, node, value)
        nullable = get_nullable_type(fdef.type)
        if is_list_type(nullable):
            if value is not _MISSING:
                items = value if isinstance(value, list) else []
                return sum(
                    OBJECT_COST + self.selection(named, node.selection_set, item) for item in _flatten(items)
                )
            n = self.arg(node, "first") if "first" in fdef.args else None
            if not isinstance(n, int) and "ids" in fdef.args:  # nodes(ids: [...])
                ids = self.arg(node, "ids")
                n = len(ids) if isinstance(ids, list) else None
            n = n if isinstance(n, int) else 1
            return n * (OBJECT_COST + self.selection(named, node.selection_set))
        if value is None:
            return OBJECT_COST
        return OBJECT_COST + self.selection(named, node.selection_set, value)

    def connection(self, conn_type: GraphQLObjectType, node: FieldNode, value: Any = _MISSING) -> int:
        node_type = None
        if "nodes" in conn_type.fields:
            node_type = get_named_type(conn_type.fields["nodes"].type)
        edge_type = get_named_type(conn_type.fields["edges"].type) if "edges" in conn_type.fields else None
        if node_type is None and edge_type is not None:
            node_type = get_named_type(edge_type.fields["node"].type)

        groups = self.groups(conn_type, node.selection_set)
        nodes_sels: list[tuple[str, SelectionSetNode | None]] = []
        edges_sels: list[tuple[str, SelectionSetNode | None]] = []
        other = 0
        for _cond, fields in groups.items():
            for f in fields:
                fname = f.name.value
                key = (f.alias or f.name).value
                if fname == "nodes":
                    nodes_sels.append((key, f.selection_set))
                elif fname == "edges":
                    edges_sels.append((key, f.selection_set))
                else:
                    other += self.field(conn_type, None, f, value)

        def per_node(item: Any = _MISSING) -> int:
            best = 0
            for _key, sel in nodes_sels:
                best = max(best, self.selection(node_type, sel, item))
            for _key, sel in edges_sels:
                for _cond, fields in self.groups(edge_type, sel).items():
                    for f in fields:
                        if f.name.value == "node":
                            best = max(best, self.selection(node_type, f.selection_set, item))
            return OBJECT_COST + best

        if not nodes_sels and not edges_sels:
            return CONNECTION_COST + other
        if value is None:
            return CONNECTION_COST + other
        if value is _MISSING:
            n = self.arg(node, "first")
            if not isinstance(n, int):
                n = self.arg(node, "last")
            n = n if isinstance(n, int) and n > 0 else 0
            return CONNECTION_COST + n * per_node() + other
        items: list[Any] = []
        if isinstance(value, dict):
            for key, _sel in nodes_sels:
                if isinstance(value.get(key), list):
                    items = value[key]
                    break
            else:
                for key, sel in edges_sels:
                    edges = value.get(key)
                    if isinstance(edges, list):
                        node_keys = [
                            (f.alias or f.name).value
                            for fs in self.groups(edge_type, sel).values()
                            for f in fs
                            if f.name.value == "node"
                        ]
                        items = [(e or {}).get(node_keys[0]) if node_keys else None for e in edges]
                        break
        return CONNECTION_COST + sum(per_node(i) for i in items) + other

    def operation_cost(self, data: Any = _MISSING) -> int:
        op = self.operation
        root = {
            OperationType.QUERY: self.schema.query_type,
            OperationType.MUTATION: self.schema.mutation_type,
            OperationType.SUBSCRIPTION: self.schema.subscription_type,
        }[op.operation]
        if root is None:
            return 0
        if op.operation != OperationType.MUTATION:
            return self.selection(root, op.selection_set, data)
        total = 0
        for _cond, fields in self.groups(root, op.selection_set).items():
            for f in fields:
                if f.name.value.startswith("__"):
                    continue
                fdef = root.fields.get(f.name.value)
                if fdef is None:
                    continue
                named = get_named_type(fdef.type)
                sub = _MISSING
                if data is not _MISSING:
                    sub = data.get((f.alias or f.name).value) if isinstance(data, dict) else None
                total += MUTATION_COST + (
                    0 if is_leaf_type(named) else self.selection(named, f.selection_set, sub)
                )
        return total


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _prepare(
    schema: GraphQLSchema,
    document: DocumentNode | str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> _Costing | None:
    if isinstance(document, str):
        document = parse(document)
    op = select_operation(document, operation_name)
    if op is None:
        return None
    return _Costing(schema, document, op, variables)


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode | str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The requested (worst-case) cost of the operation, before execution."""
    c = _prepare(schema, document, variables, operation_name)
    return c.operation_cost() if c else 0


def actual_cost(
    schema: GraphQLSchema,
    document: DocumentNode | str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    data: Any,
) -> int:
    """The cost of what the response really returned (``data`` is the response's ``data``)."""
    c = _prepare(schema, document, variables, operation_name)
    if c is None:
        return 0
    return c.operation_cost(data if isinstance(data, dict) else None)
