"""A local Shopify store speaking the GraphQL Admin API 2026-10.

``ShopifyStore`` answers ``POST /admin/api/2026-10/graphql.json`` like a real store:

* the ``X-Shopify-Access-Token`` header must equal the store's token (else 401); another
  API version or path is 404; a body that is not JSON (or has no ``query``) is 400;
* every document is parsed and validated against the real schema (``schema.py``); errors
  come back as Shopify sends them (HTTP 200, ``{"errors": [{message, locations, path,
  extensions: {code, …}}]}``, graphql-ruby wording for the common validation rules) and
  nothing runs;
* a valid document that uses a root field the sandbox does not implement is refused with
  ``"Field 'x' on type 'QueryRoot' is not implemented by the ordersync sandbox"``
  (``extensions.code`` ``NOT_IMPLEMENTED``) rather than answered with silent nulls;
* the requested query cost (``cost.py``) is checked against the single-query limit
  (``MAX_COST_EXCEEDED``) and against a time-based leaky bucket (``THROTTLED``, with
  ``extensions.cost``); an executed request is charged its requested cost and refunded
  ``requested - actual``, where actual is the cost of what was really returned;
* execution uses graphql-core over the real schema with this store's resolvers. Objects
  are plain dicts shaped like the GraphQL types (camelCase keys, enums as strings, money
  as ``{"amount": "24.00", "currencyCode": "USD"}``, ``MoneyBag`` as
  ``{"shopMoney", "presentmentMoney"}``, GIDs, ``legacyResourceId`` as numeric strings,
  times as ``"2026-11-27T03:40:00Z"``). The default resolver reads dict keys; a Python
  list under a ``...Connection`` field is paginated with ``first/after/last/before``
  (opaque base64 cursors, ``edges{cursor node}``, ``nodes``, ``pageInfo``); a missing
  nullable field is null, a missing non-null list/Boolean/Int/money is empty/false/0, and
  any other missing non-null field is a ``NOT_IMPLEMENTED`` error. Keys starting with
  ``_`` are sandbox bookkeeping (e.g. ``order["_options"]`` records orderCreate's
  ``options``; ``order["_cancel"]`` records orderCancel's arguments).

Root fields: queries ``orders``, ``ordersCount`` (the same search; ``limit`` default 10,000, a capped
count has precision ``AT_LEAST``), ``order``, ``productVariants``, ``productVariant``,
``products``, ``product``, ``locations``, ``location``, ``shop``, ``fulfillmentOrder``,
``fulfillment``, ``job``, ``node``, ``nodes``, ``webhookSubscription``, ``webhookSubscriptions``,
``webhookSubscriptionsCount``, ``bulkOperation``, ``bulkOperations``, ``currentBulkOperation``;
mutations ``orderCreate``, ``orderUpdate``, ``orderCancel``, ``tagsAdd``, ``refundCreate``, ``fulfillmentOrderMove``,
``fulfillmentCreate``, ``fulfillmentTrackingInfoUpdate``, ``webhookSubscriptionCreate``,
``webhookSubscriptionUpdate``, ``webhookSubscriptionDelete``, ``bulkOperationRunQuery``,
``bulkOperationCancel``. Bulk query operations (validation, the JSONL file and its URL, the lifecycle
at ``store.bulk_objects_per_second``, 5 at a time, cancel / fail / expire, cost) are described in
``shopify_bulk.py``.

Search filters (``search.py`` syntax; unknown fields match everything and are reported in
``extensions.search`` as Shopify does):

* orders: ``id`` (numeric, ranges), ``name`` (``1001`` or ``#1001``), ``created_at``,
  ``updated_at``, ``processed_at``, ``source_identifier``, ``source_name``, ``tag``,
  ``tag_not``, ``financial_status`` (lower-case ``displayFinancialStatus``),
  ``fulfillment_status`` (lower-case ``displayFulfillmentStatus``, plus ``shipped``,
  ``unshipped``, ``partial``), ``status`` (``open``/``closed``/``cancelled``/``not_closed``),
  ``sku``, ``email``, ``po_number``, ``test``, ``customer_id``; a bare word searches name,
  email, customer name and tags;
* productVariants: ``sku``, ``id``, ``product_id``, ``title``, ``vendor``, ``barcode``,
  ``product_status``, ``created_at``, ``updated_at``; bare word: title, sku, product title;
* products: ``id``, ``title``, ``sku``, ``vendor``, ``status``, ``product_type``, ``tag``,
  ``handle``, ``created_at``, ``updated_at``; bare word: title;
* locations: ``id``, ``name``, ``active``.

References between objects are stored as GraphQL-shaped stubs and resolved to the live
object on read: ``lineItem["variant"] == {"id": <variant gid>}`` (``None`` for a custom
line), ``variant["product"]``, ``fulfillmentOrder["assignedLocation"]["location"]``,
``fulfillmentOrderLineItem["lineItem"]``, ``fulfillment["order"]`` / ``["location"]`` /
``["fulfillmentOrders"]``; ``fulfillmentOrder["orderId"]`` is the real schema field.

Python API for tests: ``orders`` / ``products`` / ``locations`` / ``customers`` (lists of
the GraphQL-shaped dicts), ``add_product``, ``add_location``, ``add_order``,
``update_order``, ``get_order``, ``cancel_order``, ``fulfill_order``, ``refund_order``, ``state``,
``graphql(query, variables, operation_name)`` (the endpoint without HTTP),
``operation_of``, ``is_write``, ``throttled_response``, ``error_response`` and
``available`` (points in the bucket; settable, like ``bucket_size`` and ``restore_rate``).
``store.now`` is the clock for timestamps (a callable returning a datetime, epoch seconds
or an ISO string); ``store.clock`` (monotonic seconds) drives the bucket. An order's
``updatedAt`` strictly increases with every change (by a second when the clock has not
moved). All state is guarded by ``store.lock``.

Discounts, taxes, shipping lines and risk (Python API; see ``add_order``): ``discounts=[...]`` on an
order are allocated to its lines as Shopify does (line-level ones first, then order-level ones on what
is left: ``discountAllocations`` per line with its ``discountApplication``, ``discountApplications``,
``discountCodes``, ``totalDiscountsSet``, ``discountedUnitPriceAfterAllDiscountsSet``, ``discountedTotalSet``
and the subtotals after them); a line's ``taxLines`` ``[{title, rate, price}]``, the order's
``taxesIncluded`` and ``totalTaxSet`` (line and shipping taxes); ``shippingLines=[{title, code, source,
price, discount, taxLines}]`` (several allowed; ``discountedPriceSet`` is the price less the discount);
``risk={"level", "message", "provider"}`` (or a list of them) is served as ``Order.risk``. orderCreate keeps
``shippingLines`` (with their ``taxLines``), the lines' ``taxLines`` and ``taxesIncluded``.

Tags: ``tagsAdd(id:, tags:)`` on an order appends the tags it lacks (compared case-insensitively; an item
may be a comma-separated list), keeps the others, and only when something was added bumps ``updatedAt`` and
delivers ``orders/updated``; another id answers ``node: null`` and the user error ``{"field": ["id"],
"message": "Order does not exist"}`` (the wording is the sandbox's).

Refunds (``Order.refunds(first:)``: Refund {id, legacyResourceId, createdAt, updatedAt, processedAt, note,
totalRefundedSet, refundLineItems, refundShippingLines, transactions, order}), recorded by ``refundCreate``,
the Python ``refund_order`` (a merchant's refund in the admin) and ``orderCancel(refund: true)``:

* a RefundLineItem {id, lineItem, quantity, restockType, restocked, location, priceSet (the unit price),
  subtotalSet (after all the line's discounts: its discounted price for that quantity), totalTaxSet (the
  line's tax share for that quantity)} takes its units off ``currentQuantity`` and ``refundableQuantity``
  whatever the restock type; unfulfilled units (CANCEL, and NO_RESTOCK first) also leave
  ``unfulfilledQuantity`` (they join ``nonFulfillableQuantity``) and the open fulfillment orders
  (``totalQuantity`` and ``remainingQuantity``; one left with nothing to fulfil is CLOSED); RETURN takes
  fulfilled units. Shares are rounded cumulatively, so all the units of a line add up to the line;
* a RefundShippingLine {id, shippingLine, subtotalAmountSet, taxAmountSet}: shipping refunded (all of it,
  or an amount split over the shipping lines in proportion to what is left of each) with its share of the
  line's taxes; ``totalRefundedShippingSet``, ``currentShippingPriceSet``, ``currentTotalTaxSet`` and
  ``currentTotalPriceSet`` follow;
* the money is the refund's REFUND transactions (``totalRefundedSet``, also in ``Order.transactions``);
  a refund without transactions moves no money (totalRefundedSet 0, financial status unchanged);
  otherwise ``totalRefundedSet`` grows and ``displayFinancialStatus`` becomes PARTIALLY_REFUNDED, or
  REFUNDED once everything received is refunded (``refundable`` false);
* the order's ``updatedAt`` moves; ``refunds/create`` and ``orders/updated`` are delivered.

``refundCreate(input: RefundInput!) @idempotent(key: "...")`` (a vendor store's side): the directive is
required since 2026-04 (the mutation's description). Without it (or with a blank key) the field is null with
a top-level error (``extensions.code`` BAD_REQUEST) and nothing runs; the same key again with the same
``input`` answers the first refund again (nothing new is created, no webhook); the same key with another
``input`` is a top-level error (``IDEMPOTENCY_KEY_MISMATCH``). Shopify documents these cases, not their
wording: the messages and codes are the sandbox's (``IDEMPOTENCY_*`` constants). Keys are kept for the
store's lifetime; a request answered with user errors does not use its key up. Input: ``orderId``,
``refundLineItems [{lineItemId, quantity, restockType (default NO_RESTOCK), locationId}]`` (restock
location default: where the units were assigned or fulfilled), ``shipping {amount (Money) | fullRefund}``,
``note``, ``notify``, ``processedAt``, ``currency``, ``allowOverRefunding``, ``transactions [{orderId,
amount, gateway, kind: REFUND, parentId}]``; ``refundDuties`` / ``refundMethods`` are NOT_IMPLEMENTED. User
errors (``field`` paths as Shopify's, wording the sandbox's): unknown order (``["orderId"]``), unknown line
(``["refundLineItems", "0", "lineItemId"]``), a quantity below 1 or above the line's refundableQuantity
(``[..., "quantity"]``), CANCEL of fulfilled units / RETURN of unfulfilled ones / LEGACY_RESTOCK (``[...,
"restockType"]``), an unknown location, a shipping amount above what is left (``["shipping", "amount"]``),
a transaction of another kind or order, more money than is refundable (``["transactions"]``, unless
``allowOverRefunding``), and a refund with no lines, shipping or transactions.

Deliberate simplifications: no inventory (``inventoryBehaviour`` is recorded, never
enforced; a restock only records its restock type and location), taxes are never computed (only the given
tax lines, shared out on refunds), orderCreate's ``discountCode`` is not applied; tracking URLs are
not generated for known carriers; ``orderCancel`` completes at once (the returned ``job`` says
``done: false`` as on Shopify, ``job(id:)`` then says ``done: true``); orderCreate without
``financialStatus`` or transactions makes a PAID order, and ``sourceName`` defaults to ``api``;
syntax errors keep graphql-core's wording (``extensions.code`` ``PARSE_ERROR``); user-error
wording for the rarer failures is the sandbox's own. ``order["_input"]`` keeps orderCreate's
input as received.

Webhook subscriptions: ``webhookSubscriptionCreate(topic:, webhookSubscription:)`` takes
WebhookSubscriptionInput (``uri``, or the deprecated ``callbackUrl``; ``format``, ``includeFields``,
``filter``, ``name``, ``metafieldNamespaces``, ``metafields``), ``webhookSubscriptionUpdate(id:,
webhookSubscription:)`` changes the fields given, ``webhookSubscriptionDelete(id:)`` answers
``deletedWebhookSubscriptionId``; user errors (``field`` ``["webhookSubscription", "uri"|"callbackUrl"]``
or ``["id"]``): "Address can't be blank", "Address is invalid" (not an http(s) URL), "Address for this
topic has already been taken" (same topic and uri), "Webhook subscription does not exist".
``webhookSubscriptions`` pages like every connection and filters on ``topics``, ``uri`` /
``callbackUrl``, ``format`` and ``query`` (``id``, ``created_at``, ``updated_at``, ``topic``,
``endpoint``), sorted by ``sortKey`` CREATED_AT (default) or ID; ``webhookSubscriptionsCount`` counts
(``limit``, default 10000, then precision AT_LEAST). A subscription (``WebhookSubscription``: id,
legacyResourceId, topic, uri, callbackUrl, endpoint ``WebhookHttpEndpoint``, format, includeFields,
filter, name, apiVersion, metafieldNamespaces, metafields, createdAt, updatedAt) is a dict in
``store.webhook_subscriptions``; ``store.subscribe(topic, url, **input)`` (``orders/create`` or
``ORDERS_CREATE``), ``unsubscribe(id)`` and ``subscriptions()`` do the same from Python. Differences:
``http://`` URIs are accepted (Shopify wants https; ``store.webhook_require_https = True`` refuses
them with "Address protocol http:// is not supported"); Pub/Sub and EventBridge URIs are refused as
invalid; ``filter`` is stored, not applied; ``format: XML`` is stored and JSON is sent.

Webhook topics delivered. One action (one GraphQL request, one Python API call) delivers its events
when it ends, built from the state it left, one delivery per topic, resource and subscription, all
with one ``X-Shopify-Event-Id``:

* ``orders/create``: ``orderCreate``, ``add_order``; ``orders/paid``: an order created PAID, or
  ``update_order`` making ``displayFinancialStatus`` PAID; ``orders/updated``: every order change,
  creation included (Shopify sends it after ``orders/create``), fulfilments, tracking updates,
  cancellations, refunds, ``orderUpdate``, ``tagsAdd`` adding a tag; ``orders/edited``: ``update_order(lineItems=...)`` that
  changes line quantities (payload ``{"order_edit": {..., "line_items": {"additions": [{id, delta}],
  "removals": [...]}}}``; keep a line's ``id`` to keep the line); ``orders/cancelled``:
  ``orderCancel``, ``cancel_order``; ``orders/fulfilled`` / ``orders/partially_fulfilled``: a
  fulfilment leaving the order so; ``refunds/create``: ``refundCreate``, ``refund_order``, ``orderCancel(refund: true)``;
* ``fulfillments/create``: ``fulfillmentCreate``, ``fulfill_order``, ``orderCreate`` with
  ``fulfillment``; ``fulfillments/update``: ``fulfillmentTrackingInfoUpdate``;
* any other WebhookSubscriptionTopic can be subscribed to and never fires.

Each delivery is a POST of the REST-shaped JSON payload (``shopify_webhooks.py``: the order, the
fulfillment, the refund, the order edit; ``includeFields`` applied) with the headers Shopify sends:
``Content-Type: application/json``, ``User-Agent: Shopify-Captain-Hook``, ``X-Shopify-Topic``,
``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body keyed with ``store.webhook_secret``,
the app's client secret; ``ShopifyStore(..., webhook_secret=...)``; an empty key while None),
``X-Shopify-Shop-Domain``, ``X-Shopify-API-Version`` (the subscription's), ``X-Shopify-Webhook-Id``
(one per delivery, the same on its retries and on an injected duplicate), ``X-Shopify-Event-Id``
(one per action, shared by every topic and subscription it triggers), ``X-Shopify-Triggered-At``
(the action's time on the store clock, ``2026-11-27T03:40:00.000000Z``), ``X-Shopify-Name`` (the
subscription's name, when set). A delivery succeeds on a 2xx answer within ``store.webhook_timeout``
(5 s, Shopify's); anything else (a 3xx too) is retried after each of ``store.webhook_retry_delays``
with the original body and headers: by default ``shopify_webhooks.COMPRESSED_RETRY_DELAYS`` (8
retries doubling from 0.05 s, capped at 1 s: 4.55 s); ``PRODUCTION_RETRY_DELAYS`` is Shopify's 8
retries over 4 hours. When the last retry fails the subscription is removed (as Shopify removes an
Admin-API subscription whose deliveries keep failing; ``store.webhook_remove_failing_subscriptions =
False`` keeps it). Queue, faults, pause and the delivery log: ``webhooks.py``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
import logging
import re
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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
    Visitor,
    execute,
    get_named_type,
    get_nullable_type,
    is_list_type,
    is_non_null_type,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.execution.values import get_directive_values, get_variable_values

from . import search as S
from . import shopify_webhooks as W
from .base import BaseStore, Request, Response
from .cost import actual_cost, is_connection_type, requested_cost, select_operation
from .schema import API_VERSION, load_schema
from .shopify_bulk import OUTPUT_LABEL, OUTPUT_PREFIX, BulkOperationsMixin
from .webhooks import Delivery, sign

log = logging.getLogger(__name__)

RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MAX_PAGE_SIZE = 250
# @idempotent (refundCreate requires it since 2026-04). Shopify documents that a missing directive is "an error
# at runtime" and a reused key is refused, without publishing the wording: these texts and codes are the sandbox's.
IDEMPOTENCY_REQUIRED = "The @idempotent directive is required for the {field} mutation."
IDEMPOTENCY_BLANK = "The idempotency key cannot be an empty string or whitespace only."
IDEMPOTENCY_MISMATCH = (
    "The idempotency key has already been used for a request with different parameters. "
    "Use a new idempotency key for a new operation."
)
IDEMPOTENCY_MISMATCH_CODE = "IDEMPOTENCY_KEY_MISMATCH"
_PATH = re.compile(r"^/admin/api/([^/]+)/graphql\.json$")
_GID = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(\?.*)?$")

QUERY_ROOT_FIELDS = (
    "orders",
    "ordersCount",
    "order",
    "productVariants",
    "productVariant",
    "products",
    "product",
    "locations",
    "location",
    "shop",
    "fulfillmentOrder",
    "fulfillment",
    "job",
    "node",
    "nodes",
    "webhookSubscription",
    "webhookSubscriptions",
    "webhookSubscriptionsCount",
    "bulkOperation",
    "bulkOperations",
    "currentBulkOperation",
)
MUTATION_ROOT_FIELDS = (
    "orderCreate",
    "orderUpdate",
    "orderCancel",
    "tagsAdd",
    "refundCreate",
    "fulfillmentOrderMove",
    "fulfillmentCreate",
    "fulfillmentTrackingInfoUpdate",
    "webhookSubscriptionCreate",
    "webhookSubscriptionUpdate",
    "webhookSubscriptionDelete",
    "bulkOperationRunQuery",
    "bulkOperationCancel",
)

COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "BE": "Belgium",
    "ES": "Spain",
    "IT": "Italy",
    "AU": "Australia",
    "NZ": "New Zealand",
    "IE": "Ireland",
    "AT": "Austria",
    "CH": "Switzerland",
    "SE": "Sweden",
    "DK": "Denmark",
    "NO": "Norway",
    "FI": "Finland",
    "PL": "Poland",
    "PT": "Portugal",
    "JP": "Japan",
    "MX": "Mexico",
    "BR": "Brazil",
}


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------


def gid(kind: str, num: int | str) -> str:
    return f"gid://shopify/{kind}/{num}"


def parse_gid(value: Any) -> tuple[str, int] | None:
    m = _GID.match(str(value or ""))
    return (m.group(1), int(m.group(2))) if m else None


def fmt_time(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def norm_time(value: Any) -> str | None:
    """A time value (datetime or ISO string) as Shopify prints it; None stays None."""
    if value is None:
        return None
    dt = S.parse_time(value)
    if dt is None:
        raise ValueError(f"not a time: {value!r}")
    return fmt_time(dt)


def decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc


def fmt_amount(value: Any) -> str:
    return f"{decimal(value).quantize(Decimal('0.01'))}"


def money(amount: Any, currency: str) -> dict[str, str]:
    return {"amount": fmt_amount(amount), "currencyCode": currency}


def money_bag(amount: Any, currency: str, presentment: str | None = None) -> dict[str, Any]:
    return {"shopMoney": money(amount, currency), "presentmentMoney": money(amount, presentment or currency)}


def bag_amount(bag: Any) -> Decimal:
    try:
        return decimal(bag["shopMoney"]["amount"])
    except (KeyError, TypeError):
        return Decimal("0")


def _encode_cursor(last_id: Any, last_value: Any) -> str:
    raw = json.dumps({"last_id": last_id, "last_value": last_value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, Any]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True).decode())
        return data["last_value"], data["last_id"]
    except Exception as exc:  # noqa: BLE001 - any garbage is an invalid cursor
        raise GraphQLError(
            "Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}
        ) from exc


class SandboxNotImplemented(GraphQLError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is not implemented by the ordersync sandbox", extensions={"code": "NOT_IMPLEMENTED"}
        )


# ----------------------------------------------------------------------------------------------
# document analysis (cached per query string; the schema is shared)
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _analyze(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
    try:
        doc = parse(query)
    except GraphQLError as exc:
        return None, (exc,)
    return doc, tuple(validate(load_schema(), doc))


def _root_fields(doc: DocumentNode, op: OperationDefinitionNode) -> list[str]:
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    names: list[str] = []

    def walk(sel_set: Any, seen: tuple) -> None:
        for sel in sel_set.selections:
            if isinstance(sel, FieldNode):
                if not sel.name.value.startswith("__") and sel.name.value not in names:
                    names.append(sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                walk(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode):
                frag = frags.get(sel.name.value)
                if frag is not None and frag.name.value not in seen:
                    walk(frag.selection_set, seen + (frag.name.value,))

    walk(op.selection_set, ())
    return names


def _node_paths(doc: DocumentNode) -> dict[int, tuple[list[str], bool]]:
    """id(AST node) -> (graphql-ruby style path, inside a variable definition)."""
    paths: dict[int, tuple[list[str], bool]] = {}

    class V(Visitor):
        def enter(self, node: Any, key: Any, parent: Any, path: Any, ancestors: Any) -> None:
            # graphql-core passes the direct parent separately from the other ancestors
            chain = [a for a in [*ancestors, parent] if hasattr(a, "kind")] + [node]
            out: list[str] = []
            in_var = False
            for a in chain:
                kind = a.kind
                if kind == "operation_definition":
                    op = a.operation.value
                    out.append(f"{op} {a.name.value}" if a.name else op)
                elif kind == "fragment_definition":
                    out.append(f"fragment {a.name.value}")
                elif kind == "inline_fragment":
                    out.append(f"... on {a.type_condition.name.value}" if a.type_condition else "...")
                elif kind in ("field", "argument", "object_field"):
                    out.append(a.name.value)
                elif kind == "variable_definition":
                    in_var = True
            paths[id(node)] = (out, in_var)

    visit(doc, V())
    return paths


_RUBY_RULES: list[tuple[re.Pattern, Callable[[re.Match, list[str], bool], tuple[str, dict]]]] = [
    (
        re.compile(r"^Cannot query field '(\w+)' on type '(\w+)'"),
        lambda m, p, v: (
            f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
            {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]},
        ),
    ),
    (
        re.compile(r"^Unknown argument '(\w+)' on field '(\w+)\.(\w+)'"),
        lambda m, p, v: (
            f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
            {"code": "argumentNotAccepted", "name": m[3], "typeName": "Field", "argumentName": m[1]},
        ),
    ),
    (
        re.compile(r"^Argument '(\w+)\.(\w+)\((\w+):\)' of type '([^']+)' is required"),
        lambda m, p, v: (
            f"Field '{m[2]}' is missing required arguments: {m[3]}",
            {"code": "missingRequiredArguments", "className": "Field", "name": m[2], "arguments": m[3]},
        ),
    ),
    (
        re.compile(r"^Variable '\$(\w+)' is not defined(?: by operation '(\w+)')?"),
        lambda m, p, v: (
            f"Variable ${m[1]} is used by {m[2] or 'anonymous query'} but not declared",
            {"code": "variableNotDefined", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"^Variable '\$(\w+)' is never used(?: in operation '(\w+)')?"),
        lambda m, p, v: (
            f"Variable ${m[1]} is declared by {m[2] or 'anonymous query'} but not used",
            {"code": "variableNotUsed", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"^Field '(\w+)' of type '([^']+)' must have a selection of subfields"),
        lambda m, p, v: (
            f"Field must have selections (field '{m[1]}' returns {m[2].strip('[]!')} but has no "
            f"selections. Did you mean '{m[1]} {{ ... }}'?)",
            {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'"},
        ),
    ),
    (
        re.compile(r"^Field '(\w+)' must not have a selection since type '([^']+)' has no subfields"),
        lambda m, p, v: (
            f"Selections can't be made on scalars (field '{m[1]}' returns {m[2].strip('[]!')} "
            f"but has selections)",
            {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'"},
        ),
    ),
    (
        re.compile(r"^Variable '\$(\w+)' of type '([^']+)' used in position expecting type '([^']+)'"),
        lambda m, p, v: (
            (f"Nullability mismatch on variable ${m[1]} and argument {p[-1] if p else '?'} ({m[2]} / {m[3]})")
            if m[2].replace("!", "") == m[3].replace("!", "")
            else f"Type mismatch on variable ${m[1]} and argument {p[-1] if p else '?'} ({m[2]} / {m[3]})",
            {
                "code": "variableMismatch",
                "variableName": m[1],
                "typeName": m[2],
                "argumentName": p[-1] if p else None,
                "errorMessage": "Type mismatch",
            },
        ),
    ),
    (
        re.compile(r"^Unknown type '(\w+)'"),
        lambda m, p, v: (
            (f"{m[1]} isn't a defined input type", {"code": "variableRequiresValidType", "typeName": m[1]})
            if v
            else (
                f"No such type {m[1]}, so it can't be a fragment condition",
                {"code": "undefinedType", "typeName": m[1]},
            )
        ),
    ),
    (
        re.compile(r"^Fragment '(\w+)' is never used"),
        lambda m, p, v: (
            f"Fragment {m[1]} was defined, but not used",
            {"code": "useAndDefineFragment", "fragmentName": m[1]},
        ),
    ),
    (
        re.compile(r"^Unknown fragment '(\w+)'"),
        lambda m, p, v: (
            f"Fragment {m[1]} was used, but not defined",
            {"code": "useAndDefineFragment", "fragmentName": m[1]},
        ),
    ),
    (
        re.compile(r"^There can be only one operation named '(\w+)'"),
        lambda m, p, v: (
            f'Operation name "{m[1]}" must be unique',
            {"code": "operationNotUnique", "operationName": m[1]},
        ),
    ),
    (
        re.compile(r"^This anonymous operation must be the only defined operation"),
        lambda m, p, v: (
            "Operation name is required when multiple operations are present",
            {"code": "anonymousOperation"},
        ),
    ),
    (
        re.compile(
            r"^(?:\w+ cannot represent|Expected value of type|Enum '\w+' cannot represent|"
            r"Field '[\w.]+' of required type '[^']+' was not provided)"
        ),
        lambda m, p, v: (
            f"Argument '{p[-1] if p else '?'}' on {'Field' if len(p) < 3 else 'InputObject'} "
            f"'{p[-2] if len(p) > 1 else '?'}' has an invalid value. "
            f"{m.string}",
            {"code": "argumentLiteralsIncompatible", "argumentName": p[-1] if p else None},
        ),
    ),
]


def shopify_error(
    err: GraphQLError, paths: dict[int, tuple[list[str], bool]] | None = None
) -> dict[str, Any]:
    """A graphql-core validation/parse error in Shopify's (graphql-ruby's) shape and wording."""
    locations = [{"line": loc.line, "column": loc.column} for loc in (err.locations or [])]
    path: list[str] = []
    in_var = False
    if paths is not None and err.nodes:
        path, in_var = paths.get(
            id(err.nodes[-1] if "used in position" in err.message else err.nodes[0]), ([], False)
        )
    if err.message.startswith("Syntax Error"):
        out: dict[str, Any] = {
            "message": err.message,
            "locations": locations,
            "extensions": {"code": "PARSE_ERROR"},
        }
        return out
    message, ext = err.message, {"code": "validationError"}
    for rx, fn in _RUBY_RULES:
        m = rx.match(err.message)
        if m:
            message, ext = fn(m, path, in_var)
            break
    out = {
        "message": message,
        "locations": locations[:1] if ext.get("code") != "operationNotUnique" else locations,
    }
    if path:
        out["path"] = path
    out["extensions"] = {k: v for k, v in ext.items() if v is not None}
    return out


def _execution_error(err: GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": err.message}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path:
        out["path"] = list(err.path)
    ext = dict(err.extensions or {})
    if (
        err.original_error is not None
        and not isinstance(err.original_error, GraphQLError)
        and "code" not in ext
    ):
        ext["code"] = "INTERNAL_SERVER_ERROR"
        log.error("sandbox resolver failed at %s", err.path, exc_info=err.original_error)
    if ext:
        out["extensions"] = ext
    return out


# ----------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------


class ShopifyStore(BulkOperationsMixin, BaseStore):
    platform = "shopify"

    def __init__(
        self,
        name: str,
        token: str,
        api_version: str = API_VERSION,
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        max_query_cost: int = 1000,
        locations: Iterable[str | dict[str, Any]] | None = None,
        currency: str = "USD",
        webhook_secret: str | None = None,
    ) -> None:
        super().__init__(name)
        self.token = token
        self.api_version = api_version
        self.bucket_size = float(bucket_size)
        self.restore_rate = float(restore_rate)
        self.max_query_cost = int(max_query_cost)
        self.currency = currency
        self.schema = load_schema()
        self.now: Callable[[], Any] = lambda: datetime.now(UTC)
        self.clock: Callable[[], float] = time.monotonic
        self.domain = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") + ".myshopify.com"

        self.orders: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.customers: list[dict[str, Any]] = []
        self.locations: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        # @idempotent keys seen: (mutation, key) -> {fingerprint of the arguments, refund, order}
        self._idempotency: dict[tuple[str, str], dict[str, Any]] = {}

        # webhooks (see the module docstring)
        self.webhook_secret = webhook_secret  # the app's client secret: the HMAC key of every delivery
        self.webhook_retry_delays: tuple[float, ...] = W.COMPRESSED_RETRY_DELAYS
        self.webhook_timeout = W.DELIVERY_TIMEOUT
        self.webhook_remove_failing_subscriptions = True
        self.webhook_require_https = False
        self.webhook_subscriptions: list[dict[str, Any]] = []
        self._action_depth = 0
        self._pending_events: list[tuple[str, str, Any]] = []

        self._available = self.bucket_size
        self._bucket_at: float | None = None
        # ids: a per-store prefix keeps two stores' ids apart (a merchant order id never equals
        # a vendor order id by accident); one counter for every resource in the store
        self._id_base = (zlib.crc32(name.encode()) % 900 + 100) * 10**9
        self._next_id = 0
        self._order_number = 1000
        self._last_stamp: str | None = None
        self._init_bulk()  # bulk operations: shopify_bulk.py

        self._resolvers = self._build_resolvers()
        for loc in locations if locations is not None else ["Shop location"]:
            self.add_location(**({"name": loc} if isinstance(loc, str) else dict(loc)))

    # ------------------------------------------------------------------------------------------
    # clock, ids
    # ------------------------------------------------------------------------------------------

    def _now_dt(self) -> datetime:
        value = self.now()
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, UTC)
        dt = S.parse_time(value)
        if dt is None:
            raise ValueError(f"store.now() returned {value!r}")
        return dt

    def _stamp(self, after: str | None = None) -> str:
        """Now as a Shopify timestamp, strictly after ``after`` when given."""
        now = self._now_dt().replace(microsecond=0)
        if after:
            prev = S.parse_time(after)
            if prev is not None and now <= prev:
                now = prev + timedelta(seconds=1)
        return fmt_time(now)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._id_base + self._next_id

    def _touch(self, order: dict[str, Any]) -> None:
        order["updatedAt"] = self._stamp(after=order.get("updatedAt"))

    # ------------------------------------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------------------------------------

    def _payload(self, request: Request) -> dict[str, Any] | None:
        try:
            body = request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def operation_of(self, request: Request) -> str:
        if request.path.startswith(OUTPUT_PREFIX):
            return OUTPUT_LABEL
        body = self._payload(request)
        if not body or not isinstance(body.get("query"), str):
            return ""
        doc, _errors = _analyze(body["query"])
        if doc is None:
            return ""
        op = select_operation(doc, body.get("operationName"))
        return ",".join(_root_fields(doc, op)) if op else ""

    def is_write(self, request: Request) -> bool:
        body = self._payload(request)
        if not body or not isinstance(body.get("query"), str):
            return False
        doc, _errors = _analyze(body["query"])
        if doc is None:
            return False
        op = select_operation(doc, body.get("operationName"))
        return bool(op and op.operation == OperationType.MUTATION)

    def handle(self, request: Request) -> Response:
        if request.path.startswith(OUTPUT_PREFIX):  # a bulk operation's file: a signed URL, no token
            return self._bulk_download(request)
        m = _PATH.match(request.path)
        if not m or m.group(1) != self.api_version:
            return Response.json(404, {"errors": "Not Found"})
        if request.method != "POST":
            return Response.json(405, {"errors": "Method Not Allowed"}, {"Allow": "POST"})
        if request.headers.get("x-shopify-access-token") != self.token:
            return Response.json(401, {"errors": INVALID_TOKEN})
        headers = {"X-Shopify-API-Version": self.api_version, "X-Request-Id": str(uuid.uuid4())}
        try:
            body = request.json()
        except ValueError:
            return Response.json(400, {"errors": "Bad Request: the request body is not valid JSON"}, headers)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return Response.json(400, {"errors": {"query": "Required parameter missing or invalid"}}, headers)
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return Response.json(400, {"errors": {"variables": "Parameter is invalid"}}, headers)
        return Response.json(200, self.graphql(body["query"], variables, body.get("operationName")), headers)

    # ------------------------------------------------------------------------------------------
    # GraphQL pipeline
    # ------------------------------------------------------------------------------------------

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
    ) -> dict[str, Any]:
        """Run one GraphQL request as the HTTP endpoint does; the response payload."""
        variables = variables or {}
        doc, errors = _analyze(query)
        if errors:
            paths = _node_paths(doc) if doc is not None else None
            return {"errors": [shopify_error(e, paths) for e in errors]}
        assert doc is not None
        op = select_operation(doc, operation_name)
        if op is None:
            ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
            if operation_name:
                msg, code = f'No operation named "{operation_name}"', "operationNotFound"
            elif not ops:
                msg, code = "Document does not contain any operations", "missingOperation"
            else:
                msg, code = "An operation name is required", "operationNameRequired"
            return {"errors": [{"message": msg, "extensions": {"code": code}}]}

        coerced = get_variable_values(self.schema, op.variable_definitions or [], variables)
        if isinstance(coerced, list):
            return {"errors": [self._variable_error(op, e, variables) for e in coerced]}
        coerced = getattr(coerced, "coerced", coerced)  # graphql-core 3.3 wraps the dict

        root_type = (
            self.schema.mutation_type if op.operation == OperationType.MUTATION else self.schema.query_type
        )
        implemented = MUTATION_ROOT_FIELDS if op.operation == OperationType.MUTATION else QUERY_ROOT_FIELDS
        if op.operation == OperationType.SUBSCRIPTION:
            implemented = ()
            root_type = self.schema.subscription_type
        missing = [f for f in _root_fields(doc, op) if f not in implemented]
        if missing:
            tname = root_type.name if root_type else op.operation.value
            return {
                "errors": [
                    {
                        "message": f"Field '{f}' on type '{tname}' is not implemented by the ordersync "
                        "sandbox",
                        "path": [f],
                        "extensions": {"code": "NOT_IMPLEMENTED"},
                    }
                    for f in missing
                ]
            }

        requested = requested_cost(self.schema, doc, coerced, operation_name)
        if requested > self.max_query_cost:
            return {
                "errors": [
                    {
                        "message": (
                            f"Query cost is {requested}, which exceeds the single query max cost limit "
                            f"({self.max_query_cost}).\n\nSee {RATE_LIMIT_DOCS} for more information on how "
                            "the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer "
                            "limits, bulk operations should be used instead.\nSee "
                            "https://shopify.dev/api/usage/bulk-operations/queries for usage details.\n"
                        ),
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": self.max_query_cost,
                            "documentation": RATE_LIMIT_DOCS,
                        },
                    }
                ]
            }

        with self.lock, self._action():
            available = self._refill()
            if requested > available:
                return self._throttled_payload(requested)
            self._available -= requested
            context: dict[str, Any] = {"search": []}
            result: ExecutionResult = execute(
                self.schema,
                doc,
                root_value={},
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                field_resolver=self._resolve,
                type_resolver=self._type_of,
            )
            actual = min(requested, actual_cost(self.schema, doc, coerced, operation_name, result.data))
            self._available = min(self.bucket_size, self._available + (requested - actual))
            payload: dict[str, Any] = {}
            if result.errors:
                payload["errors"] = [_execution_error(e) for e in result.errors]
            payload["data"] = result.data
            extensions: dict[str, Any] = {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": self._throttle_status(),
                }
            }
            if context["search"]:
                extensions["search"] = context["search"]
            payload["extensions"] = extensions
            return payload

    def _variable_error(
        self, op: OperationDefinitionNode, err: GraphQLError, variables: dict[str, Any]
    ) -> dict[str, Any]:
        m = re.match(r"^Variable '\$(\w+)'", err.message)
        name = m.group(1) if m else "?"
        vtype = next(
            (print_ast(vd.type) for vd in op.variable_definitions or () if vd.variable.name.value == name),
            "?",
        )
        explanation = re.sub(r"^Variable '\$\w+' (?:got invalid value [^;]*; )?", "", err.message)
        return {
            "message": f"Variable ${name} of type {vtype} was provided invalid value",
            "locations": [{"line": loc.line, "column": loc.column} for loc in (err.locations or [])],
            "extensions": {
                "code": "INVALID_VARIABLE",
                "value": variables.get(name),
                "problems": [{"path": [], "explanation": explanation}],
            },
        }

    # --- the bucket ---

    @property
    def available(self) -> float:
        """Points in the bucket now (after the time-based refill)."""
        with self.lock:
            return self._refill()

    @available.setter
    def available(self, value: float) -> None:
        with self.lock:
            self._available = float(value)
            self._bucket_at = self.clock()

    def _refill(self) -> float:
        now = self.clock()
        if self._bucket_at is not None:
            self._available = min(
                self.bucket_size, self._available + max(0.0, now - self._bucket_at) * self.restore_rate
            )
        self._bucket_at = now
        return self._available

    def _throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.bucket_size,
            "currentlyAvailable": round(self._available, 1),
            "restoreRate": self.restore_rate,
        }

    def _throttled_payload(self, requested: int) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": self._throttle_status(),
                }
            },
        }

    def throttled_response(self, request: Request | None = None, requested: int | None = None) -> Response:
        """The THROTTLED answer (HTTP 200) for ``request`` (or a requested cost); nothing runs."""
        if requested is None and request is not None:
            body = self._payload(request) or {}
            doc, errors = (
                _analyze(body.get("query") or "") if isinstance(body.get("query"), str) else (None, ())
            )
            if doc is not None and not errors:
                try:
                    requested = requested_cost(
                        self.schema, doc, body.get("variables") or {}, body.get("operationName")
                    )
                except Exception:  # noqa: BLE001 - best effort
                    requested = None
        with self.lock:
            available = self._refill()
            if requested is None:
                requested = int(available) + 1  # the least that would be throttled now
            return Response.json(
                200, self._throttled_payload(requested), {"X-Shopify-API-Version": self.api_version}
            )

    def error_response(self, status: int, fault: Any = None) -> Response:
        """A Shopify-like answer for an injected HTTP error status."""
        bodies = {
            400: "Bad Request",
            401: INVALID_TOKEN,
            402: "Unavailable Shop",
            403: "Forbidden",
            404: "Not Found",
            423: "This shop is unavailable",
            429: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }
        headers = {"X-Shopify-API-Version": self.api_version}
        if status == 429:
            retry = getattr(fault, "retry_after", None) if fault is not None else None
            if isinstance(fault, dict):
                retry = fault.get("retry_after")
            retry = 1.0 if retry is None else float(retry)
            headers["Retry-After"] = f"{retry:.1f}"
        return Response.json(status, {"errors": bodies.get(status, "Internal Server Error")}, headers)

    # ------------------------------------------------------------------------------------------
    # resolution
    # ------------------------------------------------------------------------------------------

    def _type_of(self, value: Any, info: Any, abstract_type: Any) -> str | None:
        if isinstance(value, dict):
            if value.get("__typename"):
                return value["__typename"]
            parsed = parse_gid(value.get("id"))
            if parsed:
                return parsed[0]
        return None

    def _resolve(self, source: Any, info: Any, **args: Any) -> Any:
        fn = self._resolvers.get((info.parent_type.name, info.field_name))
        if fn is not None:
            value = fn(source, info, **args)
        elif isinstance(source, dict):
            value = source[info.field_name] if info.field_name in source else self._missing(source, info)
        else:
            value = None
        return self._shape(value, info, args)

    def _missing(self, source: dict[str, Any], info: Any) -> Any:
        rt = info.return_type
        if not is_non_null_type(rt):
            return None
        inner = get_nullable_type(rt)
        named = get_named_type(rt)
        if is_list_type(inner) or is_connection_type(named):
            return []
        currency = source.get("currencyCode") or self.currency
        defaults: dict[str, Callable[[], Any]] = {
            "Boolean": lambda: False,
            "Int": lambda: 0,
            "UnsignedInt64": lambda: "0",
            "Float": lambda: 0.0,
            "Decimal": lambda: "0.00",
            "Money": lambda: "0.00",
            "MoneyBag": lambda: money_bag(0, currency),
            "MoneyV2": lambda: money(0, currency),
        }
        if named.name in defaults:
            return defaults[named.name]()
        raise SandboxNotImplemented(f"Field '{info.parent_type.name}.{info.field_name}'")

    def _shape(self, value: Any, info: Any, args: dict[str, Any]) -> Any:
        named = get_named_type(info.return_type)
        if isinstance(value, list):
            if is_connection_type(named):
                items = list(reversed(value)) if args.get("reverse") else value
                entries = [
                    (
                        (
                            i,
                            parse_gid(it.get("id"))[1]
                            if isinstance(it, dict) and parse_gid(it.get("id"))
                            else i,
                        ),
                        it,
                    )
                    for i, it in enumerate(items)
                ]
                return self._connection(entries, args)
            first = args.get("first")
            if isinstance(first, int) and is_list_type(get_nullable_type(info.return_type)):
                return value[: max(first, 0)]
        return value

    def _connection(
        self, entries: list[tuple[tuple, Any]], args: dict[str, Any], descending: bool = False
    ) -> dict[str, Any]:
        """Relay pagination over ``(sort key, item)`` pairs already in traversal order."""
        first, last, after, before = (
            args.get("first"),
            args.get("last"),
            args.get("after"),
            args.get("before"),
        )
        if self._bulk_mode:  # a bulk query writes every node: pagination arguments are ignored
            first = last = after = before = None
        elif first is None and last is None:
            raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
        for label, n in (("first", first), ("last", last)):
            if n is not None and (n < 0 or n > MAX_PAGE_SIZE):
                raise GraphQLError(
                    f"The {label} argument must be between 0 and {MAX_PAGE_SIZE}.",
                    extensions={"code": "BAD_REQUEST"},
                )

        def beyond(key: tuple, ck: tuple) -> bool:
            return _lt(ck, key) if not descending else _lt(key, ck)

        lo, hi = 0, len(entries)
        if after:
            ck = tuple(_decode_cursor(after))
            lo = next((i for i, (k, _) in enumerate(entries) if beyond(k, ck)), len(entries))
        if before:
            ck = tuple(_decode_cursor(before))
            hi = next((i for i in range(lo, len(entries)) if not beyond(ck, entries[i][0])), len(entries))
            hi = max(hi, lo)
        start, end = lo, hi
        if first is not None:
            end = min(end, start + first)
        if last is not None:
            start = max(start, end - last)
        window = entries[start:end]
        edges = [{"cursor": _encode_cursor(k[1], k[0]), "node": item} for k, item in window]
        return {
            "edges": edges,
            "nodes": [e["node"] for e in edges],
            "pageInfo": {
                "hasNextPage": end < len(entries),
                "hasPreviousPage": start > 0,
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    def _build_resolvers(self) -> dict[tuple[str, str], Callable[..., Any]]:
        r: dict[tuple[str, str], Callable[..., Any]] = {}
        q, m = "QueryRoot", "Mutation"
        r[(q, "orders")] = self._q_orders
        r[(q, "ordersCount")] = self._q_orders_count
        r[(q, "order")] = lambda s, i, id: self._lookup_arg(id, "Order")
        r[(q, "productVariants")] = self._q_product_variants
        r[(q, "productVariant")] = lambda s, i, id: self._lookup_arg(id, "ProductVariant")
        r[(q, "products")] = self._q_products
        r[(q, "product")] = lambda s, i, id: self._lookup_arg(id, "Product")
        r[(q, "locations")] = self._q_locations
        r[(q, "location")] = lambda s, i, id=None: (
            self._lookup_arg(id, "Location") if id else (self.locations[0] if self.locations else None)
        )
        r[(q, "shop")] = lambda s, i: self._shop()
        r[(q, "fulfillmentOrder")] = lambda s, i, id: self._lookup_arg(id, "FulfillmentOrder")
        r[(q, "fulfillment")] = lambda s, i, id: self._lookup_arg(id, "Fulfillment")
        r[(q, "job")] = lambda s, i, id: self.jobs.get(id) or {"id": id, "done": True, "query": {}}
        r[(q, "node")] = lambda s, i, id: self._lookup_arg(id, None)
        r[(q, "nodes")] = lambda s, i, ids: [self._lookup_arg(x, None) for x in ids]
        r[(m, "orderCreate")] = self._m_order_create
        r[(m, "orderUpdate")] = self._m_order_update
        r[(m, "orderCancel")] = self._m_order_cancel
        r[(m, "tagsAdd")] = self._m_tags_add
        r[(m, "refundCreate")] = self._m_refund_create
        r[(m, "fulfillmentOrderMove")] = self._m_fulfillment_order_move
        r[(m, "fulfillmentCreate")] = self._m_fulfillment_create
        r[(m, "fulfillmentTrackingInfoUpdate")] = self._m_tracking_update
        r[(q, "webhookSubscription")] = lambda s, i, id: self._lookup_arg(id, "WebhookSubscription")
        r[(q, "webhookSubscriptions")] = self._q_webhook_subscriptions
        r[(q, "webhookSubscriptionsCount")] = self._q_webhook_subscriptions_count
        r[(m, "webhookSubscriptionCreate")] = self._m_webhook_subscription_create
        r[(m, "webhookSubscriptionUpdate")] = self._m_webhook_subscription_update
        r[(m, "webhookSubscriptionDelete")] = self._m_webhook_subscription_delete
        r.update(self._bulk_resolvers())
        r[("Refund", "order")] = lambda s, i: self._deref("Order", s.get("order"))
        r[("RefundLineItem", "lineItem")] = lambda s, i: self._deref("LineItem", s.get("lineItem"))
        r[("RefundLineItem", "location")] = lambda s, i: self._deref("Location", s.get("location"))
        r[("RefundShippingLine", "shippingLine")] = lambda s, i: self._deref(
            "ShippingLine", s.get("shippingLine")
        )
        r[("OrderTransaction", "order")] = lambda s, i: self._deref("Order", s.get("order"))
        # references are stored as GraphQL-shaped stubs ({"id": gid}) and resolved to the live object
        # here (no cycles, so state() stays JSON-able; a stub for an unknown id resolves to itself)
        r[("Job", "query")] = lambda s, i: {}
        r[("LineItem", "variant")] = lambda s, i: self._deref("ProductVariant", s.get("variant"))
        r[("LineItem", "product")] = lambda s, i: self._deref("Product", s.get("product"))
        r[("ProductVariant", "product")] = lambda s, i: self._deref("Product", s.get("product"))
        r[("FulfillmentOrder", "order")] = lambda s, i: self._find("Order", s.get("orderId"))
        r[("FulfillmentOrder", "fulfillments")] = lambda s, i, **a: [
            f
            for f in (self._find("Order", s.get("orderId")) or {}).get("fulfillments", [])
            if s["id"] in [x.get("id") for x in f.get("fulfillmentOrders", [])]
        ]
        r[("FulfillmentOrder", "supportedActions")] = lambda s, i: (
            [{"action": a, "externalUrl": None} for a in ("CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT")]
            if s.get("status") in ("OPEN", "IN_PROGRESS")
            else []
        )
        r[("FulfillmentOrderAssignedLocation", "location")] = lambda s, i: self._deref(
            "Location", s.get("location")
        )
        r[("FulfillmentOrderLineItem", "lineItem")] = lambda s, i: self._deref("LineItem", s.get("lineItem"))
        r[("FulfillmentOrderLineItem", "variant")] = lambda s, i: self._deref(
            "ProductVariant", (self._deref("LineItem", s.get("lineItem")) or {}).get("variant")
        )
        r[("Fulfillment", "order")] = lambda s, i: self._deref("Order", s.get("order"))
        r[("Fulfillment", "location")] = lambda s, i: self._deref("Location", s.get("location"))
        r[("Fulfillment", "fulfillmentOrders")] = lambda s, i, **a: [
            self._deref("FulfillmentOrder", x) for x in s.get("fulfillmentOrders", [])
        ]
        r[("FulfillmentLineItem", "lineItem")] = lambda s, i: self._deref("LineItem", s.get("lineItem"))
        r[("Order", "fulfillments")] = lambda s, i, first=None, query=None: list(s.get("fulfillments", []))
        r[("Order", "fulfillmentsCount")] = lambda s, i: {
            "count": len(s.get("fulfillments", [])),
            "precision": "EXACT",
        }
        r[("Order", "statusPageUrl")] = lambda s, i, **a: (
            f"https://{self.domain}/{s.get('legacyResourceId')}/orders/{s.get('_token', 'status')}"
        )
        r[("Product", "defaultCursor")] = r[("ProductVariant", "defaultCursor")] = lambda s, i: (
            _encode_cursor(int(s.get("legacyResourceId") or 0), int(s.get("legacyResourceId") or 0))
        )
        r[("Customer", "lifetimeDuration")] = lambda s, i: "about 1 month"
        r[("Product", "variantsCount")] = lambda s, i: {
            "count": len(s.get("variants", [])),
            "precision": "EXACT",
        }
        return r

    # ------------------------------------------------------------------------------------------
    # lookups
    # ------------------------------------------------------------------------------------------

    def _all(self, kind: str) -> Iterable[dict[str, Any]]:
        if kind == "Order":
            return self.orders
        if kind == "Product":
            return self.products
        if kind == "ProductVariant":
            return (v for p in self.products for v in p.get("variants", []))
        if kind == "Location":
            return self.locations
        if kind == "Customer":
            return self.customers
        if kind == "FulfillmentOrder":
            return (fo for o in self.orders for fo in o.get("fulfillmentOrders", []))
        if kind == "Fulfillment":
            return (f for o in self.orders for f in o.get("fulfillments", []))
        if kind == "LineItem":
            return (li for o in self.orders for li in o.get("lineItems", []))
        if kind == "Refund":
            return (r for o in self.orders for r in o.get("refunds", []))
        if kind == "ShippingLine":
            return (sl for o in self.orders for sl in o.get("shippingLines", []))
        if kind == "OrderTransaction":
            return (t for o in self.orders for t in o.get("transactions", []))
        if kind == "WebhookSubscription":
            return self.webhook_subscriptions
        if kind == "BulkOperation":
            return self._bulk_all()
        return ()

    def _find(self, kind: str, ident: Any) -> dict[str, Any] | None:
        if ident is None:
            return None
        return next((x for x in self._all(kind) if x.get("id") == ident), None)

    def _lookup_arg(self, value: Any, kind: str | None) -> dict[str, Any] | None:
        parsed = parse_gid(value)
        if parsed is None:
            raise GraphQLError(
                f"Invalid global id '{value}'",
                extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
            )
        if kind is not None and parsed[0] != kind:
            return None
        return self._find(parsed[0], gid(parsed[0], parsed[1]))

    def _deref(self, kind: str, ref: Any) -> Any:
        """The live object a ``{"id": gid}`` stub points at (the stub itself when unknown)."""
        if isinstance(ref, dict) and ref.get("id"):
            return self._find(kind, ref["id"]) or ref
        return ref

    def _line_item(self, order_id: Any, line_id: Any) -> dict[str, Any] | None:
        order = self._find("Order", order_id)
        return next((li for li in (order or {}).get("lineItems", []) if li["id"] == line_id), None)

    def _shop(self) -> dict[str, Any]:
        return {
            "id": gid("Shop", self._id_base // 10**6),
            "name": self.name,
            "email": f"owner@{self.domain}",
            "contactEmail": f"owner@{self.domain}",
            "myshopifyDomain": self.domain,
            "url": f"https://{self.domain}",
            "currencyCode": self.currency,
            "ianaTimezone": "Etc/UTC",
            "timezoneAbbreviation": "UTC",
            "timezoneOffset": "+0000",
            "timezoneOffsetMinutes": 0,
            "orderNumberFormatPrefix": "#",
            "orderNumberFormatSuffix": "",
            "weightUnit": "KILOGRAMS",
            "unitSystem": "METRIC_SYSTEM",
            "taxesIncluded": False,
            "taxShipping": False,
            "enabledPresentmentCurrencies": [self.currency],
            "shopOwnerName": "Sandbox Owner",
            "description": None,
            "createdAt": "2020-01-01T00:00:00Z",
            "updatedAt": "2020-01-01T00:00:00Z",
        }

    def get_order(self, ident: Any) -> dict[str, Any] | None:
        """The order with this GID, numeric id (int or str) or name (``#1001`` / ``1001``)."""
        with self.lock:
            s = str(ident).strip()
            parsed = parse_gid(s)
            if parsed:
                return self._find("Order", gid("Order", parsed[1]))
            for o in self.orders:
                if s == o["legacyResourceId"] or s == o["name"]:
                    return o
            if not s.startswith("#"):
                return next((o for o in self.orders if o["name"] == f"#{s}"), None)
            return None

    def _order_or_raise(self, ident: Any) -> dict[str, Any]:
        order = self.get_order(ident)
        if order is None:
            raise KeyError(f"no order {ident!r} in store {self.name!r}")
        return order

    # ------------------------------------------------------------------------------------------
    # building objects
    # ------------------------------------------------------------------------------------------

    def add_location(self, name: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            num = self._new_id()
            stamp = self._stamp()
            address = {
                "address1": None,
                "address2": None,
                "city": None,
                "country": "United States",
                "countryCode": "US",
                "formatted": [],
                "latitude": None,
                "longitude": None,
                "phone": None,
                "province": None,
                "provinceCode": None,
                "zip": None,
            }
            address.update(fields.pop("address", None) or {})
            loc = {
                "id": gid("Location", num),
                "legacyResourceId": str(num),
                "name": name,
                "isActive": True,
                "activatable": False,
                "deactivatable": True,
                "deletable": False,
                "addressVerified": True,
                "fulfillsOnlineOrders": True,
                "hasActiveInventory": True,
                "hasUnfulfilledOrders": False,
                "isFulfillmentService": False,
                "shipsInventory": True,
                "deactivatedAt": None,
                "fulfillmentService": None,
                "suggestedAddresses": [],
                "createdAt": stamp,
                "updatedAt": stamp,
                "address": address,
            }
            loc.update(fields)
            self.locations.append(loc)
            return loc

    def add_product(
        self,
        title: str,
        sku: str | None = None,
        price: Any = "10.00",
        variants: list[dict[str, Any]] | None = None,
        vendor: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A product with its variants (``variants``: ``[{sku, price, title}]``; default: one
        "Default Title" variant with ``sku``/``price``). Returns the product dict."""
        with self.lock:
            num = self._new_id()
            stamp = self._stamp()
            handle = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"product-{num}"
            product = {
                "id": gid("Product", num),
                "legacyResourceId": str(num),
                "title": title,
                "handle": handle,
                "vendor": vendor or self.name,
                "productType": "",
                "status": "ACTIVE",
                "tags": [],
                "description": "",
                "descriptionHtml": "",
                "createdAt": stamp,
                "updatedAt": stamp,
                "publishedAt": stamp,
                "totalInventory": 0,
                "tracksInventory": False,
                "isGiftCard": False,
                "hasOnlyDefaultVariant": not variants,
                "hasOutOfStockVariants": False,
                "requiresSellingPlan": False,
                "options": [],
                "variants": [],
            }
            product.update(fields)
            specs = variants or [{"sku": sku, "price": price, "title": "Default Title"}]
            for pos, spec in enumerate(specs, start=1):
                vnum = self._new_id()
                vtitle = spec.get("title") or ("Default Title" if len(specs) == 1 else f"Variant {pos}")
                variant = {
                    "id": gid("ProductVariant", vnum),
                    "legacyResourceId": str(vnum),
                    "title": vtitle,
                    "sku": spec.get("sku"),
                    "price": fmt_amount(spec.get("price", price)),
                    "compareAtPrice": None,
                    "barcode": spec.get("barcode"),
                    "position": pos,
                    "displayName": title if vtitle == "Default Title" else f"{title} - {vtitle}",
                    "availableForSale": True,
                    "inventoryQuantity": spec.get("inventoryQuantity", 0),
                    "inventoryPolicy": "DENY",
                    "taxable": True,
                    "requiresComponents": False,
                    "sellableOnlineQuantity": 0,
                    "showUnitPrice": False,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "selectedOptions": [{"name": "Title", "value": vtitle}],
                    "product": {"id": product["id"]},
                }
                product["variants"].append(variant)
            self.products.append(product)
            return product

    def _customer(self, spec: dict[str, Any] | None) -> dict[str, Any] | None:
        """Find (by id or email) or create/update the customer described by ``spec``."""
        if not spec:
            return None
        spec = dict(spec)
        # accept the GraphQL shape too ({defaultEmailAddress: {emailAddress}, defaultPhoneNumber: {phoneNumber}})
        if spec.get("email") is None and isinstance(spec.get("defaultEmailAddress"), dict):
            spec["email"] = spec["defaultEmailAddress"].get("emailAddress")
        if spec.get("phone") is None and isinstance(spec.get("defaultPhoneNumber"), dict):
            spec["phone"] = spec["defaultPhoneNumber"].get("phoneNumber")
        existing = None
        if spec.get("id"):
            existing = self._find("Customer", spec["id"])
        if existing is None and spec.get("email"):
            existing = next(
                (
                    c
                    for c in self.customers
                    if c.get("email") and spec["email"] and c["email"].lower() == spec["email"].lower()
                ),
                None,
            )
        if existing is None:
            num = self._new_id()
            stamp = self._stamp()
            existing = {
                "id": gid("Customer", num),
                "legacyResourceId": str(num),
                "firstName": None,
                "lastName": None,
                "email": None,
                "phone": None,
                "note": None,
                "tags": [],
                "state": "DISABLED",
                "taxExempt": False,
                "verifiedEmail": True,
                "createdAt": stamp,
                "updatedAt": stamp,
                "locale": "en",
                "numberOfOrders": "0",
                "defaultAddress": None,
                "amountSpent": money(0, self.currency),
                "productSubscriberStatus": "NEVER_SUBSCRIBED",
                "dataSaleOptOut": False,
                "canDelete": False,
            }
            self.customers.append(existing)
        for key in ("firstName", "lastName", "email", "phone", "note"):
            if spec.get(key) is not None:
                existing[key] = spec[key]
        if spec.get("tags") is not None:
            existing["tags"] = list(spec["tags"])
        names = [n for n in (existing.get("firstName"), existing.get("lastName")) if n]
        existing["displayName"] = " ".join(names) or existing.get("email") or existing.get("phone") or ""
        existing["defaultEmailAddress"] = (
            {"emailAddress": existing["email"], "marketingState": "NOT_SUBSCRIBED", "validFormat": True}
            if existing.get("email")
            else None
        )
        existing["defaultPhoneNumber"] = {"phoneNumber": existing["phone"]} if existing.get("phone") else None
        return existing

    def _address(self, spec: dict[str, Any] | None) -> dict[str, Any] | None:
        if not spec:
            return None
        spec = dict(spec)
        code = spec.get("countryCodeV2") or spec.get("countryCode")
        first, last = spec.get("firstName"), spec.get("lastName")
        addr = {
            "id": gid("MailingAddress", self._new_id()),
            "firstName": first,
            "lastName": last,
            "name": spec.get("name") or (" ".join(n for n in (first, last) if n) or None),
            "company": spec.get("company"),
            "address1": spec.get("address1"),
            "address2": spec.get("address2"),
            "city": spec.get("city"),
            "province": spec.get("province") or spec.get("provinceCode"),
            "provinceCode": spec.get("provinceCode"),
            "zip": spec.get("zip"),
            "country": spec.get("country") or (COUNTRY_NAMES.get(code, code) if code else None),
            "countryCodeV2": code,
            "phone": spec.get("phone"),
            "latitude": None,
            "longitude": None,
            "timeZone": None,
            "coordinatesValidated": False,
            "validationResultSummary": None,
        }
        lines = [
            addr["name"],
            addr["company"],
            addr["address1"],
            addr["address2"],
            " ".join(x for x in (addr["city"], addr["provinceCode"], addr["zip"]) if x),
            addr["country"],
        ]
        addr["formatted"] = [x for x in lines if x]
        addr["formattedArea"] = (
            ", ".join(x for x in (addr["city"], addr["provinceCode"], addr["country"]) if x) or None
        )
        return addr

    def _line(self, spec: dict[str, Any], currency: str) -> dict[str, Any]:
        spec = dict(spec)
        qty = int(spec.get("quantity", 1))
        price: Any = spec.get("price")
        for key in ("originalUnitPriceSet", "priceSet"):
            if price is None and isinstance(spec.get(key), dict):
                price = (spec[key].get("shopMoney") or {}).get("amount")
        price = decimal(price if price is not None else "0")
        title = spec.get("title") or "Item"
        vtitle = spec.get("variantTitle")
        line = {
            "id": spec.get("id") or gid("LineItem", self._new_id()),
            "title": title,
            "name": f"{title} - {vtitle}" if vtitle else title,
            "variantTitle": vtitle,
            "sku": spec.get("sku"),
            "vendor": spec.get("vendor"),
            "quantity": qty,
            "currentQuantity": spec.get("currentQuantity", qty),
            "unfulfilledQuantity": spec.get("unfulfilledQuantity", spec.get("currentQuantity", qty)),
            "nonFulfillableQuantity": 0,
            "refundableQuantity": qty,
            "requiresShipping": True,
            "taxable": spec.get("taxable", True),
            "isGiftCard": bool(spec.get("giftCard", False)),
            "merchantEditable": True,
            "restockable": True,
            "customAttributes": list(spec.get("customAttributes") or spec.get("properties") or []),
            "discountAllocations": [],
            "duties": [],
            "taxLines": self._tax_lines(spec.get("taxLines"), currency),
            "originalUnitPriceSet": money_bag(price, currency),
            "discountedUnitPriceSet": money_bag(price, currency),
            "discountedUnitPriceAfterAllDiscountsSet": money_bag(price, currency),
            "originalTotalSet": money_bag(price * qty, currency),
            "discountedTotalSet": money_bag(price * qty, currency),
            "priceAfterAllDiscountsBeforeTaxesSet": money_bag(price * qty, currency),
            "totalDiscountSet": money_bag(0, currency),
            "unfulfilledOriginalTotalSet": money_bag(price * qty, currency),
            "unfulfilledDiscountedTotalSet": money_bag(price * qty, currency),
        }
        line["variant"] = (
            spec["variant"]
            if "variant" in spec
            else ({"id": spec["variantId"]} if spec.get("variantId") else None)
        )
        line["product"] = (
            spec["product"]
            if "product" in spec
            else ({"id": spec["productId"]} if spec.get("productId") else None)
        )
        if line["product"] is None and isinstance(line["variant"], dict):
            variant = self._find("ProductVariant", line["variant"].get("id"))
            line["product"] = copy.deepcopy(variant["product"]) if variant else None
        for key, value in spec.items():
            if key not in line and key not in (
                "price",
                "priceSet",
                "variantId",
                "productId",
                "giftCard",
                "properties",
                "taxLines",
            ):
                line[key] = value
        return line

    @staticmethod
    def _tax_lines(specs: Any, currency: str) -> list[dict[str, Any]]:
        """TaxLine dicts from ``[{title, rate, price}]`` (or OrderCreateTaxLineInput / TaxLine shapes)."""
        out = []
        for t in specs or []:
            amount = t.get("price")
            if amount is None:
                amount = bag_amount(t.get("priceSet")) if t.get("priceSet") else "0"
            rate = float(t.get("rate") or 0)
            out.append(
                {
                    "title": t.get("title") or "Tax",
                    "rate": rate,
                    "ratePercentage": round(rate * 100, 6),
                    "priceSet": money_bag(amount, currency),
                    "source": t.get("source") or "Shopify",
                    "channelLiable": bool(t.get("channelLiable", False)),
                }
            )
        return out

    def _shipping_line(self, spec: dict[str, Any], currency: str) -> dict[str, Any]:
        """A ShippingLine from ``{title, code, source, price, discount, taxLines}`` (or ``priceSet`` /
        ``originalPriceSet`` / ``discountedPriceSet``; an already shaped one keeps its id)."""
        price: Any = spec.get("price")
        for key in ("originalPriceSet", "priceSet"):
            if price is None and isinstance(spec.get(key), dict):
                price = bag_amount(spec[key])
        price = decimal(price if price is not None else "0")
        if spec.get("discount") is not None:
            discounted = price - decimal(spec["discount"])
        elif isinstance(spec.get("discountedPriceSet"), dict):
            discounted = bag_amount(spec["discountedPriceSet"])
        else:
            discounted = price
        return {
            "id": spec.get("id") or gid("ShippingLine", self._new_id()),
            "title": spec.get("title") or "Shipping",
            "code": spec.get("code"),
            "source": spec.get("source"),
            "custom": bool(spec.get("custom", True)),
            "isRemoved": bool(spec.get("isRemoved", False)),
            "carrierIdentifier": spec.get("carrierIdentifier"),
            "deliveryCategory": spec.get("deliveryCategory"),
            "phone": spec.get("phone"),
            "shippingRateHandle": spec.get("shippingRateHandle"),
            "discountAllocations": list(spec.get("discountAllocations") or []),
            "taxLines": self._tax_lines(spec.get("taxLines"), currency),
            "originalPriceSet": money_bag(price, currency),
            "discountedPriceSet": money_bag(discounted, currency),
            "currentDiscountedPriceSet": money_bag(discounted, currency),
        }

    def _risk(self, spec: Any) -> dict[str, Any]:
        """``Order.risk`` (OrderRiskSummary) from ``{"level", "message", "provider"}`` or a list of them
        (an ``assessments``-shaped dict is taken as it is; None: no assessment)."""
        if isinstance(spec, dict) and "assessments" in spec:
            return {"recommendation": "NONE", **spec}
        specs = [spec] if isinstance(spec, dict) else list(spec or [])
        assessments = []
        for a in specs:
            level = str(a.get("level") or "NONE").upper()
            facts = a.get("facts")
            if facts is None:
                facts = [a["message"]] if a.get("message") else []
            assessments.append(
                {
                    "riskLevel": level,
                    "facts": [
                        f
                        if isinstance(f, dict)
                        else {
                            "description": f,
                            "sentiment": "NEGATIVE" if level in ("HIGH", "MEDIUM") else "NEUTRAL",
                        }
                        for f in facts
                    ],
                    "provider": {"id": gid("App", self._new_id()), "title": a["provider"]}
                    if a.get("provider")
                    else None,
                }
            )
        levels = {a["riskLevel"] for a in assessments}
        recommendation = (
            "CANCEL"
            if "HIGH" in levels
            else "INVESTIGATE"
            if "MEDIUM" in levels
            else "ACCEPT"
            if levels
            else "NONE"
        )
        return {"assessments": assessments, "recommendation": recommendation}

    @staticmethod
    def _line_targets(order: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
        lines = order.get("lineItems", [])
        wanted = spec.get("lines")
        if wanted is None:
            return list(lines)
        out = []
        for ref in wanted:
            if isinstance(ref, int):
                out.append(lines[ref])
            else:
                out.extend(li for li in lines if ref in (li.get("sku"), li.get("id")))
        return out

    def _allocate_discounts(self, order: dict[str, Any]) -> None:
        """``order["_discounts"]`` allocated to the lines as Shopify does: the line-level ones (``lines``:
        SKUs, line ids or indexes) first, then the order-level ones on what the lines are left at. A
        percentage is taken from each line (rounded to the cent); a fixed ``value`` is split over the
        lines pro rata (the remainder on the last), or per unit with ``each``. A spec: ``{"code" or
        "title", "automatic", "type": "percentage"|"fixed", "value", "lines", "each"}``."""
        cur = order["currencyCode"]
        specs = list(order.get("_discounts") or [])
        ordered = [d for d in specs if d.get("lines") is not None] + [
            d for d in specs if d.get("lines") is None
        ]
        left = {
            li["id"]: bag_amount(li["originalUnitPriceSet"]) * li["quantity"] for li in order["lineItems"]
        }
        allocations: dict[str, list[dict[str, Any]]] = {li["id"]: [] for li in order["lineItems"]}
        applications = []
        cent = Decimal("0.01")
        for index, d in enumerate(ordered):
            percentage = d.get("type", "percentage") == "percentage"
            value = decimal(d.get("value", 0))
            each = bool(d.get("each")) and not percentage
            app: dict[str, Any] = {
                "__typename": "DiscountCodeApplication" if d.get("code") else "AutomaticDiscountApplication",
                "allocationMethod": "EACH" if each else "ACROSS",
                "index": index,
                "targetSelection": "ENTITLED" if d.get("lines") is not None else "ALL",
                "targetType": "LINE_ITEM",
                "value": {"__typename": "PricingPercentageValue", "percentage": float(value)}
                if percentage
                else {"__typename": "MoneyV2", **money(value, cur)},
            }
            if d.get("code"):
                app["code"] = d["code"]
            else:
                app["title"] = d.get("title") or "Automatic discount"
            applications.append(app)
            targets = [li for li in self._line_targets(order, d) if left[li["id"]] > 0]
            amounts: dict[str, Decimal] = {}
            if percentage:
                for li in targets:
                    amounts[li["id"]] = (left[li["id"]] * value / 100).quantize(cent, rounding=ROUND_HALF_UP)
            elif each:
                for li in targets:
                    amounts[li["id"]] = value * li["quantity"]
            elif targets:
                base = sum((left[li["id"]] for li in targets), Decimal("0"))
                for li in targets:
                    amounts[li["id"]] = (value * left[li["id"]] / base).quantize(cent, rounding=ROUND_HALF_UP)
                amounts[targets[-1]["id"]] += min(value, base) - sum(amounts.values(), Decimal("0"))
            for line_id, amount in amounts.items():
                amount = max(Decimal("0"), min(amount, left[line_id]))
                if not amount:
                    continue
                left[line_id] -= amount
                allocations[line_id].append(
                    {"allocatedAmountSet": money_bag(amount, cur), "discountApplication": app}
                )
        for li in order["lineItems"]:
            li["discountAllocations"] = allocations[li["id"]]
        order["discountApplications"] = applications
        codes = [d["code"] for d in ordered if d.get("code")]
        order["discountCodes"] = codes
        order["discountCode"] = codes[0] if codes else None

    def _fulfillment_order(
        self,
        order: dict[str, Any],
        location: dict[str, Any],
        lines: list[tuple[dict[str, Any], int]],
        stamp: str,
    ) -> dict[str, Any]:
        ship = order.get("shippingAddress") or {}
        addr = location.get("address") or {}
        return {
            "id": gid("FulfillmentOrder", self._new_id()),
            "orderId": order["id"],
            "orderName": order["name"],
            "orderProcessedAt": order["processedAt"],
            "status": "OPEN",
            "requestStatus": "UNSUBMITTED",
            "createdAt": stamp,
            "updatedAt": stamp,
            "fulfillAt": stamp,
            "fulfillBy": None,
            "fulfillmentHolds": [],
            "internationalDuties": None,
            "assignedLocation": {
                "name": location["name"],
                "address1": addr.get("address1"),
                "address2": addr.get("address2"),
                "city": addr.get("city"),
                "province": addr.get("province"),
                "zip": addr.get("zip"),
                "countryCode": addr.get("countryCode") or "US",
                "phone": addr.get("phone"),
                "location": {"id": location["id"]},
            },
            "destination": (
                {
                    "id": gid("FulfillmentOrderDestination", self._new_id()),
                    "firstName": ship.get("firstName"),
                    "lastName": ship.get("lastName"),
                    "company": ship.get("company"),
                    "address1": ship.get("address1"),
                    "address2": ship.get("address2"),
                    "city": ship.get("city"),
                    "province": ship.get("province"),
                    "zip": ship.get("zip"),
                    "countryCode": ship.get("countryCodeV2"),
                    "phone": ship.get("phone"),
                    "email": order.get("email"),
                }
                if ship
                else None
            ),
            "deliveryMethod": {
                "id": gid("DeliveryMethod", self._new_id()),
                "methodType": "SHIPPING",
                "presentedName": None,
                "serviceCode": None,
            },
            "lineItems": [self._fo_line(order, li, qty) for li, qty in lines],
        }

    def _fo_line(self, order: dict[str, Any], li: dict[str, Any], qty: int) -> dict[str, Any]:
        return {
            "id": gid("FulfillmentOrderLineItem", self._new_id()),
            "totalQuantity": qty,
            "remainingQuantity": qty,
            "sku": li.get("sku"),
            "productTitle": li.get("title"),
            "variantTitle": li.get("variantTitle"),
            "vendor": li.get("vendor"),
            "requiresShipping": True,
            "inventoryItemId": None,
            "warnings": [],
            "financialSummaries": [],
            "lineItem": {"id": li["id"]},
        }

    def _default_location(self) -> dict[str, Any]:
        if not self.locations:
            self.add_location("Shop location")
        return next((loc for loc in self.locations if loc.get("isActive")), self.locations[0])

    def _recompute(self, order: dict[str, Any]) -> None:
        """Totals, quantities and the fulfillment status derived from the line items."""
        cur = order["currencyCode"]
        lines = order.get("lineItems", [])
        if order.get("_discounts") is not None:
            self._allocate_discounts(order)
        discounts = Decimal("0")
        current = Decimal("0")
        line_discounts = Decimal("0")  # allocated by line-level (ENTITLED) applications
        for li in lines:
            unit = bag_amount(li["originalUnitPriceSet"])
            allocated = sum(
                (bag_amount(a["allocatedAmountSet"]) for a in li.get("discountAllocations") or []),
                Decimal("0"),
            )
            own = sum(
                (
                    bag_amount(a["allocatedAmountSet"])
                    for a in li.get("discountAllocations") or []
                    if (a.get("discountApplication") or {}).get("targetSelection") != "ALL"
                ),
                Decimal("0"),
            )
            discounts += allocated
            line_discounts += own
            paid = unit * li["quantity"] - allocated
            qty = li["quantity"] or 1
            li["totalDiscountSet"] = money_bag(own, cur)
            li["discountedTotalSet"] = money_bag(unit * li["quantity"] - own, cur)
            li["discountedUnitPriceSet"] = money_bag(
                ((unit * li["quantity"] - own) / qty).quantize(Decimal("0.01")), cur
            )
            li["discountedUnitPriceAfterAllDiscountsSet"] = money_bag(
                (paid / qty).quantize(Decimal("0.01")), cur
            )
            li["priceAfterAllDiscountsBeforeTaxesSet"] = money_bag(
                (paid * li["currentQuantity"] / qty).quantize(Decimal("0.01")), cur
            )
            current += (paid * li["currentQuantity"] / qty).quantize(Decimal("0.01"))
        subtotal = sum(
            (bag_amount(li["originalUnitPriceSet"]) * li["quantity"] for li in lines), Decimal("0")
        )
        subtotal -= discounts
        live_shipping = [sl for sl in order.get("shippingLines", []) if not sl.get("isRemoved")]
        shipping = sum((bag_amount(sl.get("discountedPriceSet")) for sl in live_shipping), Decimal("0"))
        shipping_discount = sum(
            (
                bag_amount(sl.get("originalPriceSet")) - bag_amount(sl.get("discountedPriceSet"))
                for sl in live_shipping
            ),
            Decimal("0"),
        )
        tax = sum(
            (bag_amount(t["priceSet"]) for li in lines for t in li.get("taxLines") or []), Decimal("0")
        ) + sum(
            (bag_amount(t["priceSet"]) for sl in live_shipping for t in sl.get("taxLines") or []),
            Decimal("0"),
        )
        total = subtotal + shipping + (Decimal("0") if order.get("taxesIncluded") else tax)
        tax_by_title: dict[tuple[str, float], Decimal] = {}
        for t in [t for li in lines for t in li.get("taxLines") or []] + [
            t for sl in live_shipping for t in sl.get("taxLines") or []
        ]:
            key = (t["title"], t["rate"])
            tax_by_title[key] = tax_by_title.get(key, Decimal("0")) + bag_amount(t["priceSet"])
        order["taxLines"] = order["currentTaxLines"] = [
            {
                "title": k[0],
                "rate": k[1],
                "ratePercentage": round(k[1] * 100, 6),
                "priceSet": money_bag(v, cur),
                "source": "Shopify",
                "channelLiable": False,
            }
            for k, v in tax_by_title.items()
        ]
        order["shippingLine"] = live_shipping[0] if live_shipping else None
        refunded = (
            bag_amount(order.get("totalRefundedSet")) if order.get("totalRefundedSet") else Decimal("0")
        )
        # what refunds took: shipping (and its taxes), the refunded units' taxes
        shipping_refunds = [
            rsl for r in order.get("refunds") or [] for rsl in r.get("refundShippingLines") or []
        ]
        shipping_refunded = sum((bag_amount(x["subtotalAmountSet"]) for x in shipping_refunds), Decimal("0"))
        shipping_tax_refunded = sum((bag_amount(x["taxAmountSet"]) for x in shipping_refunds), Decimal("0"))
        current_line_tax = sum(
            (
                (
                    sum((bag_amount(t["priceSet"]) for t in li.get("taxLines") or []), Decimal("0"))
                    * li["currentQuantity"]
                    / (li["quantity"] or 1)
                ).quantize(Decimal("0.01"))
                for li in lines
            ),
            Decimal("0"),
        )
        shipping_tax = sum(
            (bag_amount(t["priceSet"]) for sl in live_shipping for t in sl.get("taxLines") or []),
            Decimal("0"),
        )
        cancelled = bool(order.get("cancelledAt"))
        current_shipping = shipping - shipping_refunded
        current_tax = current_line_tax + (Decimal("0") if cancelled else shipping_tax - shipping_tax_refunded)
        paid = order["displayFinancialStatus"] in ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")
        received = total if paid else Decimal("0")
        order.update(
            {
                "subtotalPriceSet": money_bag(subtotal, cur),
                "currentSubtotalPriceSet": money_bag(current, cur),
                "totalPriceSet": money_bag(total, cur),
                "originalTotalPriceSet": money_bag(total, cur),
                "currentTotalPriceSet": money_bag(
                    current
                    + (Decimal("0") if cancelled else current_shipping)
                    + (Decimal("0") if order.get("taxesIncluded") else current_tax),
                    cur,
                ),
                "totalShippingPriceSet": money_bag(shipping, cur),
                "currentShippingPriceSet": money_bag(current_shipping, cur),
                "totalTaxSet": money_bag(tax, cur),
                "currentTotalTaxSet": money_bag(current_tax, cur),
                "totalDiscountsSet": money_bag(discounts + shipping_discount, cur),
                "currentTotalDiscountsSet": money_bag(discounts + shipping_discount, cur),
                "cartDiscountAmountSet": money_bag(discounts - line_discounts, cur)
                if discounts - line_discounts
                else None,
                "currentCartDiscountAmountSet": money_bag(discounts - line_discounts, cur),
                "totalReceivedSet": money_bag(received, cur),
                "netPaymentSet": money_bag(received - refunded, cur),
                "totalRefundedSet": money_bag(refunded, cur),
                "totalRefundedShippingSet": money_bag(shipping_refunded, cur),
                "refundable": received - refunded > 0,
                "totalOutstandingSet": money_bag(0 if paid or order.get("cancelledAt") else total, cur),
                "totalCapturableSet": money_bag(
                    total if order["displayFinancialStatus"] == "AUTHORIZED" else 0, cur
                ),
                "totalTipReceivedSet": money_bag(0, cur),
                "refundDiscrepancySet": money_bag(0, cur),
                "subtotalLineItemsQuantity": sum(li["quantity"] for li in lines),
                "currentSubtotalLineItemsQuantity": sum(li["currentQuantity"] for li in lines),
                "fullyPaid": paid,
                "unpaid": order["displayFinancialStatus"] in ("PENDING", "AUTHORIZED", "EXPIRED"),
                "canMarkAsPaid": order["displayFinancialStatus"] in ("PENDING", "PARTIALLY_PAID"),
                "capturable": order["displayFinancialStatus"] == "AUTHORIZED",
                "canNotifyCustomer": bool(order.get("email")),
            }
        )
        fulfilled = sum(li["currentQuantity"] - li["unfulfilledQuantity"] for li in lines)
        open_qty = sum(li["unfulfilledQuantity"] for li in lines)
        if order.get("_fulfillmentStatusPinned"):
            pass
        elif open_qty == 0 and fulfilled > 0:
            order["displayFulfillmentStatus"] = "FULFILLED"
        elif fulfilled > 0:
            order["displayFulfillmentStatus"] = "PARTIALLY_FULFILLED"
        elif not order.get("cancelledAt"):
            order["displayFulfillmentStatus"] = "UNFULFILLED"
        order["fulfillable"] = open_qty > 0 and not order.get("cancelledAt")

    def _make_order(self, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        num = self._new_id()
        stamp = self._stamp()
        self._order_number += 1
        currency = fields.pop("currencyCode", None) or fields.pop("currency", None) or self.currency
        created = norm_time(fields.pop("createdAt", None)) or stamp
        processed = norm_time(fields.pop("processedAt", None)) or created
        updated = norm_time(fields.pop("updatedAt", None)) or created
        name = fields.pop("name", None) or f"#{self._order_number}"
        order: dict[str, Any] = {
            "id": gid("Order", num),
            "legacyResourceId": str(num),
            "name": name,
            "number": self._order_number - 1000,
            "confirmationNumber": uuid.uuid4().hex[:9].upper(),
            "createdAt": created,
            "updatedAt": updated,
            "processedAt": processed,
            "cancelledAt": None,
            "cancelReason": None,
            "cancellation": None,
            "closed": False,
            "closedAt": None,
            "displayFinancialStatus": "PAID",
            "displayFulfillmentStatus": "UNFULFILLED",
            "email": None,
            "phone": None,
            "note": None,
            "poNumber": None,
            "tags": [],
            "customAttributes": [],
            "currencyCode": currency,
            "presentmentCurrencyCode": currency,
            "customerAcceptsMarketing": False,
            "customer": None,
            "shippingAddress": None,
            "billingAddress": None,
            "displayAddress": None,
            "billingAddressMatchesShippingAddress": False,
            "sourceIdentifier": None,
            "sourceName": "web",
            "test": False,
            "confirmed": True,
            "edited": False,
            "estimatedTaxes": False,
            "taxesIncluded": False,
            "taxExempt": False,
            "dutiesIncluded": False,
            "requiresShipping": True,
            "restockable": True,
            "refundable": True,
            "merchantEditable": True,
            "merchantEditableErrors": [],
            "hasTimelineComment": False,
            "productNetwork": False,
            "returnStatus": "NO_RETURN",
            "discountCode": None,
            "discountCodes": [],
            "paymentGatewayNames": ["manual"],
            "customerLocale": "en",
            "clientIp": None,
            "shippingLine": None,
            "shippingLines": [],
            "currentTotalWeight": "0",
            "totalWeight": "0",
            "lineItems": [],
            "fulfillmentOrders": [],
            "fulfillments": [],
            "refunds": [],
            "transactions": [],
            "totalRefundedSet": money_bag(0, currency),
        }
        line_specs = fields.pop("lineItems", None) or []
        customer = fields.pop("customer", None)
        if "discounts" in fields:
            order["_discounts"] = list(fields.pop("discounts") or [])
        order["risk"] = self._risk(fields.pop("risk", None))
        if "shippingLines" in fields:
            order["shippingLines"] = [
                self._shipping_line(sl, currency) for sl in fields.pop("shippingLines") or []
            ]
        for key in ("shippingAddress", "billingAddress"):
            if key in fields:
                order[key] = self._address(fields.pop(key))
        order["displayAddress"] = order["shippingAddress"] or order["billingAddress"]
        if customer is not None:
            order["customer"] = self._customer(customer) if isinstance(customer, dict) else customer
        if "tags" in fields:
            fields["tags"] = _clean_tags(fields["tags"])
        if "displayFulfillmentStatus" in fields:  # an explicit status sticks until the next fulfilment
            order["_fulfillmentStatusPinned"] = True
        order.update(fields)
        order["lineItems"] = [self._line(spec, currency) for spec in line_specs]
        self._recompute(order)
        if order["lineItems"]:
            lines = [
                (li, li["unfulfilledQuantity"]) for li in order["lineItems"] if li["unfulfilledQuantity"] > 0
            ]
            if lines:
                order["fulfillmentOrders"].append(
                    self._fulfillment_order(order, self._default_location(), lines, created)
                )
        self.orders.append(order)
        self._note("orders/create", "order", order["id"])
        if order["displayFinancialStatus"] == "PAID":
            self._note("orders/paid", "order", order["id"])
        self._note("orders/updated", "order", order["id"])
        return order

    # ------------------------------------------------------------------------------------------
    # Python API for tests
    # ------------------------------------------------------------------------------------------

    def add_order(self, **fields: Any) -> dict[str, Any]:
        """Create an order from GraphQL-shaped fields (camelCase). Line items are dicts with
        ``title``, ``quantity``, ``sku``, ``vendor``, ``variantTitle``, and ``price`` (or
        ``originalUnitPriceSet``); ``variant`` (a dict) or ``variantId`` link a variant.
        ``customer`` is ``{firstName, lastName, email, phone}``; addresses are
        MailingAddressInput-shaped. Everything else the schema marks non-null is filled in.
        Delivers ``orders/create``, ``orders/paid`` (when created PAID) and ``orders/updated``."""
        with self._action():
            return self._make_order(fields)

    def update_order(self, ident: Any, **changes: Any) -> dict[str, Any]:
        """Change fields of an order (GraphQL-shaped) and bump its ``updatedAt``. Delivers
        ``orders/updated``; also ``orders/paid`` when ``displayFinancialStatus`` becomes PAID,
        ``orders/edited`` when ``lineItems`` change (an order edit: give a line its ``id`` to keep
        it) and ``orders/cancelled`` when ``cancelledAt`` gets set."""
        with self._action():
            order = self._order_or_raise(ident)
            was_paid = order.get("displayFinancialStatus") == "PAID"
            was_cancelled = order.get("cancelledAt") is not None
            lines_before = {li["id"]: li["currentQuantity"] for li in order.get("lineItems", [])}
            edited = "lineItems" in changes
            explicit_updated = changes.pop("updatedAt", None)
            for key in ("shippingAddress", "billingAddress"):
                if key in changes:
                    order[key] = self._address(changes.pop(key))
            if "customer" in changes:
                c = changes.pop("customer")
                order["customer"] = self._customer(c) if isinstance(c, dict) else None
            if "tags" in changes:
                changes["tags"] = _clean_tags(changes["tags"])
            if "lineItems" in changes:
                order["lineItems"] = [self._line(s, order["currencyCode"]) for s in changes.pop("lineItems")]
            if "discounts" in changes:
                order["_discounts"] = list(changes.pop("discounts") or [])
            if "risk" in changes:
                order["risk"] = self._risk(changes.pop("risk"))
            if "shippingLines" in changes:
                order["shippingLines"] = [
                    self._shipping_line(sl, order["currencyCode"])
                    for sl in changes.pop("shippingLines") or []
                ]
            if "displayFulfillmentStatus" in changes:
                order["_fulfillmentStatusPinned"] = True
            order.update(changes)
            self._recompute(order)
            order["updatedAt"] = (
                norm_time(explicit_updated) if explicit_updated else self._stamp(after=order.get("updatedAt"))
            )
            if edited:
                lines_after = {li["id"]: li["currentQuantity"] for li in order.get("lineItems", [])}
                if lines_after != lines_before:
                    order["edited"] = True
                    payload = W.order_edit(
                        self, order, lines_before, lines_after, order["updatedAt"], self._new_id()
                    )
                    self._note("orders/edited", "raw", payload)
            if not was_paid and order.get("displayFinancialStatus") == "PAID":
                self._note("orders/paid", "order", order["id"])
            if not was_cancelled and order.get("cancelledAt") is not None:
                self._note("orders/cancelled", "order", order["id"])
            self._note("orders/updated", "order", order["id"])
            return order

    def cancel_order(
        self,
        ident: Any,
        reason: str = "CUSTOMER",
        restock: bool = True,
        refund: bool = False,
        notify_customer: bool = False,
        staff_note: str | None = None,
    ) -> dict[str, Any]:
        """Cancel an order as ``orderCancel`` does (``cancelledAt``, ``cancelReason``, closed fulfillment
        orders; ``restock`` takes the unfulfilled units off the order) and deliver ``orders/cancelled`` and
        ``orders/updated``; raises ValueError with the user errors."""
        with self._action():
            order = self._order_or_raise(ident)
            errors = self._cancel(
                order,
                reason=str(reason).upper(),
                restock=restock,
                refund=refund,
                notifyCustomer=notify_customer,
                staffNote=staff_note,
            )
            if errors:
                raise ValueError("; ".join(e["message"] for e in errors))
            return order

    def fulfill_order(
        self,
        ident: Any,
        quantities: dict[str, int] | None = None,
        company: str | None = None,
        number: str | None = None,
        url: str | None = None,
        notify_customer: bool = False,
    ) -> dict[str, Any]:
        """Fulfil an order (all open quantities, or ``{line item id or sku: quantity}``) as
        ``fulfillmentCreate`` does, with optional tracking; returns the fulfillment."""
        with self._action():
            order = self._order_or_raise(ident)
            by_fo: list[dict[str, Any]] = []
            for fo in order["fulfillmentOrders"]:
                if fo["status"] not in ("OPEN", "IN_PROGRESS"):
                    continue
                items = []
                for fol in fo["lineItems"]:
                    li = self._line_item(order["id"], fol["lineItem"]["id"]) or {}
                    want = fol["remainingQuantity"]
                    if quantities is not None:
                        want = quantities.get(li.get("id"), quantities.get(li.get("sku") or "", 0))
                        want = min(want, fol["remainingQuantity"])
                    if want > 0:
                        items.append({"id": fol["id"], "quantity": want})
                if items:
                    by_fo.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items})
            if not by_fo:
                raise ValueError(f"order {order['name']} has nothing left to fulfil")
            tracking = (
                {"company": company, "number": number, "url": url} if (company or number or url) else None
            )
            result = self._fulfill(
                {
                    "lineItemsByFulfillmentOrder": by_fo,
                    "trackingInfo": tracking,
                    "notifyCustomer": notify_customer,
                },
                None,
            )
            if result["userErrors"]:
                raise ValueError("; ".join(e["message"] for e in result["userErrors"]))
            return result["fulfillment"]

    def state(self) -> dict[str, Any]:
        """A JSON-able deep copy of the store's data."""
        with self.lock:
            return copy.deepcopy(
                {
                    "platform": self.platform,
                    "name": self.name,
                    "orders": self.orders,
                    "products": self.products,
                    "locations": self.locations,
                    "customers": self.customers,
                    "webhookSubscriptions": self.webhook_subscriptions,
                    "bulkOperations": [self._bulk_public(o) for o in self._bulk_all()],
                    "bucket": {
                        "currentlyAvailable": round(self._refill(), 1),
                        "maximumAvailable": self.bucket_size,
                        "restoreRate": self.restore_rate,
                    },
                }
            )

    def refund_order(
        self,
        ident: Any,
        amount: Any = None,
        note: str | None = None,
        quantities: dict[str, int] | None = None,
        restock: bool = False,
        shipping: Any = None,
        restock_type: str | None = None,
        location: Any = None,
    ) -> dict[str, Any]:
        """Refund (part of) an order as the admin's Refund button does (a Refund like ``refundCreate``'s).

        ``quantities`` (``{line item id or sku: quantity}``) refunds those units: every refunded unit leaves
        ``currentQuantity`` and ``refundableQuantity``; unfulfilled ones are taken first and leave
        ``unfulfilledQuantity`` and the fulfillment orders. ``restock`` picks each refund line item's
        ``restockType`` as the admin does: CANCEL for the unfulfilled units, RETURN for the fulfilled ones
        (a line refunded across both gives two refund line items); without it NO_RESTOCK. ``restock_type``
        (CANCEL / RETURN / NO_RESTOCK) forces one type for every line instead (validated as refundCreate
        does). ``location`` (a Location GID or name) is the restock location (default: where the units
        were assigned). ``shipping`` refunds shipping: an amount, or True for all that is left, split over
        the order's shipping lines (``refundShippingLines``, with their share of the shipping taxes).

        ``amount`` is the money given back (one manual REFUND transaction); without it, the suggested
        refund: the lines' subtotals after discounts, their taxes (unless ``taxesIncluded``) and the
        shipping refunded; with neither lines nor shipping, everything still refundable. An amount of 0
        with lines records a refund that moves no money (financial status unchanged). Sets
        ``totalRefundedSet``, REFUNDED / PARTIALLY_REFUNDED, bumps ``updatedAt`` and delivers
        ``refunds/create`` and ``orders/updated``. Raises ValueError (the user errors) when Shopify
        would refuse it or there is nothing to refund."""
        with self._action():
            order = self._order_or_raise(ident)
            cur = order["currencyCode"]
            specs: list[dict[str, Any]] = []
            loc_id = None
            if location is not None:
                loc = self._find("Location", location) if parse_gid(location) else None
                loc = loc or next((x for x in self.locations if x.get("name") == location), None)
                if loc is None:
                    raise ValueError(f"no location {location!r} in store {self.name!r}")
                loc_id = loc["id"]
            for key, want in (quantities or {}).items():
                li = next((x for x in order["lineItems"] if key in (x["id"], x.get("sku"))), None)
                if li is None:
                    raise ValueError(f"order {order['name']} has no line item {key!r}")
                want = int(want)
                if restock_type is not None:
                    specs.append(
                        {"lineItemId": li["id"], "quantity": want, "restockType": str(restock_type).upper()}
                    )
                    continue
                if not restock:
                    specs.append({"lineItemId": li["id"], "quantity": want, "restockType": "NO_RESTOCK"})
                    continue
                unf = min(want, li["unfulfilledQuantity"])
                if unf > 0:
                    specs.append({"lineItemId": li["id"], "quantity": unf, "restockType": "CANCEL"})
                if want - unf > 0:
                    specs.append({"lineItemId": li["id"], "quantity": want - unf, "restockType": "RETURN"})
            for spec in specs:
                if loc_id and spec["restockType"] != "NO_RESTOCK":
                    spec["locationId"] = loc_id
            plan, errors = self._plan_refund_lines(order, specs)
            ship_plan: list[dict[str, Any]] = []
            if shipping is not None and shipping is not False:
                ship_plan, ship_errors = self._plan_refund_shipping(
                    order, {"fullRefund": True} if shipping is True else {"amount": shipping}
                )
                errors += ship_errors
            if errors:
                raise ValueError("; ".join(e["message"] for e in errors))
            received = bag_amount(order.get("totalReceivedSet"))
            refunded = bag_amount(order.get("totalRefundedSet"))
            if amount is not None:
                value = decimal(amount)
            elif plan or ship_plan:
                value = self._suggested_amount(order, plan, ship_plan)
            else:
                value = received - refunded
            if value < 0 or value > received - refunded or (value == 0 and not plan and not ship_plan):
                raise ValueError(
                    f"cannot refund {fmt_amount(value)} {cur} of order {order['name']}: "
                    f"{fmt_amount(received - refunded)} {cur} is refundable"
                )
            stamp = self._stamp()
            transactions = (
                [self._refund_transaction(order, value, "manual", None, stamp)] if value > 0 else []
            )
            return self._apply_refund(order, plan, ship_plan, transactions, note, stamp, stamp)

    # --- refunds: planning (validation), amounts, recording ---

    _RESTOCK_TYPES = ("CANCEL", "RETURN", "NO_RESTOCK")

    def _plan_refund_lines(
        self, order: dict[str, Any], specs: list[dict[str, Any]], base: tuple[str, ...] = ("refundLineItems",)
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """RefundLineItemInput-shaped specs checked against the order as Shopify checks them; the plan
        (one entry per spec: line, quantity, restock type, location, units taken from the unfulfilled and
        the fulfilled ones) and the user errors (``field`` paths under ``base``)."""
        errors: list[dict[str, Any]] = []
        plan: list[dict[str, Any]] = []
        left: dict[str, dict[str, int]] = {}
        for idx, spec in enumerate(specs):
            path = [*base, str(idx)]
            li_id = spec.get("lineItemId")
            li = next((x for x in order.get("lineItems", []) if x["id"] == li_id), None)
            if li is None:
                errors.append(
                    {"field": path + ["lineItemId"], "message": "Line item does not exist", "code": "INVALID"}
                )
                continue
            avail = left.setdefault(
                li["id"],
                {
                    "refundable": li.get("refundableQuantity", li["quantity"]),
                    "unfulfilled": min(
                        li["unfulfilledQuantity"], li.get("refundableQuantity", li["quantity"])
                    ),
                    "fulfilled": max(0, li["currentQuantity"] - li["unfulfilledQuantity"]),
                },
            )
            qty = spec.get("quantity")
            rtype = str(spec.get("restockType") or "NO_RESTOCK").upper()
            if not isinstance(qty, int) or qty < 1:
                errors.append(
                    {
                        "field": path + ["quantity"],
                        "message": "Quantity must be greater than 0",
                        "code": "INVALID",
                    }
                )
                continue
            if qty > avail["refundable"]:
                errors.append(
                    {
                        "field": path + ["quantity"],
                        "message": "Quantity cannot refund more items than were purchased",
                        "code": "INVALID",
                    }
                )
                continue
            if rtype == "LEGACY_RESTOCK" or rtype not in self._RESTOCK_TYPES:
                errors.append(
                    {
                        "field": path + ["restockType"],
                        "message": f"Restock type {rtype} is not accepted when creating a refund",
                        "code": "INVALID",
                    }
                )
                continue
            if rtype == "CANCEL" and qty > avail["unfulfilled"]:
                errors.append(
                    {
                        "field": path + ["restockType"],
                        "message": "Restock type CANCEL can only be used for unfulfilled line items",
                        "code": "INVALID",
                    }
                )
                continue
            if rtype == "RETURN" and qty > avail["fulfilled"]:
                errors.append(
                    {
                        "field": path + ["restockType"],
                        "message": "Restock type RETURN can only be used for fulfilled line items",
                        "code": "INVALID",
                    }
                )
                continue
            location = None
            if rtype != "NO_RESTOCK":
                loc_ref = spec.get("locationId")
                if loc_ref:
                    location = self._find("Location", loc_ref) if parse_gid(loc_ref) else None
                    if location is None:
                        errors.append(
                            {
                                "field": path + ["locationId"],
                                "message": "Location does not exist",
                                "code": "INVALID",
                            }
                        )
                        continue
                else:
                    location = self._restock_location(order, li, rtype)
            if rtype == "CANCEL":
                unf = qty
            elif rtype == "RETURN":
                unf = 0
            else:  # NO_RESTOCK: the unfulfilled units go first (they leave the fulfillment orders)
                unf = min(qty, avail["unfulfilled"])
            ful = qty - unf
            if ful > avail["fulfilled"]:  # units of a cancelled order: nothing left to take them from
                ful = avail["fulfilled"]
            avail["refundable"] -= qty
            avail["unfulfilled"] -= unf
            avail["fulfilled"] -= ful
            plan.append(
                {
                    "lineItem": li,
                    "quantity": qty,
                    "restockType": rtype,
                    "location": {"id": location["id"]} if location else None,
                    "unfulfilled": unf,
                    "fulfilled": ful,
                }
            )
        return plan, errors

    def _restock_location(self, order: dict[str, Any], li: dict[str, Any], rtype: str) -> dict[str, Any]:
        """Where restocked units go by default: the location the line's units were assigned to (CANCEL) or
        fulfilled from (RETURN); the store's default location otherwise."""
        if rtype == "RETURN":
            for f in reversed(order.get("fulfillments", [])):
                if any(
                    (x.get("lineItem") or {}).get("id") == li["id"] for x in f.get("fulfillmentLineItems", [])
                ):
                    loc = self._deref("Location", f.get("location"))
                    if isinstance(loc, dict) and loc.get("name"):
                        return loc
        for fo in order.get("fulfillmentOrders", []):
            if any(fol["lineItem"]["id"] == li["id"] for fol in fo.get("lineItems", [])):
                loc = self._deref("Location", fo["assignedLocation"]["location"])
                if isinstance(loc, dict) and loc.get("name"):
                    return loc
        return self._default_location()

    def _shipping_refunded(self, order: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
        """Shipping line id -> (subtotal, tax) refunded so far."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for r in order.get("refunds", []):
            for rsl in r.get("refundShippingLines") or []:
                sid = (rsl.get("shippingLine") or {}).get("id")
                sub, tax = out.get(sid, (Decimal("0"), Decimal("0")))
                out[sid] = (sub + bag_amount(rsl["subtotalAmountSet"]), tax + bag_amount(rsl["taxAmountSet"]))
        return out

    def _plan_refund_shipping(
        self, order: dict[str, Any], spec: dict[str, Any] | None, base: tuple[str, ...] = ("shipping",)
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """ShippingRefundInput (``{amount, fullRefund}``) as refund shipping lines: all that is left of
        each shipping line (fullRefund), or ``amount`` split over them in proportion to what is left of
        each (the rounding remainder on the last), each with its share of the line's taxes."""
        if not spec:
            return [], []
        cent = Decimal("0.01")
        done = self._shipping_refunded(order)
        lines = [sl for sl in order.get("shippingLines", []) if not sl.get("isRemoved")]
        left = {
            sl["id"]: bag_amount(sl["discountedPriceSet"]) - done.get(sl["id"], (Decimal("0"),) * 2)[0]
            for sl in lines
        }
        total_left = sum(left.values(), Decimal("0"))
        if spec.get("fullRefund"):
            portions = {sid: v for sid, v in left.items() if v > 0}
        elif spec.get("amount") is not None:
            try:
                want = decimal(spec["amount"])
            except ValueError:
                return [], [{"field": [*base, "amount"], "message": "Amount is invalid", "code": "INVALID"}]
            if want < 0:
                return [], [
                    {
                        "field": [*base, "amount"],
                        "message": "Amount must be greater than or equal to 0",
                        "code": "INVALID",
                    }
                ]
            if want > total_left:
                return [], [
                    {
                        "field": [*base, "amount"],
                        "message": f"Shipping refund amount must be less than or equal to the refundable "
                        f"shipping amount ({fmt_amount(total_left)})",
                        "code": "INVALID",
                    }
                ]
            if want == 0:
                return [], []
            portions = {}
            live = [sid for sid, v in left.items() if v > 0]
            for sid in live:
                portions[sid] = (want * left[sid] / total_left).quantize(cent, rounding=ROUND_HALF_UP)
            if live:
                portions[live[-1]] += want - sum(portions.values(), Decimal("0"))
        else:
            return [], []
        plan = []
        for sl in lines:
            amount = portions.get(sl["id"])
            if not amount:
                continue
            price = bag_amount(sl["discountedPriceSet"])
            tax_total = sum((bag_amount(t["priceSet"]) for t in sl.get("taxLines") or []), Decimal("0"))
            before_sub, before_tax = done.get(sl["id"], (Decimal("0"), Decimal("0")))
            if price and before_sub + amount >= price:
                tax = tax_total - before_tax
            elif price:
                tax = (tax_total * amount / price).quantize(cent, rounding=ROUND_HALF_UP)
            else:
                tax = Decimal("0")
            plan.append({"shippingLine": sl, "subtotal": amount, "tax": max(Decimal("0"), tax)})
        return plan, []

    @staticmethod
    def _line_money(li: dict[str, Any], before: int, qty: int) -> tuple[Decimal, Decimal]:
        """(subtotal after all the line's discounts, tax) of ``qty`` more units of a line of which
        ``before`` were refunded already (cumulative rounding: all units together add up to the line)."""
        cent = Decimal("0.01")
        n = li["quantity"] or 1
        allocated = sum(
            (bag_amount(a["allocatedAmountSet"]) for a in li.get("discountAllocations") or []), Decimal("0")
        )
        paid = bag_amount(li["originalUnitPriceSet"]) * li["quantity"] - allocated
        tax = sum((bag_amount(t["priceSet"]) for t in li.get("taxLines") or []), Decimal("0"))

        def share(total: Decimal, k: int) -> Decimal:
            return (total * k / n).quantize(cent, rounding=ROUND_HALF_UP)

        return (
            share(paid, before + qty) - share(paid, before),
            share(tax, before + qty) - share(tax, before),
        )

    def _suggested_amount(
        self, order: dict[str, Any], plan: list[dict[str, Any]], ship_plan: list[dict[str, Any]]
    ) -> Decimal:
        """What the admin suggests refunding: lines after discounts, plus their taxes when the prices do
        not include them, plus the shipping refunded (and its taxes, likewise)."""
        seen: dict[str, int] = {}
        total = Decimal("0")
        for item in plan:
            li = item["lineItem"]
            before = li["quantity"] - li.get("refundableQuantity", li["quantity"]) + seen.get(li["id"], 0)
            sub, tax = self._line_money(li, before, item["quantity"])
            seen[li["id"]] = seen.get(li["id"], 0) + item["quantity"]
            total += sub + (Decimal("0") if order.get("taxesIncluded") else tax)
        for item in ship_plan:
            total += item["subtotal"] + (Decimal("0") if order.get("taxesIncluded") else item["tax"])
        return total

    def _refund_transaction(
        self, order: dict[str, Any], amount: Decimal, gateway: str, parent: Any, stamp: str
    ) -> dict[str, Any]:
        cur = order["currencyCode"]
        return {
            "id": gid("OrderTransaction", self._new_id()),
            "kind": "REFUND",
            "status": "SUCCESS",
            "gateway": gateway,
            "formattedGateway": gateway.replace("_", " ").title() if gateway else None,
            "manualPaymentGateway": gateway in ("manual", "cash", "bogus") or gateway.startswith("manual"),
            "amountSet": money_bag(amount, cur),
            "amount": fmt_amount(amount),
            "amountV2": money(amount, cur),
            "createdAt": stamp,
            "processedAt": stamp,
            "test": bool(order.get("test")),
            "manuallyCapturable": False,
            "multiCapturable": False,
            "errorCode": None,
            "authorizationCode": None,
            "paymentId": None,
            "parentTransaction": copy.deepcopy(parent) if isinstance(parent, dict) else None,
            "order": {"id": order["id"]},
            "fees": [],
        }

    def _apply_refund(
        self,
        order: dict[str, Any],
        plan: list[dict[str, Any]],
        ship_plan: list[dict[str, Any]],
        transactions: list[dict[str, Any]],
        note: str | None,
        stamp: str,
        processed: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a planned refund on the order: quantities, fulfillment orders, money, financial status,
        ``updatedAt``; delivers ``refunds/create`` and ``orders/updated``. The Refund."""
        cur = order["currencyCode"]
        refund_lines = []
        for item in plan:
            li, qty = item["lineItem"], item["quantity"]
            before = li["quantity"] - li.get("refundableQuantity", li["quantity"])
            sub, tax = self._line_money(li, before, qty)
            unit = bag_amount(li["originalUnitPriceSet"])
            refund_lines.append(
                {
                    "id": gid("RefundLineItem", self._new_id()),
                    "lineItem": {"id": li["id"]},
                    "quantity": qty,
                    "restockType": item["restockType"],
                    "restocked": item["restockType"] != "NO_RESTOCK",
                    "location": item["location"],
                    "price": fmt_amount(unit),
                    "priceSet": money_bag(unit, cur),
                    "subtotal": fmt_amount(sub),
                    "subtotalSet": money_bag(sub, cur),
                    "totalTax": fmt_amount(tax),
                    "totalTaxSet": money_bag(tax, cur),
                }
            )
            li["refundableQuantity"] = li.get("refundableQuantity", li["quantity"]) - qty
            li["currentQuantity"] = max(0, li["currentQuantity"] - qty)
            if item["unfulfilled"]:
                li["unfulfilledQuantity"] = max(0, li["unfulfilledQuantity"] - item["unfulfilled"])
                li["nonFulfillableQuantity"] = li.get("nonFulfillableQuantity", 0) + item["unfulfilled"]
                self._release_fulfillment_orders(order, li, item["unfulfilled"], stamp)
        ship_lines = [
            {
                "id": gid("RefundShippingLine", self._new_id()),
                "shippingLine": {"id": item["shippingLine"]["id"]},
                "subtotalAmountSet": money_bag(item["subtotal"], cur),
                "taxAmountSet": money_bag(item["tax"], cur),
            }
            for item in ship_plan
        ]
        amount = sum(
            (bag_amount(t["amountSet"]) for t in transactions if t.get("status") == "SUCCESS"), Decimal("0")
        )
        refund = self._record_refund(
            order, amount, note, refund_lines, ship_lines, transactions, stamp, processed
        )
        if extra:
            refund.update(extra)
        if amount > 0:
            received = bag_amount(order.get("totalReceivedSet"))
            refunded = bag_amount(order.get("totalRefundedSet")) + amount
            order["totalRefundedSet"] = money_bag(refunded, cur)
            order["displayFinancialStatus"] = "REFUNDED" if refunded >= received else "PARTIALLY_REFUNDED"
        self._recompute(order)
        self._touch(order)
        self._note("orders/updated", "order", order["id"])
        return refund

    def _release_fulfillment_orders(
        self, order: dict[str, Any], li: dict[str, Any], qty: int, stamp: str
    ) -> None:
        """Refunded unfulfilled units leave the open fulfillment orders (the last ones first); a
        fulfillment order with nothing left to fulfil is CLOSED."""
        for fo in reversed(order.get("fulfillmentOrders", [])):
            if qty <= 0:
                break
            if fo["status"] not in ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD"):
                continue
            touched = False
            for fol in fo["lineItems"]:
                if fol["lineItem"]["id"] != li["id"] or fol["remainingQuantity"] <= 0 or qty <= 0:
                    continue
                take = min(qty, fol["remainingQuantity"])
                fol["remainingQuantity"] -= take
                fol["totalQuantity"] -= take
                qty -= take
                touched = True
            if touched:
                if all(fol["remainingQuantity"] == 0 for fol in fo["lineItems"]):
                    fo["status"] = "CLOSED"
                fo["updatedAt"] = stamp

    def _record_refund(
        self,
        order: dict[str, Any],
        amount: Decimal,
        note: str | None,
        refund_lines: list[dict[str, Any]],
        ship_lines: list[dict[str, Any]],
        transactions: list[dict[str, Any]] | None,
        stamp: str,
        processed: str | None = None,
    ) -> dict[str, Any]:
        """Append a Refund to ``order["refunds"]`` (``transactions`` None: one manual REFUND of
        ``amount``) and note ``refunds/create``."""
        cur = order["currencyCode"]
        num = self._new_id()
        if transactions is None:
            transactions = (
                [self._refund_transaction(order, amount, "manual", None, stamp)] if amount > 0 else []
            )
        refund = {
            "id": gid("Refund", num),
            "legacyResourceId": str(num),
            "createdAt": stamp,
            "updatedAt": stamp,
            "processedAt": processed or stamp,
            "note": note,
            "totalRefunded": money(amount, cur),
            "totalRefundedSet": money_bag(amount, cur),
            "refundLineItems": refund_lines,
            "refundShippingLines": ship_lines,
            "transactions": transactions,
            "orderAdjustments": [],
            "duties": [],
            "return": None,
            "staffMember": None,
            "order": {"id": order["id"]},
        }
        order.setdefault("refunds", []).append(refund)
        order.setdefault("transactions", []).extend(transactions)
        self._note("refunds/create", "refund", refund["id"])
        return refund

    # ------------------------------------------------------------------------------------------
    # webhooks: events, deliveries, subscriptions
    # ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _action(self) -> Iterator[None]:
        """One merchant action (a GraphQL request, a Python API call): the events it causes are
        delivered when it ends, all with one ``X-Shopify-Event-Id``, one delivery per topic and
        resource, built from the state the action left."""
        with self.lock:
            self._action_depth += 1
            try:
                yield
            finally:
                self._action_depth -= 1
                if self._action_depth == 0 and self._pending_events:
                    events, self._pending_events = self._pending_events, []
                    self._flush_events(events)

    def _note(self, topic: str, kind: str, ref: Any) -> None:
        self._pending_events.append((topic, kind, ref))
        if self._action_depth == 0:
            events, self._pending_events = self._pending_events, []
            self._flush_events(events)

    def _flush_events(self, events: list[tuple[str, str, Any]]) -> None:
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for sub in self.webhook_subscriptions:
            by_topic.setdefault(W.rest_topic(sub["topic"]), []).append(sub)
        if not any(topic in by_topic for topic, _, _ in events):
            return
        event_id = str(uuid.uuid4())
        triggered = self._now_dt().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        seen: set[tuple[str, str, Any]] = set()
        for topic, kind, ref in events:
            key = (topic, kind, id(ref) if kind == "raw" else ref)
            subs = by_topic.get(topic)
            if key in seen or not subs:
                continue
            seen.add(key)
            payload = self._webhook_payload(kind, ref)
            if payload is None:
                continue
            for sub in subs:
                self._deliver_webhook(sub, topic, payload, event_id, triggered)

    def _webhook_payload(self, kind: str, ref: Any) -> Any:
        if kind == "raw":
            return ref
        if kind == "order":
            order = self._find("Order", ref)
            return W.rest_order(self, order) if order else None
        if kind == "fulfillment":
            f = self._find("Fulfillment", ref)
            order = self._find("Order", (f or {}).get("order", {}).get("id"))
            return W.rest_fulfillment(self, order, f) if f and order else None
        if kind == "refund":
            refund = self._find("Refund", ref)
            order = self._find("Order", (refund or {}).get("order", {}).get("id"))
            return W.rest_refund(self, order, refund) if refund and order else None
        return None

    def _deliver_webhook(
        self, sub: dict[str, Any], topic: str, payload: Any, event_id: str, triggered: str
    ) -> Delivery:
        body = json.dumps(
            W.include_fields(payload, sub.get("includeFields")), separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": W.USER_AGENT,
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(self.webhook_secret, body),
            "X-Shopify-Shop-Domain": self.domain,
            "X-Shopify-API-Version": sub["apiVersion"]["handle"],
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": triggered,
            "X-Shopify-Event-Id": event_id,
        }
        if sub.get("name"):
            headers["X-Shopify-Name"] = sub["name"]
        return self.webhooks.submit(
            Delivery(
                kind="event",
                topic=topic,
                url=sub["uri"],
                body=body,
                headers=headers,
                subscription_id=sub["id"],
                event_id=event_id,
                retry_delays=tuple(self.webhook_retry_delays),
                timeout=float(self.webhook_timeout),
                is_success=lambda status: 200 <= status < 300,
                on_result=self._on_webhook_result,
            )
        )

    def _on_webhook_result(self, delivery: Delivery, entry: dict[str, Any]) -> None:
        """A delivery that failed its last retry removes its subscription (as Shopify removes an
        Admin-API subscription whose deliveries keep failing)."""
        if entry["ok"] or not entry["final"] or not self.webhook_remove_failing_subscriptions:
            return
        with self.lock:
            before = len(self.webhook_subscriptions)
            self.webhook_subscriptions[:] = [
                s for s in self.webhook_subscriptions if s["id"] != delivery.subscription_id
            ]
            if len(self.webhook_subscriptions) < before:
                entry["subscription_removed"] = True

    def _topic_values(self) -> set[str]:
        enum = self.schema.get_type("WebhookSubscriptionTopic")
        return set(getattr(enum, "values", {}) or {})

    def _check_uri(self, uri: Any, field: str, topic: str, skip: Any = None) -> list[dict[str, Any]]:
        path = ["webhookSubscription", field]
        if not uri:
            return [{"field": path, "message": "Address can't be blank"}]
        parts = re.match(r"^(https?)://[^/\s?#]+[^\s]*$", str(uri))
        if not parts:
            return [{"field": path, "message": "Address is invalid"}]
        if parts.group(1) == "http" and self.webhook_require_https:
            return [{"field": path, "message": "Address protocol http:// is not supported"}]
        for sub in self.webhook_subscriptions:
            if sub["id"] != skip and sub["topic"] == topic and sub["uri"] == uri:
                return [{"field": path, "message": "Address for this topic has already been taken"}]
        return []

    def _subscription_fields(self, spec: dict[str, Any], sub: dict[str, Any]) -> None:
        uri = spec.get("uri") or spec.get("callbackUrl")
        if uri:
            sub["uri"] = sub["callbackUrl"] = uri
            sub["endpoint"] = {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri}
        for key in ("filter", "name"):
            if key in spec:
                sub[key] = spec[key]
        if spec.get("format") is not None:
            sub["format"] = spec["format"]
        for key in ("includeFields", "metafieldNamespaces"):
            if key in spec:
                sub[key] = list(spec[key] or [])
        if "metafields" in spec:
            sub["metafields"] = [
                {"namespace": m.get("namespace"), "key": m.get("key")} for m in spec["metafields"] or []
            ]

    def _create_subscription(
        self, topic: str, spec: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        field = "uri" if spec.get("uri") else "callbackUrl"
        uri = spec.get("uri") or spec.get("callbackUrl")
        errors = self._check_uri(uri, field, topic)
        if errors:
            return None, errors
        num = self._new_id()
        stamp = self._stamp()
        sub: dict[str, Any] = {
            "id": gid("WebhookSubscription", num),
            "legacyResourceId": str(num),
            "topic": topic,
            "format": "JSON",
            "filter": None,
            "name": None,
            "includeFields": [],
            "metafieldNamespaces": [],
            "metafields": [],
            "apiVersion": {"handle": self.api_version, "displayName": self.api_version, "supported": True},
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        self._subscription_fields(spec, sub)
        self.webhook_subscriptions.append(sub)
        return sub, []

    def _m_webhook_subscription_create(
        self, source: Any, info: Any, topic: str, webhookSubscription: dict[str, Any]
    ) -> dict[str, Any]:
        sub, errors = self._create_subscription(topic, dict(webhookSubscription))
        return {"webhookSubscription": sub, "userErrors": errors}

    def _m_webhook_subscription_update(
        self,
        source: Any,
        info: Any,
        id: str,
        webhookSubscription: dict[str, Any],  # noqa: A002
    ) -> dict[str, Any]:
        sub = self._find("WebhookSubscription", id) if parse_gid(id) else None
        if sub is None:
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        spec = dict(webhookSubscription)
        uri = spec.get("uri") or spec.get("callbackUrl")
        if uri or "uri" in spec or "callbackUrl" in spec:
            field = "uri" if "uri" in spec else "callbackUrl"
            errors = self._check_uri(uri, field, sub["topic"], skip=sub["id"])
            if errors:
                return {"webhookSubscription": None, "userErrors": errors}
        self._subscription_fields(spec, sub)
        sub["updatedAt"] = self._stamp(after=sub.get("updatedAt"))
        return {"webhookSubscription": sub, "userErrors": []}

    def _m_webhook_subscription_delete(self, source: Any, info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        sub = self._find("WebhookSubscription", id) if parse_gid(id) else None
        if sub is None:
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        self.webhook_subscriptions.remove(sub)
        return {"deletedWebhookSubscriptionId": sub["id"], "userErrors": []}

    def _subscription_filter(self, query: str | None) -> S.Filter:
        now = self._now_dt()
        handlers = {
            "id": lambda w, op, v: S.compare_id(w["legacyResourceId"], op, v),
            "created_at": lambda w, op, v: S.compare_time(w.get("createdAt"), op, v, now),
            "updated_at": lambda w, op, v: S.compare_time(w.get("updatedAt"), op, v, now),
            "topic": lambda w, op, v: S.compare_text([w["topic"], W.rest_topic(w["topic"])], op, v),
            "endpoint": lambda w, op, v: S.compare_text(w.get("uri"), op, v),
        }
        return S.Filter(query, handlers, lambda w, v: v.lower().rstrip("*") in (w.get("uri") or "").lower())

    def _select_subscriptions(
        self,
        info: Any,
        query: str | None,
        topics: list[str] | None = None,
        uri: str | None = None,
        callbackUrl: str | None = None,
        format: str | None = None,  # noqa: A002
    ) -> list[dict[str, Any]]:
        flt = self._subscription_filter(query)
        self._search_note(info, flt, query)
        items = flt.apply(self.webhook_subscriptions)
        if topics:
            items = [w for w in items if w["topic"] in topics]
        for wanted in (uri, callbackUrl):
            if wanted:
                items = [w for w in items if w.get("uri") == wanted]
        if format:
            items = [w for w in items if w.get("format") == format]
        return items

    def _q_webhook_subscriptions(
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
        topics: list[str] | None = None,
        uri: str | None = None,
        callbackUrl: str | None = None,
        format: str | None = None,  # noqa: A002
        **_: Any,
    ) -> dict[str, Any]:
        items = self._select_subscriptions(info, query, topics, uri, callbackUrl, format)
        keyfn: Callable[[dict[str, Any]], Any] = (
            (lambda w: w["createdAt"]) if sortKey == "CREATED_AT" else (lambda w: int(w["legacyResourceId"]))
        )
        return self._sorted_connection(
            items, keyfn, reverse, dict(first=first, after=after, last=last, before=before)
        )

    def _q_orders_count(
        self,
        source: Any,
        info: Any,
        query: str | None = None,
        limit: int | None = 10000,
        savedSearchId: str | None = None,  # noqa: N803 - the GraphQL argument's name
    ) -> dict[str, Any]:
        """``ordersCount``: how many orders the same ``query`` finds (Shopify caps it at ``limit``)."""
        count = len(self._order_filter(query).apply(self.orders))
        if limit is not None and count > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": count, "precision": "EXACT"}

    def _q_webhook_subscriptions_count(
        self, source: Any, info: Any, query: str | None = None, limit: int | None = 10000
    ) -> dict[str, Any]:
        count = len(self._select_subscriptions(info, query))
        if limit is not None and count > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": count, "precision": "EXACT"}

    def subscribe(self, topic: str, url: str, **options: Any) -> dict[str, Any]:
        """Create a webhook subscription as ``webhookSubscriptionCreate`` does. ``topic``:
        ``orders/create`` or ``ORDERS_CREATE``; ``options``: WebhookSubscriptionInput fields
        (``name``, ``filter``, ``includeFields``, ``format``, ...). Returns the subscription (the
        live dict); raises ValueError with the user errors."""
        enum = W.enum_topic(topic)
        if enum not in self._topic_values():
            raise ValueError(f"{topic!r} is not a WebhookSubscriptionTopic")
        with self.lock:
            sub, errors = self._create_subscription(enum, {**options, "uri": url})
            if sub is None:
                raise ValueError("; ".join(e["message"] for e in errors))
            return sub

    def unsubscribe(self, ident: Any) -> bool:
        """Delete a subscription (GID or numeric id); False when there was none."""
        with self.lock:
            numeric = S.numeric_id(ident)
            sub = next((w for w in self.webhook_subscriptions if int(w["legacyResourceId"]) == numeric), None)
            if sub is None:
                return False
            self.webhook_subscriptions.remove(sub)
            return True

    def subscriptions(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.webhook_subscriptions)

    # ------------------------------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------------------------------

    def _search_note(self, info: Any, flt: S.Filter, query: str | None) -> None:
        if flt.warnings:
            info.context["search"].append(
                {"path": [str(p) for p in info.path.as_list()], "query": query, "warnings": flt.warnings}
            )

    def _order_filter(self, query: str | None) -> S.Filter:
        now = self._now_dt()

        def t(key: str) -> Callable[[Any, str, str], bool]:
            return lambda o, op, v: S.compare_time(o.get(key), op, v, now)

        def name(o: dict[str, Any], op: str, v: str) -> bool:
            if op == "exists":
                return True
            if op == "=":
                return o["name"].lower() in (v.lower(), "#" + v.lower().lstrip("#"))
            num = S._number(v.lstrip("#"))
            own = S._number(o["name"].lstrip("#"))
            return num is not None and own is not None and S._cmp(own, op, num)

        def fstatus(o: dict[str, Any], op: str, v: str) -> bool:
            s = o["displayFulfillmentStatus"].lower()
            v = v.lower()
            if v == "shipped":
                return s in ("fulfilled", "partially_fulfilled")
            if v == "unshipped":
                return s in ("unfulfilled",)
            if v == "partial":
                return s == "partially_fulfilled"
            return S.compare_text(s, op, v)

        def status(o: dict[str, Any], op: str, v: str) -> bool:
            v = v.lower()
            if v == "cancelled" or v == "canceled":
                return o.get("cancelledAt") is not None
            if v == "closed":
                return bool(o.get("closed"))
            if v == "open":
                return not o.get("closed") and o.get("cancelledAt") is None
            if v == "not_closed":
                return not o.get("closed")
            return False

        def default(o: dict[str, Any], v: str) -> bool:
            c = o.get("customer") or {}
            hay = [
                o["name"],
                o.get("email"),
                c.get("firstName"),
                c.get("lastName"),
                c.get("email"),
                *o.get("tags", []),
            ]
            needle = v.lower().rstrip("*")
            return any(h and needle in str(h).lower() for h in hay)

        handlers = {
            "id": lambda o, op, v: S.compare_id(o["legacyResourceId"], op, v),
            "name": name,
            "created_at": t("createdAt"),
            "updated_at": t("updatedAt"),
            "processed_at": t("processedAt"),
            "source_identifier": lambda o, op, v: S.compare_text(o.get("sourceIdentifier"), op, v),
            "source_name": lambda o, op, v: S.compare_text(o.get("sourceName"), op, v),
            "tag": lambda o, op, v: S.compare_text(o.get("tags", []), op, v),
            "tag_not": lambda o, op, v: not S.compare_text(o.get("tags", []), op, v),
            "financial_status": lambda o, op, v: S.compare_text(
                (o.get("displayFinancialStatus") or "").lower(), op, v
            ),
            "fulfillment_status": fstatus,
            "status": status,
            "sku": lambda o, op, v: S.compare_text([li.get("sku") for li in o.get("lineItems", [])], op, v),
            "email": lambda o, op, v: S.compare_text(o.get("email"), op, v),
            "po_number": lambda o, op, v: S.compare_text(o.get("poNumber"), op, v),
            "test": lambda o, op, v: S.compare_bool(o.get("test"), op, v),
            "customer_id": lambda o, op, v: S.compare_id((o.get("customer") or {}).get("id"), op, v),
        }
        return S.Filter(query, handlers, default)

    def _q_orders(
        self,
        source: Any,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
        sortKey: str = "PROCESSED_AT",
        reverse: bool = False,
        savedSearchId: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        flt = self._order_filter(query)
        self._search_note(info, flt, query)
        items = flt.apply(self.orders)
        keyfns: dict[str, Callable[[dict[str, Any]], Any]] = {
            "CREATED_AT": lambda o: o["createdAt"],
            "UPDATED_AT": lambda o: o["updatedAt"],
            "PROCESSED_AT": lambda o: o["processedAt"],
            "ORDER_NUMBER": lambda o: o.get("number", 0),
            "TOTAL_PRICE": lambda o: float(bag_amount(o.get("totalPriceSet"))),
            "CURRENT_TOTAL_PRICE": lambda o: float(bag_amount(o.get("currentTotalPriceSet"))),
            "FINANCIAL_STATUS": lambda o: o.get("displayFinancialStatus") or "",
            "FULFILLMENT_STATUS": lambda o: o.get("displayFulfillmentStatus") or "",
            "PO_NUMBER": lambda o: o.get("poNumber") or "",
            "TOTAL_ITEMS_QUANTITY": lambda o: o.get("subtotalLineItemsQuantity", 0),
            "CUSTOMER_NAME": lambda o: (o.get("customer") or {}).get("displayName") or "",
        }
        fn = keyfns.get(sortKey, lambda o: 0)
        return self._sorted_connection(
            items, fn, reverse, dict(first=first, after=after, last=last, before=before)
        )

    def _sorted_connection(
        self,
        items: list[dict[str, Any]],
        keyfn: Callable[[dict[str, Any]], Any],
        reverse: bool,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        keyed = [((keyfn(x), int(x["legacyResourceId"])), x) for x in items]
        keyed.sort(key=lambda e: e[0], reverse=bool(reverse))
        return self._connection(keyed, args, descending=bool(reverse))

    def _variant_filter(self, query: str | None) -> S.Filter:
        def product(v: dict[str, Any]) -> dict[str, Any]:
            return self._find("Product", (v.get("product") or {}).get("id")) or {}

        now = self._now_dt()
        handlers = {
            "sku": lambda v, op, val: S.compare_text(v.get("sku"), op, val),
            "id": lambda v, op, val: S.compare_id(v["legacyResourceId"], op, val),
            "product_id": lambda v, op, val: S.compare_id(product(v).get("legacyResourceId"), op, val),
            "product_ids": lambda v, op, val: any(
                S.compare_id(product(v).get("legacyResourceId"), "=", x) for x in val.split(",")
            ),
            "title": lambda v, op, val: S.compare_text(v.get("title"), op, val),
            "vendor": lambda v, op, val: any(
                S.compare_text(product(v).get("vendor"), op, x) for x in val.split(",")
            ),
            "barcode": lambda v, op, val: S.compare_text(v.get("barcode"), op, val),
            "product_status": lambda v, op, val: any(
                S.compare_text(product(v).get("status"), op, x) for x in val.split(",")
            ),
            "created_at": lambda v, op, val: S.compare_time(v.get("createdAt"), op, val, now),
            "updated_at": lambda v, op, val: S.compare_time(v.get("updatedAt"), op, val, now),
        }

        def default(v: dict[str, Any], val: str) -> bool:
            hay = [v.get("title"), v.get("sku"), product(v).get("title")]
            return any(h and val.lower().rstrip("*") in str(h).lower() for h in hay)

        return S.Filter(query, handlers, default)

    def _q_product_variants(
        self,
        source: Any,
        info: Any,
        query: str | None = None,
        sortKey: str = "ID",
        reverse: bool = False,
        **args: Any,
    ) -> dict[str, Any]:
        flt = self._variant_filter(query)
        self._search_note(info, flt, query)
        items = flt.apply(self._all("ProductVariant"))
        keyfns = {
            "SKU": lambda v: v.get("sku") or "",
            "TITLE": lambda v: v.get("title") or "",
            "POSITION": lambda v: v.get("position", 0),
            "FULL_TITLE": lambda v: v.get("displayName") or "",
            "INVENTORY_QUANTITY": lambda v: v.get("inventoryQuantity") or 0,
        }
        return self._sorted_connection(items, keyfns.get(sortKey, lambda v: 0), reverse, args)

    def _q_products(
        self,
        source: Any,
        info: Any,
        query: str | None = None,
        sortKey: str = "ID",
        reverse: bool = False,
        **args: Any,
    ) -> dict[str, Any]:
        now = self._now_dt()
        handlers = {
            "id": lambda p, op, v: S.compare_id(p["legacyResourceId"], op, v),
            "title": lambda p, op, v: S.compare_text(p.get("title"), op, v),
            "sku": lambda p, op, v: S.compare_text([x.get("sku") for x in p.get("variants", [])], op, v),
            "vendor": lambda p, op, v: S.compare_text(p.get("vendor"), op, v),
            "status": lambda p, op, v: any(S.compare_text(p.get("status"), op, x) for x in v.split(",")),
            "product_type": lambda p, op, v: S.compare_text(p.get("productType"), op, v),
            "tag": lambda p, op, v: S.compare_text(p.get("tags", []), op, v),
            "handle": lambda p, op, v: any(S.compare_text(p.get("handle"), op, x) for x in v.split(",")),
            "created_at": lambda p, op, v: S.compare_time(p.get("createdAt"), op, v, now),
            "updated_at": lambda p, op, v: S.compare_time(p.get("updatedAt"), op, v, now),
        }
        flt = S.Filter(query, handlers, lambda p, v: v.lower().rstrip("*") in (p.get("title") or "").lower())
        self._search_note(info, flt, query)
        keyfns = {
            "TITLE": lambda p: p.get("title") or "",
            "VENDOR": lambda p: p.get("vendor") or "",
            "CREATED_AT": lambda p: p["createdAt"],
            "UPDATED_AT": lambda p: p["updatedAt"],
            "PRODUCT_TYPE": lambda p: p.get("productType") or "",
        }
        return self._sorted_connection(
            flt.apply(self.products), keyfns.get(sortKey, lambda p: 0), reverse, args
        )

    def _q_locations(
        self,
        source: Any,
        info: Any,
        query: str | None = None,
        sortKey: str = "NAME",
        reverse: bool = False,
        includeInactive: bool = False,
        includeLegacy: bool = False,
        **args: Any,
    ) -> dict[str, Any]:
        handlers = {
            "id": lambda loc, op, v: S.compare_id(loc["legacyResourceId"], op, v),
            "name": lambda loc, op, v: S.compare_text(loc.get("name"), op, v),
            "active": lambda loc, op, v: S.compare_bool(loc.get("isActive"), op, v),
        }
        flt = S.Filter(query, handlers, lambda loc, v: v.lower() in (loc.get("name") or "").lower())
        self._search_note(info, flt, query)
        items = [loc for loc in flt.apply(self.locations) if includeInactive or loc.get("isActive")]
        keyfn = (lambda loc: loc.get("name") or "") if sortKey == "NAME" else (lambda loc: 0)
        return self._sorted_connection(items, keyfn, reverse, args)

    # ------------------------------------------------------------------------------------------
    # mutations
    # ------------------------------------------------------------------------------------------

    def _m_order_create(
        self, source: Any, info: Any, order: dict[str, Any], options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        spec = dict(order)
        currency = spec.get("currency") or self.currency
        lines_in = spec.get("lineItems") or []
        if not lines_in:
            errors.append(
                {
                    "field": ["order", "lineItems"],
                    "message": "Line items must have at least one line item",
                    "code": "INVALID",
                }
            )
        if spec.get("customer") and spec["customer"].get("toUpsert") and spec["customer"].get("toAssociate"):
            errors.append(
                {
                    "field": ["order", "customer"],
                    "code": "REDUNDANT_CUSTOMER_FIELDS",
                    "message": "Only one of toUpsert or toAssociate can be provided",
                }
            )
        if spec.get("customer") and spec.get("customerId"):
            errors.append(
                {
                    "field": ["order", "customerId"],
                    "code": "REDUNDANT_CUSTOMER_FIELDS",
                    "message": "Only one of customer or customerId can be provided",
                }
            )
        line_specs: list[dict[str, Any]] = []
        for idx, li in enumerate(lines_in):
            path = ["order", "lineItems", str(idx)]
            qty = li.get("quantity")
            if qty is None or qty < 1:
                errors.append(
                    {
                        "field": path + ["quantity"],
                        "code": "INVALID",
                        "message": "Quantity must be greater than or equal to 1",
                    }
                )
            price_set = li.get("priceSet")
            price = (price_set or {}).get("shopMoney", {}).get("amount") if price_set else None
            if li.get("variantId"):
                variant = (
                    self._find("ProductVariant", li["variantId"]) if parse_gid(li["variantId"]) else None
                )
                if variant is None:
                    errors.append(
                        {
                            "field": path + ["variantId"],
                            "code": "INVALID",
                            "message": f"Variant {li['variantId']} does not exist",
                        }
                    )
                    continue
                product = self._find("Product", (variant.get("product") or {}).get("id")) or {}
                vtitle = variant.get("title")
                line_specs.append(
                    {
                        "title": li.get("title") or product.get("title") or vtitle,
                        "variantTitle": li.get("variantTitle")
                        or (None if vtitle == "Default Title" else vtitle),
                        "sku": li.get("sku") or variant.get("sku"),
                        "vendor": li.get("vendor") or product.get("vendor"),
                        "quantity": qty or 1,
                        "price": price if price is not None else variant.get("price"),
                        "variantId": variant["id"],
                        "productId": product.get("id"),
                        "customAttributes": [
                            {"key": p.get("name"), "value": p.get("value")}
                            for p in li.get("properties") or []
                        ],
                        "requiresShipping": li.get("requiresShipping", True) is not False,
                        "taxable": li.get("taxable", True) is not False,
                        "giftCard": bool(li.get("giftCard")),
                        "taxLines": li.get("taxLines") or [],
                    }
                )
            else:
                if not li.get("title"):
                    errors.append(
                        {
                            "field": path + ["title"],
                            "code": "INVALID",
                            "message": "Title can't be blank for a line item without a variant",
                        }
                    )
                    continue
                line_specs.append(
                    {
                        "title": li["title"],
                        "variantTitle": li.get("variantTitle"),
                        "sku": li.get("sku"),
                        "vendor": li.get("vendor"),
                        "quantity": qty or 1,
                        "price": price if price is not None else "0",
                        "customAttributes": [
                            {"key": p.get("name"), "value": p.get("value")}
                            for p in li.get("properties") or []
                        ],
                        "requiresShipping": li.get("requiresShipping", True) is not False,
                        "taxable": li.get("taxable", True) is not False,
                        "giftCard": bool(li.get("giftCard")),
                        "taxLines": li.get("taxLines") or [],
                    }
                )
        for idx, sl in enumerate(spec.get("shippingLines") or []):
            if not sl.get("title"):
                errors.append(
                    {
                        "field": ["order", "shippingLines", str(idx), "title"],
                        "code": "INVALID",
                        "message": "Title can't be blank",
                    }
                )
        if errors:
            return {"order": None, "userErrors": errors}

        fields: dict[str, Any] = {
            "lineItems": line_specs,
            "currencyCode": currency,
            "presentmentCurrencyCode": spec.get("presentmentCurrency") or currency,
        }
        for key in (
            "email",
            "phone",
            "note",
            "poNumber",
            "sourceIdentifier",
            "sourceUrl",
            "test",
            "taxesIncluded",
            "processedAt",
            "closedAt",
            "name",
        ):
            if spec.get(key) is not None:
                fields[key] = spec[key]
        fields["sourceName"] = spec.get("sourceName") or "api"
        if spec.get("tags") is not None:
            fields["tags"] = spec["tags"]
        if spec.get("buyerAcceptsMarketing") is not None:
            fields["customerAcceptsMarketing"] = bool(spec["buyerAcceptsMarketing"])
        fields["customAttributes"] = [
            {"key": a["key"], "value": a.get("value")} for a in spec.get("customAttributes") or []
        ]
        if spec.get("shippingAddress"):
            fields["shippingAddress"] = spec["shippingAddress"]
        if spec.get("billingAddress"):
            fields["billingAddress"] = spec["billingAddress"]
        status = spec.get("financialStatus")
        if status is None:
            status = "PAID"
            kinds = [
                (t.get("kind") or "SALE", t.get("status") or "SUCCESS")
                for t in spec.get("transactions") or []
            ]
            if any(k == "AUTHORIZATION" and s == "SUCCESS" for k, s in kinds):
                status = "AUTHORIZED"
            if any(k in ("SALE", "CAPTURE") and s == "SUCCESS" for k, s in kinds):
                status = "PAID"
            elif kinds and all(s in ("PENDING", "AWAITING_RESPONSE") for _, s in kinds):
                status = "PENDING"
        fields["displayFinancialStatus"] = status
        if spec.get("closedAt"):
            fields["closed"] = True
        cust = spec.get("customer") or {}
        if cust.get("toUpsert"):
            fields["customer"] = {k: v for k, v in cust["toUpsert"].items() if k != "addresses"}
        elif cust.get("toAssociate") or spec.get("customerId"):
            ref = cust.get("toAssociate") or {"id": spec.get("customerId")}
            found = (self._find("Customer", ref.get("id")) if ref.get("id") else None) or next(
                (c for c in self.customers if ref.get("email") and c.get("email") == ref.get("email")), None
            )
            if found is None:
                return {
                    "order": None,
                    "userErrors": [
                        {
                            "field": ["order", "customer", "toAssociate"],
                            "code": "INVALID",
                            "message": "Customer does not exist",
                        }
                    ],
                }
            fields["customer"] = found
        if isinstance(fields.get("customer"), dict) and "id" not in fields["customer"]:
            if not fields.get("email") and fields["customer"].get("email"):
                fields["email"] = fields["customer"]["email"]
            if not fields["customer"].get("email") and fields.get("email"):
                fields["customer"]["email"] = fields["email"]
        shipping_lines = [
            self._shipping_line(
                {
                    "title": sl["title"],
                    "code": sl.get("code"),
                    "source": sl.get("source"),
                    "priceSet": sl.get("priceSet"),
                    "taxLines": sl.get("taxLines"),
                },
                currency,
            )
            for sl in spec.get("shippingLines") or []
        ]
        if shipping_lines:
            fields["shippingLines"] = shipping_lines
        opts = {"sendReceipt": False, "sendFulfillmentReceipt": False, "inventoryBehaviour": "BYPASS"}
        opts.update({k: v for k, v in (options or {}).items() if v is not None})
        fields["_options"] = opts
        fields["_input"] = copy.deepcopy(spec)
        new = self._make_order(fields)
        fstatus = spec.get("fulfillmentStatus")
        fulfil = spec.get("fulfillment")
        if fstatus == "FULFILLED" or fulfil:
            by_fo = [{"fulfillmentOrderId": fo["id"]} for fo in new["fulfillmentOrders"]]
            tracking = None
            if fulfil and (
                fulfil.get("trackingNumber") or fulfil.get("trackingNumbers") or fulfil.get("trackingCompany")
            ):
                tracking = {
                    "company": fulfil.get("trackingCompany"),
                    "number": fulfil.get("trackingNumber"),
                    "numbers": fulfil.get("trackingNumbers"),
                }
            if by_fo:
                self._fulfill(
                    {
                        "lineItemsByFulfillmentOrder": by_fo,
                        "trackingInfo": tracking,
                        "notifyCustomer": bool((fulfil or {}).get("notifyCustomer")),
                    },
                    None,
                )
        return {"order": new, "userErrors": []}

    def _m_order_update(self, source: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        order = self._find("Order", input.get("id")) if parse_gid(input.get("id")) else None
        if order is None:
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        if "email" in input:
            order["email"] = input["email"]
        if "phone" in input:
            order["phone"] = input["phone"]
        if "note" in input:
            order["note"] = input["note"]
        if "poNumber" in input:
            order["poNumber"] = input["poNumber"]
        if "tags" in input:
            order["tags"] = _clean_tags(input["tags"] or [])
        if "customAttributes" in input:
            order["customAttributes"] = [
                {"key": a["key"], "value": a.get("value")} for a in input["customAttributes"] or []
            ]
        if "shippingAddress" in input:
            order["shippingAddress"] = self._address(input["shippingAddress"])
            order["displayAddress"] = order["shippingAddress"] or order.get("billingAddress")
        if input.get("metafields"):
            order.setdefault("_metafields", []).extend(copy.deepcopy(input["metafields"]))
        self._recompute(order)
        self._touch(order)
        self._note("orders/updated", "order", order["id"])
        return {"order": order, "userErrors": []}

    def _m_tags_add(self, source: Any, info: Any, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002
        """tagsAdd on an order: the tags it lacks are appended (case-insensitively, as Shopify
        compares tags; each item may itself be a comma-separated list), the others kept. Only a real
        change bumps ``updatedAt`` and delivers ``orders/updated``."""
        parsed = parse_gid(id)
        order = self._find("Order", id) if parsed and parsed[0] == "Order" else None
        if order is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        wanted = _clean_tags([part for t in tags for part in str(t).split(",")])
        have = {t.lower() for t in order.get("tags") or []}
        added = [t for t in wanted if t.lower() not in have]
        if added:
            order["tags"] = list(order.get("tags") or []) + added
            self._touch(order)
            self._note("orders/updated", "order", order["id"])
        return {"node": order, "userErrors": []}

    def _idempotency_key(self, info: Any, field: str) -> str:
        """The ``@idempotent(key:)`` on this field (required on ``refundCreate`` since 2026-04: without
        it, or with a blank key, the field fails with a top-level error and nothing runs)."""
        directive = self.schema.get_directive("idempotent")
        values = (
            get_directive_values(directive, info.field_nodes[0], info.variable_values) if directive else None
        )
        if not values:
            raise GraphQLError(IDEMPOTENCY_REQUIRED.format(field=field), extensions={"code": "BAD_REQUEST"})
        key = values.get("key")
        if not isinstance(key, str) or not key.strip():
            raise GraphQLError(IDEMPOTENCY_BLANK, extensions={"code": "BAD_REQUEST"})
        return key

    def _m_refund_create(self, source: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        """refundCreate (see the module docstring): validated as Shopify does, recorded like a merchant
        refund, once per idempotency key."""
        key = self._idempotency_key(info, "refundCreate")
        fingerprint = json.dumps(input, sort_keys=True, default=str)
        seen = self._idempotency.get(("refundCreate", key))
        if seen is not None:
            if seen["fingerprint"] != fingerprint:
                raise GraphQLError(IDEMPOTENCY_MISMATCH, extensions={"code": IDEMPOTENCY_MISMATCH_CODE})
            refund = self._find("Refund", seen["refund"])
            return {"refund": refund, "order": self._find("Order", seen["order"]), "userErrors": []}

        def fail(field: list[str], message: str, code: str = "INVALID") -> dict[str, Any]:
            return {
                "refund": None,
                "order": None,
                "userErrors": [{"field": field, "message": message, "code": code}],
            }

        order = self._find("Order", input.get("orderId")) if parse_gid(input.get("orderId")) else None
        if order is None:
            return fail(["orderId"], "Order does not exist", "NOT_FOUND")
        if input.get("refundDuties"):
            raise SandboxNotImplemented("RefundInput.refundDuties")
        if input.get("refundMethods"):
            raise SandboxNotImplemented("RefundInput.refundMethods (store credit)")
        currency = input.get("currency")
        if currency and currency != order.get("presentmentCurrencyCode", order["currencyCode"]):
            return fail(["currency"], "Currency must match the order's presentment currency")
        plan, errors = self._plan_refund_lines(order, list(input.get("refundLineItems") or []))
        ship_plan, ship_errors = self._plan_refund_shipping(order, input.get("shipping"))
        errors += ship_errors
        stamp = self._stamp()
        transactions: list[dict[str, Any]] = []
        total = Decimal("0")
        for idx, t in enumerate(input.get("transactions") or []):
            path = ["transactions", str(idx)]
            if t.get("orderId") != order["id"]:
                errors.append(
                    {
                        "field": path + ["orderId"],
                        "message": "Order does not match the refund's order",
                        "code": "INVALID",
                    }
                )
                continue
            if t.get("kind") != "REFUND":
                errors.append({"field": path + ["kind"], "message": "Kind must be refund", "code": "INVALID"})
                continue
            try:
                amount = decimal(t.get("amount"))
            except ValueError:
                errors.append({"field": path + ["amount"], "message": "Amount is invalid", "code": "INVALID"})
                continue
            if amount <= 0:
                errors.append(
                    {
                        "field": path + ["amount"],
                        "message": "Amount must be greater than 0",
                        "code": "INVALID",
                    }
                )
                continue
            parent = None
            if t.get("parentId"):
                parent = self._find("OrderTransaction", t["parentId"]) if parse_gid(t["parentId"]) else None
                if parent is None or parent.get("order", {}).get("id") not in (None, order["id"]):
                    errors.append(
                        {
                            "field": path + ["parentId"],
                            "message": "Parent transaction does not exist",
                            "code": "INVALID",
                        }
                    )
                    continue
            total += amount
            transactions.append(
                self._refund_transaction(order, amount, t.get("gateway") or "manual", parent, stamp)
            )
        refundable = bag_amount(order.get("totalReceivedSet")) - bag_amount(order.get("totalRefundedSet"))
        if not errors and total > refundable and not input.get("allowOverRefunding"):
            errors.append(
                {
                    "field": ["transactions"],
                    "message": f"Refund amount ({fmt_amount(total)}) is greater than the refundable amount "
                    f"({fmt_amount(max(refundable, Decimal('0')))})",
                    "code": "INVALID",
                }
            )
        if not errors and not plan and not ship_plan and not transactions:
            errors.append(
                {
                    "field": None,
                    "message": "A refund needs line items, shipping or transactions",
                    "code": "INVALID",
                }
            )
        if errors:
            return {"refund": None, "order": None, "userErrors": errors}
        processed = norm_time(input.get("processedAt")) if input.get("processedAt") else stamp
        refund = self._apply_refund(
            order,
            plan,
            ship_plan,
            transactions,
            input.get("note"),
            stamp,
            processed,
            extra={
                "_notify": bool(input.get("notify")),
                "_idempotencyKey": key,
                "_input": copy.deepcopy(input),
            },
        )
        self._idempotency[("refundCreate", key)] = {
            "fingerprint": fingerprint,
            "refund": refund["id"],
            "order": order["id"],
        }
        return {"refund": refund, "order": order, "userErrors": []}

    def _cancel(
        self,
        order: dict[str, Any],
        reason: str,
        restock: bool,
        refund: bool | None = None,
        notifyCustomer: bool | None = None,
        staffNote: str | None = None,
        refundMethod: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        if order.get("cancelledAt"):
            return [{"field": ["orderId"], "code": "INVALID", "message": "Order has already been cancelled"}]
        if order.get("displayFulfillmentStatus") == "FULFILLED":
            return [
                {
                    "field": ["orderId"],
                    "code": "INVALID",
                    "message": "Cannot cancel an order that has been fulfilled",
                }
            ]
        order.pop("_fulfillmentStatusPinned", None)
        stamp = self._stamp()
        order["cancelledAt"] = stamp
        order["cancelReason"] = reason
        order["cancellation"] = {"staffNote": staffNote}
        order["closed"] = True
        order["closedAt"] = stamp
        do_refund = bool(refund) or bool((refundMethod or {}).get("originalPaymentMethodsRefund"))
        fin = order.get("displayFinancialStatus")
        if fin == "AUTHORIZED":
            order["displayFinancialStatus"] = "VOIDED"
        elif do_refund and fin in ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED"):
            order["displayFinancialStatus"] = "REFUNDED"
            received = order.get("totalReceivedSet") or order.get("totalPriceSet")
            still = bag_amount(received) - bag_amount(order.get("totalRefundedSet"))
            order["totalRefundedSet"] = copy.deepcopy(received)
            if still > 0:
                self._record_refund(order, still, staffNote, [], [], None, stamp)
        if restock:
            for li in order.get("lineItems", []):
                li["currentQuantity"] -= li["unfulfilledQuantity"]
                li["unfulfilledQuantity"] = 0
        for fo in order.get("fulfillmentOrders", []):
            if fo["status"] in ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD"):
                fo["status"] = "CLOSED"
                fo["updatedAt"] = stamp
        order["_cancel"] = {
            "reason": reason,
            "restock": restock,
            "refund": refund,
            "notifyCustomer": notifyCustomer,
            "staffNote": staffNote,
            "refundMethod": copy.deepcopy(refundMethod),
        }
        self._recompute(order)
        self._touch(order)
        self._note("orders/cancelled", "order", order["id"])
        self._note("orders/updated", "order", order["id"])
        return []

    def _m_order_cancel(
        self,
        source: Any,
        info: Any,
        orderId: str,
        reason: str,
        restock: bool,
        refund: bool | None = None,
        refundMethod: dict[str, Any] | None = None,
        notifyCustomer: bool | None = None,
        staffNote: str | None = None,
    ) -> dict[str, Any]:
        order = self._find("Order", orderId) if parse_gid(orderId) else None
        if order is None:
            errors = [{"field": ["orderId"], "code": "NOT_FOUND", "message": "Order does not exist"}]
        else:
            errors = self._cancel(order, reason, restock, refund, notifyCustomer, staffNote, refundMethod)
        plain = [{"field": e["field"], "message": e["message"]} for e in errors]
        if errors:
            return {"job": None, "jobResult": None, "orderCancelUserErrors": errors, "userErrors": plain}
        job_id = gid("Job", uuid.uuid4())
        self.jobs[job_id] = {"id": job_id, "done": True, "query": {}}
        return {
            "job": {"id": job_id, "done": False, "query": {}},
            "jobResult": {"id": job_id, "done": False, "errors": [], "order": order, "status": "STARTED"},
            "orderCancelUserErrors": [],
            "userErrors": [],
        }

    def _m_fulfillment_order_move(
        self,
        source: Any,
        info: Any,
        id: str,
        newLocationId: str,  # noqa: A002
        fulfillmentOrderLineItems: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        def fail(field: str, message: str, code: str | None = None) -> dict[str, Any]:
            return {
                "movedFulfillmentOrder": None,
                "originalFulfillmentOrder": None,
                "remainingFulfillmentOrder": None,
                "userErrors": [{"field": [field], "message": message, "code": code}],
            }

        fo = self._find("FulfillmentOrder", id) if parse_gid(id) else None
        if fo is None:
            return fail("id", "Fulfillment order does not exist.")
        location = self._find("Location", newLocationId) if parse_gid(newLocationId) else None
        if location is None or not location.get("isActive"):
            return fail("newLocationId", "Location does not exist.")
        if fo["status"] not in ("OPEN", "IN_PROGRESS", "SCHEDULED"):
            return fail("id", f"Cannot move a fulfillment order with status {fo['status'].lower()}.")
        order = self._find("Order", fo["orderId"])
        assert order is not None
        stamp = self._stamp()
        if fo["assignedLocation"]["location"]["id"] == location["id"]:
            return {
                "movedFulfillmentOrder": fo,
                "originalFulfillmentOrder": fo,
                "remainingFulfillmentOrder": None,
                "userErrors": [],
            }
        wanted: dict[str, int] = {}
        if fulfillmentOrderLineItems:
            by_id = {fol["id"]: fol for fol in fo["lineItems"]}
            for _idx, item in enumerate(fulfillmentOrderLineItems):
                fol = by_id.get(item["id"])
                if fol is None:
                    return fail(
                        "fulfillmentOrderLineItems",
                        f"Fulfillment order line item {item['id']} does not belong to the fulfillment order.",
                    )
                if item["quantity"] < 1 or item["quantity"] > fol["remainingQuantity"]:
                    return fail(
                        "fulfillmentOrderLineItems", "Invalid fulfillment order line item quantity requested."
                    )
                wanted[fol["id"]] = item["quantity"]
        else:
            wanted = {
                fol["id"]: fol["remainingQuantity"] for fol in fo["lineItems"] if fol["remainingQuantity"] > 0
            }
        whole = all(
            fol["remainingQuantity"] == fol["totalQuantity"]
            and wanted.get(fol["id"], 0) == fol["totalQuantity"]
            for fol in fo["lineItems"]
        )
        loc_spec = self._fulfillment_order(order, location, [], stamp)["assignedLocation"]
        if whole:
            fo["assignedLocation"] = loc_spec
            fo["updatedAt"] = stamp
            return {
                "movedFulfillmentOrder": fo,
                "originalFulfillmentOrder": fo,
                "remainingFulfillmentOrder": None,
                "userErrors": [],
            }
        if not wanted:
            return fail("id", "Fulfillment order has no line items to move.")
        moved_lines = []
        for fol in fo["lineItems"]:
            q = wanted.get(fol["id"], 0)
            if q:
                li = self._line_item(order["id"], fol["lineItem"]["id"]) or {"id": fol["lineItem"]["id"]}
                moved_lines.append((li, q))
                fol["totalQuantity"] -= q
                fol["remainingQuantity"] -= q
        fo["lineItems"] = [fol for fol in fo["lineItems"] if fol["totalQuantity"] > 0]
        if all(fol["remainingQuantity"] == 0 for fol in fo["lineItems"]):
            fo["status"] = "CLOSED"
        fo["updatedAt"] = stamp
        new_fo = self._fulfillment_order(order, location, moved_lines, stamp)
        for fol, (li, _q) in zip(new_fo["lineItems"], moved_lines):
            fol.update(
                {
                    "sku": li.get("sku"),
                    "productTitle": li.get("title"),
                    "variantTitle": li.get("variantTitle"),
                    "vendor": li.get("vendor"),
                }
            )
        order["fulfillmentOrders"].append(new_fo)
        return {
            "movedFulfillmentOrder": new_fo,
            "originalFulfillmentOrder": fo,
            "remainingFulfillmentOrder": fo if fo["status"] != "CLOSED" else None,
            "userErrors": [],
        }

    def _tracking(self, spec: dict[str, Any] | None) -> list[dict[str, Any]]:
        if not spec:
            return []
        numbers = list(spec.get("numbers") or ([spec["number"]] if spec.get("number") else []))
        urls = list(spec.get("urls") or ([spec["url"]] if spec.get("url") else []))
        company = spec.get("company")
        if not numbers:
            return (
                [{"company": company, "number": None, "url": urls[0] if urls else None}]
                if (company or urls)
                else []
            )
        return [
            {"company": company, "number": n, "url": urls[i] if i < len(urls) else None}
            for i, n in enumerate(numbers)
        ]

    def _fulfill(self, spec: dict[str, Any], message: str | None) -> dict[str, Any]:
        def fail(field: list[str], msg: str) -> dict[str, Any]:
            return {"fulfillment": None, "userErrors": [{"field": field, "message": msg}]}

        groups = spec.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            return fail(
                ["fulfillment", "lineItemsByFulfillmentOrder"],
                "Line items by fulfillment order can't be blank.",
            )
        plan: list[tuple[dict[str, Any], dict[str, Any], int]] = []
        orders, locations = set(), set()
        for gi, grp in enumerate(groups):
            base = ["fulfillment", "lineItemsByFulfillmentOrder", str(gi)]
            fo = (
                self._find("FulfillmentOrder", grp.get("fulfillmentOrderId"))
                if parse_gid(grp.get("fulfillmentOrderId"))
                else None
            )
            if fo is None:
                return fail(base + ["fulfillmentOrderId"], "Fulfillment order does not exist.")
            if fo["status"] not in ("OPEN", "IN_PROGRESS"):
                num = parse_gid(fo["id"])[1]  # type: ignore[index]
                return fail(
                    base + ["fulfillmentOrderId"],
                    f"Fulfillment order {num} has an unfulfillable status= {fo['status'].lower()}.",
                )
            orders.add(fo["orderId"])
            locations.add(fo["assignedLocation"]["location"]["id"])
            by_id = {fol["id"]: fol for fol in fo["lineItems"]}
            items = grp.get("fulfillmentOrderLineItems")
            if items is None:
                items = [{"id": fol["id"], "quantity": fol["remainingQuantity"]} for fol in fo["lineItems"]]
            for ii, item in enumerate(items):
                fol = by_id.get(item["id"])
                if fol is None:
                    return fail(
                        base + ["fulfillmentOrderLineItems", str(ii), "id"],
                        "Invalid fulfillment order line item id.",
                    )
                if item["quantity"] < 0 or item["quantity"] > fol["remainingQuantity"]:
                    return fail(
                        base + ["fulfillmentOrderLineItems", str(ii), "quantity"],
                        "Invalid fulfillment order line item quantity requested.",
                    )
                if item["quantity"] > 0:
                    plan.append((fo, fol, item["quantity"]))
        if len(orders) > 1 or len(locations) > 1:
            return fail(
                ["fulfillment", "lineItemsByFulfillmentOrder"],
                "All fulfillment orders must belong to the same order and be assigned to the same location.",
            )
        if not plan:
            return fail(
                ["fulfillment", "lineItemsByFulfillmentOrder"],
                "The fulfillment must include at least one line item with a quantity greater than 0.",
            )
        order = self._find("Order", next(iter(orders)))
        assert order is not None
        order.pop("_fulfillmentStatusPinned", None)
        stamp = self._stamp()
        fos: list[str] = []
        f_lines: list[dict[str, Any]] = []
        for fo, fol, qty in plan:
            fol["remainingQuantity"] -= qty
            li = self._line_item(order["id"], fol["lineItem"]["id"])
            if li is not None:
                li["unfulfilledQuantity"] = max(0, li["unfulfilledQuantity"] - qty)
                unit = bag_amount(li["originalUnitPriceSet"])
                f_lines.append(
                    {
                        "id": gid("FulfillmentLineItem", self._new_id()),
                        "quantity": qty,
                        "originalTotalSet": money_bag(unit * qty, order["currencyCode"]),
                        "discountedTotalSet": money_bag(unit * qty, order["currencyCode"]),
                        "lineItem": {"id": li["id"]},
                    }
                )
            if fo["id"] not in fos:
                fos.append(fo["id"])
        for fo in order["fulfillmentOrders"]:
            if fo["id"] in fos:
                fo["status"] = (
                    "CLOSED" if all(x["remainingQuantity"] == 0 for x in fo["lineItems"]) else "IN_PROGRESS"
                )
                fo["updatedAt"] = stamp
        num = self._new_id()
        fulfillment = {
            "id": gid("Fulfillment", num),
            "legacyResourceId": str(num),
            "name": f"{order['name']}-F{len(order['fulfillments']) + 1}",
            "status": "SUCCESS",
            "displayStatus": "FULFILLED",
            "createdAt": stamp,
            "updatedAt": stamp,
            "deliveredAt": None,
            "inTransitAt": None,
            "estimatedDeliveryAt": None,
            "requiresShipping": True,
            "totalQuantity": sum(q for _, _, q in plan),
            "originAddress": None,
            "service": None,
            "trackingInfo": self._tracking(spec.get("trackingInfo")),
            "fulfillmentLineItems": f_lines,
            "events": [],
            "order": {"id": order["id"]},
            "fulfillmentOrders": [{"id": x} for x in fos],
            "location": {"id": next(iter(locations))},
            "_notifyCustomer": bool(spec.get("notifyCustomer")),
            "_message": message,
        }
        order["fulfillments"].append(fulfillment)
        self._recompute(order)
        self._touch(order)
        self._note("fulfillments/create", "fulfillment", fulfillment["id"])
        if order["displayFulfillmentStatus"] == "FULFILLED":
            self._note("orders/fulfilled", "order", order["id"])
        elif order["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED":
            self._note("orders/partially_fulfilled", "order", order["id"])
        self._note("orders/updated", "order", order["id"])
        return {"fulfillment": fulfillment, "userErrors": []}

    def _m_fulfillment_create(
        self, source: Any, info: Any, fulfillment: dict[str, Any], message: str | None = None
    ) -> dict[str, Any]:
        return self._fulfill(fulfillment, message)

    def _m_tracking_update(
        self,
        source: Any,
        info: Any,
        fulfillmentId: str,
        trackingInfoInput: dict[str, Any],
        notifyCustomer: bool | None = None,
    ) -> dict[str, Any]:
        f = self._find("Fulfillment", fulfillmentId) if parse_gid(fulfillmentId) else None
        if f is None:
            return {
                "fulfillment": None,
                "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}],
            }
        if f.get("status") == "CANCELLED":
            return {
                "fulfillment": None,
                "userErrors": [
                    {
                        "field": ["fulfillmentId"],
                        "message": "Cannot update tracking of a cancelled fulfillment.",
                    }
                ],
            }
        f["trackingInfo"] = self._tracking(trackingInfoInput)
        if notifyCustomer is not None:
            f["_notifyCustomer"] = bool(notifyCustomer)
        f["updatedAt"] = self._stamp(after=f.get("updatedAt"))
        order = self._find("Order", f["order"]["id"])
        self._note("fulfillments/update", "fulfillment", f["id"])
        if order is not None:
            self._touch(order)
            self._note("orders/updated", "order", order["id"])
        return {"fulfillment": f, "userErrors": []}


def _lt(a: tuple, b: tuple) -> bool:
    try:
        return a < b
    except TypeError:
        return str(a) < str(b)


def _clean_tags(tags: Any) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    out: list[str] = []
    seen: set[str] = set()
    for t in tags or []:
        t = str(t).strip()
        if t and t.lower() not in seen:
            seen.add(t.lower())
            out.append(t)
    return out
