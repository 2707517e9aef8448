"""A WooCommerce store speaking REST API v3 (``/wp-json/wc/v3``) and the Shipment Tracking
extension (``/wp-json/wc-shipment-tracking/v3``), in memory.

Modelled on WooCommerce core's REST controllers: WordPress-style errors
(``{"code", "message", "data": {"status"}}``), ``X-WP-Total`` / ``X-WP-TotalPages`` paging,
WooCommerce's order and product shapes, ``set_paid`` via ``payment_complete`` and meta upserts.
Dates are WooCommerce's ``YYYY-MM-DDTHH:MM:SS`` with second precision; the store's timezone is
UTC, so ``date_*`` and ``date_*_gmt`` agree. ``store.now`` (a callable returning a datetime or
epoch seconds; the ShopifyStore has the same attribute) can be replaced to control time in tests.

Line items need a ``product_id``, ``variation_id`` or ``sku`` as in real WooCommerce (400
``woocommerce_rest_required_product_reference`` otherwise); ``require_product_reference=False``
relaxes that to accept name-only custom lines. Deliberate differences from a real store (see the
docstrings): an unknown ``product_id`` is refused
with 400 ``woocommerce_rest_invalid_product_id`` (real WooCommerce silently creates a line with no
product); HTTP Basic auth and query-string keys are accepted over plain HTTP.

Refunds (``/wp-json/wc/v3/orders/{id}/refunds``, as WC_REST_Order_Refunds_Controller and wc_create_refund
in WooCommerce 9.x): ``POST`` creates (201) from ``amount`` (a string; without it, the sum of every line's
``refund_total`` and ``refund_tax`` amounts when all are numeric, else 0), ``reason``, ``meta_data``,
``line_items [{id, quantity, refund_total, refund_tax: [{id, refund_total}]}]`` (``id`` a line item, shipping
line or fee line of the order; unknown ids and lines with nothing to refund are skipped), ``api_refund``
(default true) and ``api_restock`` (default true); ``refunded_by`` is always the API user (1), as
wc_create_refund sets it. Errors as WooCommerce answers them: a non-string ``amount`` 400
``rest_invalid_param``; an unknown order 404 ``woocommerce_rest_invalid_order_id`` "Invalid order ID.";
a negative amount 400 ``woocommerce_rest_invalid_order_refund``; an amount above what is left to refund
(order total less earlier refunds; a non-numeric amount too) 500 ``woocommerce_rest_cannot_create_order_refund``
"Invalid refund amount."; ``api_refund`` true when the order's gateway cannot refund: 500
``woocommerce_rest_cannot_create_order_refund`` "The payment gateway for this order does not support automatic
refunds." (``bacs``, ``cheque``, ``cod``: ``store.gateways``) or "... does not exist." (any other payment
method); the refund is then not kept, though its id is used up. Payment methods in ``store.refund_gateways``
refund (``refunded_payment: true``). Like WooCommerce, quantities are NOT checked against what is left to
refund. A refund reads ``id, date_created(_gmt), amount, reason, refunded_by, refunded_payment, meta_data,
line_items, shipping_lines, tax_lines, fee_lines, _links``; its items are copies of the order's with
negative ``quantity``, ``subtotal``, ``total`` and taxes and a ``_refunded_item_id`` meta. Refund ids come
from the orders' id sequence. The order's ``refunds`` (``[{id, reason, total: "-12.00"}]``, newest first)
and ``date_modified`` follow, it becomes ``refunded`` once nothing is left to refund, and ``order.updated``
is delivered. ``api_restock`` puts refunded quantities back in stock for lines whose stock was reduced
(``_reduced_stock`` meta) when the product manages stock. ``GET`` lists (newest first, paged), ``GET
/refunds/{id}`` reads (404 ``woocommerce_rest_shop_order_refund_invalid_id`` "Invalid ID.", or
``woocommerce_rest_invalid_order_refund_id`` "Invalid order refund ID." for another order's refund), ``DELETE /refunds/{id}`` deletes
(``force`` defaults to true; false is 501 ``woocommerce_rest_trash_not_supported``; the order's status and
stock stay, no webhook is sent, as refunds are not order-webhook resources). Python: ``create_refund(order_id,
**body)``, ``refunds(order_id)``, ``cancel_order(order_id)`` (status ``cancelled``: reduced stock goes back,
``order.updated``).

Order notes (``/wp-json/wc/v3/orders/{id}/notes``, as WC_REST_Order_Notes_Controller and WC_Order::add_order_note
in WooCommerce 9.x): ``GET`` lists every note of the order, newest first (comment date, then id), unpaged (no
``X-WP-Total``), ``type`` ``any`` (default), ``customer`` or ``internal`` (anything else 400
``rest_invalid_param``); an unknown order is 404 ``woocommerce_rest_shop_order_invalid_id`` "Invalid order ID."
(the list's code; the other three routes answer ``woocommerce_rest_order_invalid_id``). ``POST`` creates (201,
``Location``): ``note`` required (400 ``rest_missing_callback_param``; not a string: ``rest_invalid_param``),
``customer_note`` and ``added_by_user`` booleans (default false); an ``id`` in the body is 400
``woocommerce_rest_shop_order_exists``. ``GET /notes/{id}`` reads and ``DELETE /notes/{id}?force=true`` deletes
and answers the note (``force`` defaults to false: 501 ``woocommerce_rest_trash_not_supported`` "Webhooks do not
support trashing.", WooCommerce's own wording); a note of another order or none is 404
``woocommerce_rest_invalid_id`` "Invalid resource ID.". A note reads ``id, author, date_created(_gmt), note,
customer_note, _links``; ``added_by_user`` is write-only (the schema's edit context, which the controller never
fills in), so a client tells a person's note from the store's own by ``author``: the API user's display name
(``store.api_user_name``) for ``added_by_user: true``, a person's name for ``add_note(..., author=...)``, and
``store.system_note_author`` for the store's own notes. That is ``"WooCommerce"``: 9.x's v3 controller maps only an
author of lowercase ``woocommerce`` to ``"system"``, which WooCommerce's English ``comment_author`` never is; set it
to ``"system"`` to model the mapping its schema and clients describe. Notes are comments, not order changes: they
leave ``date_modified`` and fire no webhook; a forced order delete deletes them. A customer note's e-mail is not
sent. The store's own notes kept: "Order status changed from Processing to Cancelled." (status names as
wc_get_order_status_name) whenever an order's status changes, at creation too (from Pending payment), through REST,
the Python API, ``payment_complete`` (``set_paid``) or a refund that leaves nothing to refund; attributed to the API
user when the request sends ``manual_update: true`` (as the v3 orders controller's ``set_status(..., $manual)``),
to the store otherwise. WooCommerce's other system notes (stock levels, payments, refunds) are not kept. Python:
``add_note(order_id, note, customer_note=False, author=None)`` (author None: the store's own), ``notes(order_id,
type="any")``.

Stock: ``set_stock(product_id, quantity)`` makes a product (or variation) manage its stock. An order reaching
processing, completed or on-hold lowers the stock of its managed products once (wc_maybe_reduce_stock_levels,
recording ``_reduced_stock`` on the line); cancelled or pending puts back what is still reduced.

Webhooks (``/wp-json/wc/v3/webhooks``, as WC_REST_Webhooks_Controller): ``GET`` lists (``status``
all/active/paused/disabled, ``search`` in the name, ``include``/``exclude``, ``after``/``before``,
``orderby`` date/id/title, ``order``, ``page``/``per_page``/``offset``, ``X-WP-Total``), ``POST``
creates (``topic`` and ``delivery_url`` required, ``name``, ``secret``; 201), ``GET|PUT|PATCH
/webhooks/{id}`` reads or changes ``name``/``status``/``topic``/``delivery_url``/``secret``, ``DELETE
/webhooks/{id}?force=true`` deletes (without ``force``: 501 ``woocommerce_rest_trash_not_supported``).
A webhook reads ``id, name, status, topic, resource, event, hooks, delivery_url, date_created(_gmt),
date_modified(_gmt), _links``; the secret is write-only and ``failure_count`` is not shown (both are
in ``store.subscriptions()``). As in WooCommerce: a created webhook is ``active`` whatever ``status``
the request sends; an unknown id reads and updates as 400 ``woocommerce_rest_shop_webhook_invalid_id``
"ID is invalid." and deletes as 404 "Invalid ID."; a topic is ``resource.event`` (coupon, customer,
order, product x created, updated, deleted, restored) or ``action.woocommerce_*``/``action.wc_*``;
a webhook created without ``secret`` gets a random 50-character one. Python: ``subscribe(topic, url,
secret=..., name=...)`` (the secret defaults to ``store.webhook_secret``), ``unsubscribe``,
``subscriptions``, ``get_webhook``, ``update_webhook``.

Creating a webhook sends WooCommerce's activation ping: an unsigned POST, form body ``webhook_id=N``,
``User-Agent: WooCommerce/9.8.0 Hookshot (WordPress/6.8.1)``; WooCommerce sends it before it answers
the create, so the sandbox waits for it (up to 5 s) unless deliveries are paused. Its result counts
for nothing.

Topics delivered, to every ``active`` webhook of the topic: ``order.created`` (``POST /orders``,
``create_order``), ``order.updated`` (any change to an order: ``PUT /orders/{id}``, ``update_order``,
``set_status``, ``cancel_order``, a refund created (``POST /orders/{id}/refunds``, ``create_refund``), a
shipment tracking item added or deleted, which the extension saves on the order,
and ``set_paid`` on creation, whose payment_complete() saves the order again), ``order.deleted`` (an
order moved to the trash; a forced delete fires nothing, as its hooks are not the topic's). Other
topics can be registered and never fire. Deliveries are queued when the request ends and built when
sent, as WooCommerce's Action Scheduler does: the payload is the order as ``GET /orders/{id}`` shows
it at that moment (``{"id": N}`` for ``order.deleted``), and a change made while a delivery for the
same webhook and order is still queued adds no second delivery. The body is PHP's json_encode
(compact, ``\\/`` for ``/``, ``\\uXXXX`` for non-ASCII) and the headers are WC_Webhook::deliver's:
``Content-Type: application/json``, the User-Agent above, ``X-WC-Webhook-Source`` (the site URL with a trailing
slash), ``X-WC-Webhook-Topic``, ``X-WC-Webhook-Resource``, ``X-WC-Webhook-Event``,
``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body keyed with the webhook's secret),
``X-WC-Webhook-ID``, ``X-WC-Webhook-Delivery-ID`` (new for every delivery).

No retries. A delivery succeeds on 2xx, 301 or 302 within ``store.webhook_timeout`` (60 s, as
WooCommerce; tests lower it); a success sets the webhook's ``failure_count`` to 0, and a failure
(any other status, a timeout, a refused connection) runs WC_Webhook::failed_delivery: when the
count is already above ``store.max_webhook_delivery_failures`` (5, the
``woocommerce_max_webhook_delivery_failures`` default) the webhook becomes ``disabled``, otherwise
the count goes up by one. So five failures in a row leave it active with a count of 5, the sixth
makes it 6 and the seventh disables it; re-activating it over REST keeps the count (the next
failure disables it again). Deliveries to loopback are allowed (wp_safe_remote_request refuses
them unless a site allows it).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from .base import BaseStore, Request, Response
from .webhooks import Delivery, sign

WC_PREFIX = "/wp-json/wc/v3"
ST_PREFIX = "/wp-json/wc-shipment-tracking/v3"
TRACKING_META_KEY = "_wc_shipment_tracking_items"

ORDER_STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
)
PAYABLE_STATUSES = ("pending", "failed", "on-hold", "cancelled")
# wc_get_order_status_name(): the names the "Order status changed from %1$s to %2$s." note uses
ORDER_STATUS_NAMES = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
}
NOTE_TYPES = ("any", "customer", "internal")  # GET /orders/{id}/notes?type=
PRODUCT_TYPES = ("simple", "grouped", "external", "variable")
# A product's post status (get_post_statuses() plus WordPress's future and trash); a variation's own status is
# publish (enabled) or private (disabled). ``status=any`` (the REST default) is WP_Query's: every status but
# trash and auto-draft, which are excluded from search.
PRODUCT_STATUSES = ("draft", "pending", "private", "publish", "future", "trash")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

WC_VERSION, WP_VERSION = "9.8.0", "6.8.1"
WEBHOOK_USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
WEBHOOK_STATUSES = ("active", "paused", "disabled")
WEBHOOK_RESOURCES = ("coupon", "customer", "order", "product")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
# WC_Webhook::get_default_topic_hooks(): the actions each topic listens to (the ``hooks`` field)
WEBHOOK_TOPIC_HOOKS: dict[str, list[str]] = {
    "coupon.created": ["woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"],
    "coupon.updated": ["woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"],
    "coupon.deleted": ["wp_trash_post"],
    "coupon.restored": ["untrashed_post"],
    "customer.created": ["user_register", "woocommerce_created_customer", "woocommerce_new_customer"],
    "customer.updated": ["profile_update", "woocommerce_update_customer"],
    "customer.deleted": ["delete_user"],
    "order.created": ["woocommerce_new_order"],
    "order.updated": [
        "woocommerce_update_order",
        "woocommerce_order_refunded",
        "woocommerce_delete_order_refund",
    ],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
    "product.created": [
        "woocommerce_process_product_meta",
        "woocommerce_new_product",
        "woocommerce_new_product_variation",
    ],
    "product.updated": [
        "woocommerce_process_product_meta",
        "woocommerce_update_product",
        "woocommerce_update_product_variation",
    ],
    "product.deleted": ["wp_trash_post"],
    "product.restored": ["untrashed_post"],
}
WEBHOOK_PING_TIMEOUT = 5.0  # wp_safe_remote_post's default timeout
_PASSWORD_CHARS = string.ascii_letters + string.digits + "!@#$%^&*()-_ []{}<>~`+=,.;:/?|"

# A subset of the Shipment Tracking extension's built-in providers, grouped by region as its
# ``/shipment-trackings/providers`` endpoint answers. %1$s tracking number, %2$s postcode,
# %3$s country.
PROVIDERS: dict[str, dict[str, str]] = {
    "Australia": {
        "Australia Post": "https://auspost.com.au/mypost/track/#/details/%1$s",
        "Fastway Couriers": "https://www.fastway.com.au/tools/track/?l=%1$s",
    },
    "Canada": {
        "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=%1$s",
        "Purolator": "https://www.purolator.com/purolator/ship-track/tracking-summary.page?pin=%1$s",
    },
    "Germany": {
        "DHL Intraship (DE)": "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html"
        "?lang=de&idc=%1$s&rfn=&extendedSearch=true",
        "Hermes": "https://www.myhermes.de/empfangen/sendungsverfolgung/sendungsinformation/#%1$s",
    },
    "United Kingdom": {
        "DPD.co.uk": "https://www.dpd.co.uk/apps/tracking/?reference=%1$s#results",
        "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/%1$s",
    },
    "United States": {
        "DHL US": "https://www.logistics.dhl/us-en/home/tracking/tracking-ecommerce.html?tracking-id=%1$s",
        "Fedex": "https://www.fedex.com/fedextrack/?action=track&tracknumbers=%1$s",
        "OnTrac": "https://www.ontrac.com/tracking/?number=%1$s",
        "UPS": "https://www.ups.com/track?loc=en_US&tracknum=%1$s",
        "USPS": "https://tools.usps.com/go/TrackConfirmAction_input?qtc_tLabels1=%1$s",
    },
}

_PERMISSIONS = {
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "delete": ("woocommerce_rest_cannot_delete", "Sorry, you are not allowed to delete this resource."),
}

BILLING_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
    "email",
    "phone",
)
SHIPPING_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "address_1",
    "address_2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CENT = Decimal("0.01")


class WooError(Exception):
    """A WordPress REST error; ``response()`` renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.data = data or {}
        self.headers = headers or {}

    def response(self) -> Response:
        return Response.json(
            self.status,
            {"code": self.code, "message": self.message, "data": {"status": self.status, **self.data}},
            self.headers,
        )


def _invalid_param(name: str, reason: str) -> WooError:
    return WooError(
        400,
        "rest_invalid_param",
        f"Invalid parameter(s): {name}",
        {
            "params": {name: reason},
            "details": {name: {"code": "rest_invalid_param", "message": reason, "data": None}},
        },
    )


def _money(value: Any) -> str:
    return str(_dec(value).quantize(_CENT))


def _dec(value: Any, name: str = "amount") -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise _invalid_param(name, f"{name} is not a valid number.") from None
    if not result.is_finite():
        raise _invalid_param(name, f"{name} is not a valid number.")
    return result


def _int(value: Any, name: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _invalid_param(name, f"{name} is not of type integer.")
    try:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(str(value).strip())
    except ValueError:
        raise _invalid_param(name, f"{name} is not of type integer.") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def _fmt(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else None


def _parse_wc_date(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S") if value else None


def _parse_param_date(name: str, value: str) -> datetime:
    """An ISO 8601 query parameter as naive UTC. A ``+`` in an offset that arrived unencoded
    (``...T10:00:00 02:00`` after query decoding) is restored."""
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$", r"\1+\2", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid_param(name, "Invalid date.") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _status_name(status: str) -> str:
    """wc_get_order_status_name(): an unknown status reads as its slug."""
    return ORDER_STATUS_NAMES.get(status, status)


def sanitize_title(text: str) -> str:
    """WordPress's ``sanitize_title`` for the ASCII names used here (``"Royal Mail"`` -> ``royal-mail``)."""
    slug = re.sub(r"[^a-z0-9 _-]", "", text.strip().lower())
    return re.sub(r"[\s_-]+", "-", slug).strip("-")


def _provider_by_slug(slug: str) -> tuple[str, str] | None:
    for group in PROVIDERS.values():
        for name, url in group.items():
            if sanitize_title(name) == slug:
                return name, url
    return None


# (namespace, pattern, {method: (handler name, permission)})
_ROUTES: list[tuple[str, re.Pattern[str], dict[str, tuple[str, str]]]] = [
    (WC_PREFIX, re.compile(r"/products"), {"GET": ("_r_list_products", "list")}),
    (WC_PREFIX, re.compile(r"/products/(?P<id>\d+)"), {"GET": ("_r_get_product", "view")}),
    (WC_PREFIX, re.compile(r"/products/(?P<id>\d+)/variations"), {"GET": ("_r_list_variations", "list")}),
    (
        WC_PREFIX,
        re.compile(r"/products/(?P<parent>\d+)/variations/(?P<id>\d+)"),
        {"GET": ("_r_get_variation", "view")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders"),
        {"GET": ("_r_list_orders", "list"), "POST": ("_r_create_order", "create")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders/(?P<id>\d+)"),
        {
            "GET": ("_r_get_order", "view"),
            "PUT": ("_r_update_order", "edit"),
            "PATCH": ("_r_update_order", "edit"),
            "POST": ("_r_update_order", "edit"),
            "DELETE": ("_r_delete_order", "delete"),
        },
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders/(?P<order_id>\d+)/refunds"),
        {"GET": ("_r_list_refunds", "list"), "POST": ("_r_create_refund", "create")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders/(?P<order_id>\d+)/refunds/(?P<id>\d+)"),
        {"GET": ("_r_get_refund", "view"), "DELETE": ("_r_delete_refund", "delete")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders/(?P<order_id>\d+)/notes"),
        {"GET": ("_r_list_notes", "list"), "POST": ("_r_create_note", "create")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/orders/(?P<order_id>\d+)/notes/(?P<id>\d+)"),
        {"GET": ("_r_get_note", "view"), "DELETE": ("_r_delete_note", "delete")},
    ),
    (
        ST_PREFIX,
        re.compile(r"/orders/(?P<id>\d+)/shipment-trackings"),
        {"GET": ("_r_list_trackings", "list"), "POST": ("_r_create_tracking", "create")},
    ),
    (
        ST_PREFIX,
        re.compile(r"/orders/(?P<id>\d+)/shipment-trackings/providers"),
        {"GET": ("_r_providers", "list")},
    ),
    (
        ST_PREFIX,
        re.compile(r"/orders/(?P<id>\d+)/shipment-trackings/(?P<tracking>[A-Za-z0-9]+)"),
        {"GET": ("_r_get_tracking", "view"), "DELETE": ("_r_delete_tracking", "delete")},
    ),
    (ST_PREFIX, re.compile(r"/shipment-trackings/providers"), {"GET": ("_r_providers", "public")}),
    (
        WC_PREFIX,
        re.compile(r"/webhooks"),
        {"GET": ("_r_list_webhooks", "list"), "POST": ("_r_create_webhook", "create")},
    ),
    (
        WC_PREFIX,
        re.compile(r"/webhooks/(?P<id>\d+)"),
        {
            "GET": ("_r_get_webhook", "view"),
            "PUT": ("_r_update_webhook", "edit"),
            "PATCH": ("_r_update_webhook", "edit"),
            "POST": ("_r_update_webhook", "edit"),
            "DELETE": ("_r_delete_webhook", "delete"),
        },
    ),
]


class WooStore(BaseStore):
    """One WooCommerce store. All state is guarded by ``self.lock``."""

    platform = "woocommerce"

    def __init__(
        self,
        name: str,
        consumer_key: str,
        consumer_secret: str,
        rate_limit_per_second: float | None = None,
        *,
        currency: str = "USD",
        require_product_reference: bool = True,
        now: Callable[[], datetime | float] | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        super().__init__(name)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.rate_limit_per_second = rate_limit_per_second
        self.currency = currency
        self.require_product_reference = require_product_reference
        # WooCommerce refuses a SKU another product or variation that is not in the trash already has
        # (wc_product_has_unique_sku); False: the woocommerce_product_has_unique_sku filter lifted that check
        self.unique_skus = True
        self.now: Callable[[], datetime | float] = now or (lambda: datetime.now(UTC))
        self._orders: dict[int, dict[str, Any]] = {}
        self._products: dict[int, dict[str, Any]] = {}
        self._next_order_id = 5001
        self._next_product_id = 101
        self._next_item_id = 1
        self._next_meta_id = 1
        self._bucket_tokens = max(1.0, rate_limit_per_second or 1.0)
        self._bucket_at = time.monotonic()
        # webhooks (see the module docstring)
        self.webhook_secret = webhook_secret  # the secret subscribe() registers when given none
        self.webhook_timeout = 60.0  # WC_Webhook::deliver waits MINUTE_IN_SECONDS
        self.max_webhook_delivery_failures = 5  # the woocommerce_max_webhook_delivery_failures filter
        self._webhooks: dict[int, dict[str, Any]] = {}
        self._next_webhook_id = 1
        # refunds (shop_order_refund objects; their ids come from the orders' sequence, as in WooCommerce)
        self._refunds: dict[int, dict[str, Any]] = {}
        # payment methods whose gateway supports refunds (api_refund: true succeeds only for those); the core
        # offline gateways exist and do not support refunds
        self.refund_gateways: set[str] = set()
        self.gateways: set[str] = {"bacs", "cheque", "cod"}
        self._stock_reduced: set[int] = (
            set()
        )  # orders whose stock was reduced (the _order_stock_reduced flag)
        # order notes (comments of type order_note: their own id sequence), by note id
        self._order_notes: dict[int, dict[str, Any]] = {}
        self._next_note_id = 1
        self.api_user_name = "Store Admin"  # display_name of the user the API keys belong to
        self.system_note_author = "WooCommerce"  # the author the v3 API shows for the store's own notes
        self._action_depth = 0
        self._pending_events: list[tuple[str, int]] = []
        self._pings = threading.local()

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        moment = self.now()
        if isinstance(moment, (int, float)):
            moment = datetime.fromtimestamp(moment, UTC)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.replace(microsecond=0)

    def _item_id(self) -> int:
        self._next_item_id += 1
        return self._next_item_id - 1

    def _meta_id(self) -> int:
        self._next_meta_id += 1
        return self._next_meta_id - 1

    @staticmethod
    def _split(path: str) -> tuple[str | None, str]:
        for prefix in (WC_PREFIX, ST_PREFIX):
            if path == prefix or path.startswith(prefix + "/"):
                rest = path[len(prefix) :]
                return prefix, (rest.rstrip("/") or "/")
        return None, path

    def operation_of(self, request: Request) -> str:
        _, rest = self._split(request.path)
        rest = re.sub(r"/\d+(?=/|$)", "/{id}", rest)
        rest = re.sub(r"(/shipment-trackings)/(?!providers(?:/|$))[A-Za-z0-9]+(?=/|$)", r"\1/{id}", rest)
        return f"{request.method} {rest}"

    def is_write(self, request: Request) -> bool:
        return request.method in WRITE_METHODS

    def handle(self, request: Request) -> Response:
        try:
            wait = self._take_token()
            if wait is not None:
                retry = max(1, math.ceil(wait))
                raise WooError(
                    429,
                    "woocommerce_rest_rate_limited",
                    f"Too many requests. Please wait {retry} seconds before trying again.",
                    headers={"Retry-After": str(retry)},
                )
            authed = self._authenticate(request)  # raises for wrong credentials
            handler_name, permission, params = self._route(request)
            if permission != "public" and not authed:
                code, message = _PERMISSIONS[permission]
                raise WooError(401, code, message)
            handler = getattr(self, handler_name)
            try:
                with self._action():
                    return handler(request, **params)
            finally:
                self._wait_for_pings()
        except WooError as err:
            return err.response()

    def _take_token(self) -> float | None:
        rate = self.rate_limit_per_second
        if not rate:
            return None
        with self.lock:
            capacity = max(1.0, rate)
            now = time.monotonic()
            self._bucket_tokens = min(capacity, self._bucket_tokens + (now - self._bucket_at) * rate)
            self._bucket_at = now
            if self._bucket_tokens >= 1.0:
                self._bucket_tokens -= 1.0
                return None
            return (1.0 - self._bucket_tokens) / rate

    def _authenticate(self, request: Request) -> bool:
        """True when valid keys were sent, False when none were; raises 401 for wrong ones."""
        key = secret = None
        header = request.headers.get("authorization", "")
        if header[:6].lower() == "basic ":
            try:
                key, _, secret = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                key = secret = None
        if key is None and request.arg("consumer_key") is not None:
            key, secret = request.arg("consumer_key"), request.arg("consumer_secret", "")
        if key is None:
            return False
        if key != self.consumer_key:
            raise WooError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.consumer_secret:
            raise WooError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
        return True

    def _route(self, request: Request) -> tuple[str, str, dict[str, str]]:
        prefix, rest = self._split(request.path)
        if prefix is not None:
            for namespace, pattern, methods in _ROUTES:
                if namespace != prefix:
                    continue
                found = pattern.fullmatch(rest)
                if found and request.method in methods:
                    name, permission = methods[request.method]
                    return name, permission, found.groupdict()
        raise WooError(404, "rest_no_route", "No route was found matching the URL and request method.")

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise WooError(
                400,
                "rest_invalid_json",
                "Invalid JSON body passed.",
                {"json_error_code": 4, "json_error_message": "Syntax error"},
            ) from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise WooError(
                400,
                "rest_invalid_json",
                "Invalid JSON body passed.",
                {"json_error_code": 4, "json_error_message": "Expected a JSON object"},
            )
        return body

    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        per_page = _int(request.arg("per_page", "10"), "per_page")
        if not 1 <= per_page <= 100:
            raise _invalid_param("per_page", "per_page must be between 1 (inclusive) and 100 (inclusive)")
        page = _int(request.arg("page", "1"), "page")
        if page < 1:
            raise _invalid_param("page", "page must be greater than or equal to 1")
        offset_arg = request.arg("offset")
        start = _int(offset_arg, "offset") if offset_arg not in (None, "") else (page - 1) * per_page
        total = len(items)
        pages = math.ceil(total / per_page) if total else 0
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{self.url}{request.path}"
        query = {k: v[-1] for k, v in request.query.items() if k not in ("consumer_key", "consumer_secret")}
        if page > 1:
            links.append(f'<{base}?{urlencode({**query, "page": page - 1})}>; rel="prev"')
        if page < pages:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return Response.json(200, copy.deepcopy(items[start : start + per_page]), headers)

    def error_response(self, status: int, fault: Any = None) -> Response:
        """A WordPress-shaped error for ``status`` (used by the server's ``http_error`` faults)."""
        if status == 429:
            retry = getattr(fault, "retry_after", None)
            retry = 1 if retry is None else retry
            retry_text = str(int(retry)) if float(retry).is_integer() else f"{retry:g}"
            return WooError(
                429,
                "woocommerce_rest_rate_limited",
                f"Too many requests. Please wait {retry_text} seconds before trying again.",
                headers={"Retry-After": retry_text},
            ).response()
        if status == 500:
            return WooError(
                500,
                "internal_server_error",
                '<p>There has been a critical error on this website.</p><p><a href="https://'
                'wordpress.org/documentation/article/faq-troubleshooting/">Learn more about '
                "troubleshooting WordPress.</a></p>",
                {"additional_errors": []},
            ).response()
        if status == 503:
            return WooError(503, "service_unavailable", "Service temporarily unavailable.").response()
        if status == 401:
            return WooError(
                401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."
            ).response()
        if status == 404:
            return WooError(
                404, "rest_no_route", "No route was found matching the URL and request method."
            ).response()
        return WooError(status, f"http_{status}", f"HTTP error {status}.").response()

    # ------------------------------------------------------------------ products

    def _product_shape(
        self, name: str, sku: str, price: Any, now: datetime, type_: str = "simple", parent_id: int = 0
    ) -> dict[str, Any]:
        pid = self._next_product_id
        self._next_product_id += 1
        slug = sanitize_title(name) or f"product-{pid}"
        return {
            "id": pid,
            "name": name,
            "slug": slug,
            "permalink": f"{self.url}/product/{slug}/",
            "date_created": _fmt(now),
            "date_created_gmt": _fmt(now),
            "date_modified": _fmt(now),
            "date_modified_gmt": _fmt(now),
            "type": type_,
            "status": "publish",
            "featured": False,
            "catalog_visibility": "visible",
            "description": "",
            "short_description": "",
            "sku": sku,
            "price": _money(price),
            "regular_price": _money(price),
            "sale_price": "",
            "date_on_sale_from": None,
            "date_on_sale_from_gmt": None,
            "date_on_sale_to": None,
            "date_on_sale_to_gmt": None,
            "on_sale": False,
            "purchasable": True,
            "total_sales": 0,
            "virtual": False,
            "downloadable": False,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "external_url": "",
            "button_text": "",
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": False,
            "stock_quantity": None,
            "stock_status": "instock",
            "backorders": "no",
            "backorders_allowed": False,
            "backordered": False,
            "low_stock_amount": None,
            "sold_individually": False,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "shipping_required": True,
            "shipping_taxable": True,
            "shipping_class": "",
            "shipping_class_id": 0,
            "reviews_allowed": True,
            "average_rating": "0.00",
            "rating_count": 0,
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": parent_id,
            "purchase_note": "",
            "categories": [],
            "tags": [],
            "images": [],
            "attributes": [],
            "default_attributes": [],
            "variations": [],
            "grouped_products": [],
            "menu_order": 0,
            "price_html": "",
            "related_ids": [],
            "meta_data": [],
            "_links": {
                "self": [{"href": f"{self.url}{WC_PREFIX}/products/{pid}"}],
                "collection": [{"href": f"{self.url}{WC_PREFIX}/products"}],
            },
        }

    def _check_sku(self, sku: str) -> None:
        if not self.unique_skus:
            return
        if sku and any(p["sku"] == sku and p["status"] != "trash" for p in self._products.values()):
            raise ValueError(f"product_invalid_sku: Invalid or duplicated SKU {sku!r}.")

    def add_product(self, name: str, sku: str, price: Any = "10.00", **extra: Any) -> dict[str, Any]:
        """Add a product (``type`` defaults to ``simple``; ``extra`` overrides any field). Returns a copy."""
        with self.lock:
            self._check_sku(sku)
            type_ = extra.pop("type", "simple")
            if type_ not in PRODUCT_TYPES:
                raise ValueError(f"unknown product type {type_!r}")
            if extra.get("status", "publish") not in PRODUCT_STATUSES:
                raise ValueError(f"unknown product status {extra['status']!r}")
            product = self._product_shape(name, sku, price, self._now(), type_)
            product.update(extra)
            self._products[product["id"]] = product
            return copy.deepcopy(product)

    def set_product_status(self, product_id: int | str, status: str) -> dict[str, Any]:
        """Change a product's (or a variation's) post status, as an edit or a move to the trash in wp-admin
        does; ``date_modified`` moves. Returns a copy."""
        with self.lock:
            if status not in PRODUCT_STATUSES:
                raise ValueError(f"unknown product status {status!r}")
            product = self._products.get(int(product_id))
            if product is None:
                raise KeyError(f"no product {product_id}")
            if product["type"] == "variation" and status not in ("publish", "private", "trash"):
                raise ValueError(f"a variation is publish (enabled) or private (disabled), not {status!r}")
            product["status"] = status
            product["date_modified"] = product["date_modified_gmt"] = _fmt(self._now())
            return copy.deepcopy(product)

    def add_variation(self, parent_id: int, sku: str, price: Any = "10.00", **extra: Any) -> dict[str, Any]:
        """Add a variation under ``parent_id`` (which becomes ``variable``). ``attributes`` may be
        ``[{"name": "Voltage", "option": "18V"}]``; the name is ``"Parent - 18V"`` like WooCommerce's."""
        with self.lock:
            parent = self._products.get(int(parent_id))
            if parent is None or parent["type"] == "variation":
                raise KeyError(f"no parent product {parent_id}")
            self._check_sku(sku)
            attributes = extra.pop("attributes", [])
            options = [str(a.get("option", "")) for a in attributes if a.get("option")]
            name = extra.pop("name", None) or (
                f"{parent['name']} - {', '.join(options)}" if options else parent["name"]
            )
            variation = self._product_shape(name, sku, price, self._now(), "variation", parent["id"])
            variation["attributes"] = [
                {"id": 0, "name": a.get("name", ""), "option": a.get("option", "")} for a in attributes
            ]
            variation["permalink"] = f"{parent['permalink']}?variation={variation['id']}"
            variation.update(extra)
            self._products[variation["id"]] = variation
            parent["type"] = "variable"
            parent["variations"].append(variation["id"])
            if options:
                seen = {a["name"]: a for a in parent["attributes"]}
                for attr in attributes:
                    entry = seen.setdefault(
                        attr.get("name", ""),
                        {
                            "id": 0,
                            "name": attr.get("name", ""),
                            "position": len(seen),
                            "visible": True,
                            "variation": True,
                            "options": [],
                        },
                    )
                    if attr.get("option") not in entry["options"]:
                        entry["options"].append(attr.get("option"))
                parent["attributes"] = list(seen.values())
            return copy.deepcopy(variation)

    @property
    def products(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self._products.values()))

    def _r_list_products(self, request: Request) -> Response:
        items = list(self._products.values())
        skus = request.arg("sku")
        if skus:
            wanted = {s.strip() for s in skus.split(",") if s.strip()}
            items = [p for p in items if p["sku"] in wanted]  # variations included, as WC 3.6+
        else:
            items = [p for p in items if p["type"] != "variation"]
        type_ = request.arg("type")
        if type_:
            if type_ not in PRODUCT_TYPES:
                raise _invalid_param("type", f"type is not one of {', '.join(PRODUCT_TYPES)}.")
            items = [p for p in items if p["type"] == type_]
        status = request.arg("status", "any") or "any"
        if status not in ("any",) + PRODUCT_STATUSES:
            raise _invalid_param("status", f"status is not one of {', '.join(('any',) + PRODUCT_STATUSES)}.")
        if status == "any":  # WP_Query's "any": trash (and auto-draft) only when asked for by name
            items = [p for p in items if p["status"] != "trash"]
        else:
            items = [p for p in items if p["status"] == status]
        include = request.arg("include")
        if include:
            ids = {_int(i, "include") for i in include.split(",") if i.strip()}
            items = [p for p in items if p["id"] in ids]
        search = (request.arg("search") or "").strip().lower()
        if search:
            items = [p for p in items if search in p["name"].lower() or search in p["description"].lower()]
        items = self._sort(request, items, default="date")
        return self._paged(request, items)

    def _product_or_404(self, pid: Any) -> dict[str, Any]:
        product = self._products.get(int(pid))
        if product is None:
            raise WooError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return product

    def _r_get_product(self, request: Request, id: str) -> Response:
        return Response.json(200, copy.deepcopy(self._product_or_404(id)))

    def _r_list_variations(self, request: Request, id: str) -> Response:
        parent = self._product_or_404(id)
        items = [self._products[v] for v in parent["variations"] if v in self._products]
        return self._paged(request, self._sort(request, items, default="date"))

    def _r_get_variation(self, request: Request, parent: str, id: str) -> Response:
        variation = self._products.get(int(id))
        if variation is None or variation["parent_id"] != int(parent):
            raise WooError(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
        return Response.json(200, copy.deepcopy(variation))

    def _sort(self, request: Request, items: list[dict[str, Any]], default: str) -> list[dict[str, Any]]:
        orderby = request.arg("orderby", default) or default
        direction = (request.arg("order", "desc") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc, desc.")
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "date": lambda o: (o["date_created_gmt"], o["id"]),
            "id": lambda o: o["id"],
            "modified": lambda o: (o["date_modified_gmt"], o["id"]),
            "title": lambda o: (o.get("name") or "", o["id"]),
            "slug": lambda o: (o.get("slug") or "", o["id"]),
        }
        if orderby == "include":
            order = [_int(i, "include") for i in (request.arg("include") or "").split(",") if i.strip()]
            return sorted(items, key=lambda o: order.index(o["id"]) if o["id"] in order else len(order))
        if orderby not in keys:
            raise _invalid_param("orderby", f"orderby is not one of {', '.join(list(keys) + ['include'])}.")
        return sorted(items, key=keys[orderby], reverse=direction == "desc")

    # ------------------------------------------------------------------ orders: python API

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Copies of all orders (including trashed ones), oldest first."""
        with self.lock:
            return copy.deepcopy([self._orders[k] for k in sorted(self._orders)])

    def get_order(self, order_id: int | str) -> dict[str, Any] | None:
        """A copy of the order, or None."""
        with self.lock:
            order = self._orders.get(int(order_id))
            return copy.deepcopy(order) if order is not None else None

    def create_order(self, **fields: Any) -> dict[str, Any]:
        """Create an order as ``POST /orders`` would (raises :class:`WooError`)."""
        with self._action():
            return copy.deepcopy(self._create_order(fields))

    def update_order(self, order_id: int | str, **fields: Any) -> dict[str, Any]:
        """Apply fields as ``PUT /orders/{id}`` would; bumps ``date_modified``. ``date_created`` /
        ``date_modified`` / ``date_paid`` / ``date_completed`` (with or without ``_gmt``) may be set
        directly (a ``datetime`` or WooCommerce date string) to stage history in tests."""
        with self._action():
            order = self._order_or_404(order_id)
            stamps = {
                k: fields.pop(k)
                for k in list(fields)
                if k.removesuffix("_gmt") in ("date_created", "date_modified", "date_paid", "date_completed")
            }
            updated = self._update_order(order, fields)
            for key, value in stamps.items():
                if isinstance(value, datetime):
                    if value.tzinfo is not None:
                        value = value.astimezone(UTC).replace(tzinfo=None)
                    value = _fmt(value.replace(microsecond=0))
                base = key.removesuffix("_gmt")
                updated[base] = updated[base + "_gmt"] = value
            return copy.deepcopy(updated)

    def set_status(self, order_id: int | str, status: str) -> dict[str, Any]:
        return self.update_order(order_id, status=status)

    def cancel_order(self, order_id: int | str) -> dict[str, Any]:
        """Cancel an order as the shop manager does (status ``cancelled``, as ``PUT /orders/{id}``
        ``{"status": "cancelled"}``): reduced stock goes back, ``order.updated`` is delivered."""
        return self.update_order(order_id, status="cancelled")

    def create_refund(self, order_id: int | str, **body: Any) -> dict[str, Any]:
        """Create a refund as ``POST /orders/{id}/refunds`` would (raises :class:`WooError`); the
        refund as the API shows it."""
        with self._action():
            return self._format_refund(self._create_refund(order_id, body))

    def refunds(self, order_id: int | str) -> list[dict[str, Any]]:
        """The order's refunds as ``GET /orders/{id}/refunds`` shows them, newest first."""
        with self.lock:
            return [self._format_refund(r) for r in self._order_refunds(_int(order_id, "order_id"))]

    def set_stock(self, product_id: int | str, quantity: int | None, manage: bool = True) -> dict[str, Any]:
        """Manage a product's (or variation's) stock: ``stock_quantity`` and ``stock_status``. Returns a copy."""
        with self.lock:
            product = self._products.get(int(product_id))
            if product is None:
                raise KeyError(f"no product {product_id}")
            product["manage_stock"] = bool(manage)
            product["stock_quantity"] = int(quantity) if manage and quantity is not None else None
            self._stock_status(product)
            return copy.deepcopy(product)

    def add_tracking(
        self,
        order_id: int | str,
        provider: str,
        number: str,
        date_shipped: Any = None,
        link: str | None = None,
    ) -> dict[str, Any]:
        """Add a tracking item as the extension's REST API would. A provider that is not predefined
        (or any provider given with ``link``) is stored as a custom provider. Returns the item."""
        body: dict[str, Any] = {"tracking_number": number}
        if link is not None or _provider_by_slug(sanitize_title(provider)) is None:
            body.update(custom_tracking_provider=provider, custom_tracking_link=link or "")
        else:
            body["tracking_provider"] = provider
        if date_shipped is not None:
            body["date_shipped"] = (
                date_shipped.isoformat() if isinstance(date_shipped, (date, datetime)) else str(date_shipped)
            )
        with self._action():
            return self._add_tracking(self._order_or_404(order_id), body)

    def trackings(self, order_id: int | str) -> list[dict[str, Any]]:
        with self.lock:
            order = self._order_or_404(order_id)
            return [self._format_tracking(order, item) for item in self._tracking_items(order)]

    def add_note(
        self, order_id: int | str, note: str, customer_note: bool = False, author: str | None = None
    ) -> dict[str, Any]:
        """Add an order note as WC_Order::add_order_note does; the note as the API shows it. ``author``: the
        display name of the person who left it (a shop manager in wp-admin); None: the store's own note.
        Raises :class:`WooError` 404 for an unknown order."""
        with self.lock:
            order = self._note_order_or_404(order_id)
            return self._format_note(
                self._add_note(order["id"], note, customer_note=customer_note, author=author)
            )

    def notes(self, order_id: int | str, type: str = "any") -> list[dict[str, Any]]:  # noqa: A002
        """The order's notes as ``GET /orders/{id}/notes?type=`` shows them, newest first."""
        with self.lock:
            order = self._note_order_or_404(order_id)
            return [self._format_note(n) for n in self._notes_of(order["id"], type)]

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "platform": self.platform,
                "name": self.name,
                "url": self.url,
                "webhooks": [
                    {k: v for k, v in w.items() if k != "secret"}
                    for _, w in sorted(copy.deepcopy(self._webhooks).items())
                ],
                "orders": copy.deepcopy([self._orders[k] for k in sorted(self._orders)]),
                "products": copy.deepcopy([self._products[k] for k in sorted(self._products)]),
                "refunds": [
                    self._format_refund(self._refunds[k]) | {"order_id": self._refunds[k]["parent_id"]}
                    for k in sorted(self._refunds)
                ],
                "trackings": {
                    str(oid): [self._format_tracking(o, t) for t in self._tracking_items(o)]
                    for oid, o in sorted(self._orders.items())
                    if self._tracking_items(o)
                },
                "notes": {
                    str(oid): [self._format_note(n) for n in self._notes_of(oid)]
                    for oid in sorted(self._orders)
                    if self._notes_of(oid)
                },
            }

    # ------------------------------------------------------------------ orders: model

    def _order_or_404(self, order_id: Any) -> dict[str, Any]:
        try:
            order = self._orders.get(int(order_id))
        except (TypeError, ValueError):
            order = None
        if order is None:
            raise WooError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _blank_order(self, oid: int, now: datetime) -> dict[str, Any]:
        key = "wc_order_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(13))
        return {
            "id": oid,
            "parent_id": 0,
            "status": "pending",
            "currency": self.currency,
            "version": "9.8.0",
            "prices_include_tax": False,
            "date_created": _fmt(now),
            "date_created_gmt": _fmt(now),
            "date_modified": _fmt(now),
            "date_modified_gmt": _fmt(now),
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "0.00",
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": "0.00",
            "total_tax": "0.00",
            "customer_id": 0,
            "order_key": key,
            "billing": {f: "" for f in BILLING_FIELDS},
            "shipping": {f: "" for f in SHIPPING_FIELDS},
            "payment_method": "",
            "payment_method_title": "",
            "transaction_id": "",
            "customer_ip_address": "",
            "customer_user_agent": "",
            "created_via": "rest-api",
            "customer_note": "",
            "date_completed": None,
            "date_completed_gmt": None,
            "date_paid": None,
            "date_paid_gmt": None,
            "cart_hash": "",
            "number": str(oid),
            "meta_data": [],
            "line_items": [],
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
            "payment_url": f"{self.url}/checkout/order-pay/{oid}/?pay_for_order=true&key={key}",
            "is_editable": True,
            "needs_payment": False,
            "needs_processing": True,
            "currency_symbol": "$",
            "_links": {
                "self": [{"href": f"{self.url}{WC_PREFIX}/orders/{oid}"}],
                "collection": [{"href": f"{self.url}{WC_PREFIX}/orders"}],
            },
        }

    def _validate_order_body(self, body: dict[str, Any]) -> None:
        if "status" in body and body["status"] not in ORDER_STATUSES:
            raise _invalid_param("status", f"status is not one of {', '.join(ORDER_STATUSES)}.")
        if "currency" in body and not re.fullmatch(r"[A-Z]{3}", str(body["currency"] or "")):
            raise _invalid_param("currency", "currency is not a valid ISO 4217 currency code.")
        for section in ("billing", "shipping"):
            if section in body and not isinstance(body[section], dict):
                raise _invalid_param(section, f"{section} is not of type object.")
        email = (body.get("billing") or {}).get("email")
        if email and not _EMAIL.match(str(email)):
            raise _invalid_param("billing", "billing[email] is not a valid email address.")
        for lines in ("line_items", "shipping_lines", "fee_lines", "coupon_lines", "meta_data"):
            if lines in body and not (
                isinstance(body[lines], list) and all(isinstance(x, dict) for x in body[lines])
            ):
                raise _invalid_param(lines, f"{lines} is not of type array of objects.")
        if "customer_id" in body:
            _int(body["customer_id"], "customer_id")
        self._rest_bool(body, "manual_update", False)

    def _apply_scalars(self, order: dict[str, Any], body: dict[str, Any]) -> None:
        for name in ("currency", "customer_note", "payment_method", "payment_method_title", "transaction_id"):
            if name in body:
                order[name] = "" if body[name] is None else str(body[name])
        for name in ("customer_id", "parent_id"):
            if name in body:
                order[name] = _int(body[name], name)
        for section, allowed in (("billing", BILLING_FIELDS), ("shipping", SHIPPING_FIELDS)):
            for key, value in (body.get(section) or {}).items():
                if key in allowed:
                    order[section][key] = "" if value is None else str(value)

    def _upsert_meta(
        self, meta: list[dict[str, Any]], updates: list[dict[str, Any]], item: bool = False
    ) -> None:
        """WC_Data::update_meta_data: by ``id`` when given, else the first entry with the key, else add."""
        for update in updates:
            if "key" not in update:
                continue
            key, value = str(update["key"]), update.get("value")
            target = None
            if update.get("id"):
                target = next((m for m in meta if m["id"] == _int(update["id"], "meta_data")), None)
            if target is None:
                target = next((m for m in meta if m["key"] == key), None)
            if target is None:
                target = {"id": self._meta_id(), "key": key, "value": value}
                meta.append(target)
            target["key"], target["value"] = key, value
            if item:
                target["display_key"] = key
                target["display_value"] = value

    def _line_product(self, li: dict[str, Any], creating: bool) -> tuple[dict[str, Any] | None, bool]:
        """(catalog product or None, has a product reference)."""
        product_id = _int(li.get("product_id"), "line_items")
        variation_id = _int(li.get("variation_id"), "line_items")
        sku = li.get("sku")
        if variation_id:
            product = self._products.get(variation_id)
            if product is None or product["type"] != "variation":
                raise WooError(
                    400,
                    "woocommerce_rest_invalid_product_id",
                    f"Invalid product ID {variation_id} (variation_id).",
                )
            return product, True
        if product_id:
            product = self._products.get(product_id)
            if product is None:
                raise WooError(
                    400, "woocommerce_rest_invalid_product_id", f"Invalid product ID {product_id}."
                )
            return product, True
        if sku:
            product = next((p for p in self._products.values() if p["sku"] == sku), None)
            return product, True
        return None, False

    def _new_line_item(self, li: dict[str, Any]) -> dict[str, Any]:
        product, referenced = self._line_product(li, creating=True)
        if product is None and (self.require_product_reference and not referenced or not li.get("name")):
            raise WooError(
                400, "woocommerce_rest_required_product_reference", "Product ID or SKU is required."
            )
        quantity = _int(li.get("quantity", 1), "line_items") if li.get("quantity") is not None else 1
        if product is not None:
            unit = _dec(product["price"])
        elif li.get("price") not in (None, ""):
            unit = _dec(li["price"], "line_items")
        else:
            basis = li.get("subtotal") if li.get("subtotal") not in (None, "") else li.get("total")
            unit = _dec(basis, "line_items") / quantity if quantity else Decimal(0)
        item: dict[str, Any] = {
            "id": self._item_id(),
            "name": "",
            "product_id": 0,
            "variation_id": 0,
            "quantity": quantity,
            "tax_class": str(li.get("tax_class") or ""),
            "subtotal": "0.00",
            "subtotal_tax": "0.00",
            "total": "0.00",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
            "sku": "",
            "price": 0.0,
            "image": {"id": "", "src": ""},
            "parent_name": None,
        }
        if product is not None:
            self._set_item_product(item, product)
        else:
            item["name"] = str(li["name"])
            item["sku"] = str(li.get("sku") or "")
        amount = unit * quantity
        item["subtotal"] = _money(amount)
        item["total"] = _money(amount)
        self._apply_item_props(item, li)
        self._upsert_meta(item["meta_data"], li.get("meta_data") or [], item=True)
        return item

    def _set_item_product(self, item: dict[str, Any], product: dict[str, Any]) -> None:
        if product["type"] == "variation":
            parent = self._products.get(product["parent_id"]) or {}
            item.update(
                product_id=product["parent_id"], variation_id=product["id"], parent_name=parent.get("name")
            )
        else:
            item.update(product_id=product["id"], variation_id=0, parent_name=None)
        item["name"] = product["name"]
        item["sku"] = product["sku"]

    def _apply_item_props(self, item: dict[str, Any], li: dict[str, Any]) -> None:
        if li.get("name"):
            item["name"] = str(li["name"])
        if li.get("quantity") is not None:
            item["quantity"] = _int(li["quantity"], "line_items")
        for prop in ("subtotal", "total"):
            if li.get(prop) not in (None, ""):
                item[prop] = _money(_dec(li[prop], "line_items"))
        if "tax_class" in li:
            item["tax_class"] = str(li["tax_class"] or "")
        qty = item["quantity"]
        item["price"] = float(_dec(item["total"]) / qty) if qty else 0.0

    def _update_line_items(self, order: dict[str, Any], updates: list[dict[str, Any]]) -> None:
        for li in updates:
            if not li.get("id"):
                order["line_items"].append(self._new_line_item(li))
                continue
            item_id = _int(li["id"], "line_items")
            item = next((i for i in order["line_items"] if i["id"] == item_id), None)
            if item is None:
                raise WooError(
                    400,
                    "woocommerce_rest_invalid_item_id",
                    "Order item ID provided is not associated with order.",
                )
            if li.get("quantity") is not None and _int(li["quantity"], "line_items") == 0:
                order["line_items"].remove(item)
                continue
            product, referenced = self._line_product(li, creating=False)
            if product is not None and product["id"] not in (item["product_id"], item["variation_id"]):
                self._set_item_product(item, product)
            self._apply_item_props(item, li)
            self._upsert_meta(item["meta_data"], li.get("meta_data") or [], item=True)

    def _update_other_lines(self, order: dict[str, Any], kind: str, updates: list[dict[str, Any]]) -> None:
        required = {
            "shipping_lines": (
                "method_id",
                "woocommerce_rest_invalid_shipping_item",
                "Shipping method ID is required.",
            ),
            "fee_lines": ("name", "woocommerce_rest_invalid_fee_item", "Fee name is required."),
            "coupon_lines": ("code", "woocommerce_rest_invalid_coupon_coupon", "Coupon code is required."),
        }
        field, code, message = required[kind]
        props = {
            "shipping_lines": ("method_id", "method_title", "instance_id", "total"),
            "fee_lines": ("name", "tax_class", "tax_status", "total"),
            "coupon_lines": ("code", "discount"),
        }[kind]
        for line in updates:
            if line.get("id"):
                line_id = _int(line["id"], kind)
                existing = next((x for x in order[kind] if x["id"] == line_id), None)
                if existing is None:
                    raise WooError(
                        400,
                        "woocommerce_rest_invalid_item_id",
                        "Order item ID provided is not associated with order.",
                    )
                if field in line and line[field] is None:
                    order[kind].remove(existing)
                    continue
            else:
                if not line.get(field):
                    raise WooError(400, code, message)
                existing = {
                    "shipping_lines": {
                        "id": 0,
                        "method_title": "",
                        "method_id": "",
                        "instance_id": "",
                        "total": "0.00",
                        "total_tax": "0.00",
                        "taxes": [],
                        "meta_data": [],
                    },
                    "fee_lines": {
                        "id": 0,
                        "name": "",
                        "tax_class": "",
                        "tax_status": "taxable",
                        "amount": "",
                        "total": "0.00",
                        "total_tax": "0.00",
                        "taxes": [],
                        "meta_data": [],
                    },
                    "coupon_lines": {
                        "id": 0,
                        "code": "",
                        "discount": "0.00",
                        "discount_tax": "0.00",
                        "meta_data": [],
                    },
                }[kind]
                existing["id"] = self._item_id()
                order[kind].append(existing)
            for prop in props:
                if line.get(prop) is not None:
                    value = line[prop]
                    existing[prop] = (
                        _money(_dec(value, kind)) if prop in ("total", "discount") else str(value)
                    )
            if kind == "fee_lines" and line.get("total") is not None:
                existing["amount"] = existing["total"]
            self._upsert_meta(existing["meta_data"], line.get("meta_data") or [])

    @staticmethod
    def _recalculate(order: dict[str, Any]) -> None:
        lines = sum((_dec(i["total"]) for i in order["line_items"]), Decimal(0))
        discount = sum(
            (max(Decimal(0), _dec(i["subtotal"]) - _dec(i["total"])) for i in order["line_items"]), Decimal(0)
        )
        discount += sum((_dec(c["discount"]) for c in order["coupon_lines"]), Decimal(0))
        shipping = sum((_dec(s["total"]) for s in order["shipping_lines"]), Decimal(0))
        fees = sum((_dec(f["total"]) for f in order["fee_lines"]), Decimal(0))
        order["discount_total"] = _money(discount)
        order["shipping_total"] = _money(shipping)
        order["total"] = _money(
            lines + shipping + fees - sum((_dec(c["discount"]) for c in order["coupon_lines"]), Decimal(0))
        )

    def _set_status(self, order: dict[str, Any], status: str, now: datetime, by: str | None = None) -> None:
        """WC_Order::set_status and the save's status_transition(): stock, dates and the "Order status changed"
        note (``by``: the person it is attributed to, as a manual update; None: the store's own)."""
        previous = order["status"]
        order["status"] = status
        if status != previous:
            self._add_note(
                order["id"],
                f"Order status changed from {_status_name(previous)} to {_status_name(status)}.",
                author=by,
                now=now,
            )
        if status != previous or order["id"] not in self._orders:
            if status in ("processing", "completed", "on-hold"):
                self._maybe_reduce_stock(order)  # wc_maybe_reduce_stock_levels
            elif status in ("cancelled", "pending"):
                self._maybe_increase_stock(order)  # wc_maybe_increase_stock_levels
        if status == "completed" and not order["date_completed"]:
            order["date_completed"] = order["date_completed_gmt"] = _fmt(now)
        if status in ("processing", "completed") and not order["date_paid"]:
            order["date_paid"] = order["date_paid_gmt"] = _fmt(now)

    def _payment_complete(self, order: dict[str, Any], now: datetime, transaction_id: Any) -> None:
        """WC_Order::payment_complete: only from a payable status; sets date_paid."""
        if order["status"] in PAYABLE_STATUSES:
            if transaction_id:
                order["transaction_id"] = str(transaction_id)
            if not order["date_paid"]:
                order["date_paid"] = order["date_paid_gmt"] = _fmt(now)
            self._set_status(order, "processing", now)

    def _refresh_flags(self, order: dict[str, Any]) -> None:
        order["is_editable"] = order["status"] in ("pending", "on-hold", "auto-draft", "checkout-draft")
        order["needs_payment"] = order["status"] in ("pending", "failed") and _dec(order["total"]) > 0
        order["needs_processing"] = bool(order["line_items"])

    def _create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        self._validate_order_body(body)
        now = self._now()
        order = self._blank_order(self._next_order_id, now)
        self._apply_scalars(order, body)
        self._upsert_meta(order["meta_data"], body.get("meta_data") or [])
        for li in body.get("line_items") or []:
            order["line_items"].append(self._new_line_item(li))
        for kind in ("shipping_lines", "fee_lines", "coupon_lines"):
            self._update_other_lines(order, kind, [x for x in body.get(kind) or [] if not x.get("id")])
        self._recalculate(order)
        if body.get("status"):
            self._set_status(order, body["status"], now, by=self._manual_author(body))
        status_before_payment = order["status"]
        if _bool(body.get("set_paid", False)):
            self._payment_complete(order, now, body.get("transaction_id"))
        self._refresh_flags(order)
        self._orders[order["id"]] = order
        self._next_order_id += 1
        self._note("order.created", order["id"])
        if order["status"] != status_before_payment:  # payment_complete() saved the order again
            self._note("order.updated", order["id"])
        return order

    def _update_order(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        self._validate_order_body(body)
        now = self._now()
        new = copy.deepcopy(order)
        self._apply_scalars(new, body)
        self._upsert_meta(new["meta_data"], body.get("meta_data") or [])
        changed_lines = False
        if body.get("line_items"):
            self._update_line_items(new, body["line_items"])
            changed_lines = True
        for kind in ("shipping_lines", "fee_lines", "coupon_lines"):
            if body.get(kind):
                self._update_other_lines(new, kind, body[kind])
                changed_lines = True
        if changed_lines:
            self._recalculate(new)
        if body.get("status"):
            self._set_status(new, body["status"], now, by=self._manual_author(body))
        if _bool(body.get("set_paid", False)):
            self._payment_complete(new, now, body.get("transaction_id"))
        new["date_modified"] = new["date_modified_gmt"] = _fmt(now)
        self._refresh_flags(new)
        self._orders[new["id"]] = new
        self._note("order.updated", new["id"])
        return new

    # ------------------------------------------------------------------ orders: routes

    def _r_create_order(self, request: Request) -> Response:
        order = self._create_order(self._body(request))
        return Response.json(201, copy.deepcopy(order), {"Location": order["_links"]["self"][0]["href"]})

    def _r_get_order(self, request: Request, id: str) -> Response:
        return Response.json(200, copy.deepcopy(self._order_or_404(id)))

    def _r_update_order(self, request: Request, id: str) -> Response:
        order = self._order_or_404(id)
        return Response.json(200, copy.deepcopy(self._update_order(order, self._body(request))))

    def _r_delete_order(self, request: Request, id: str) -> Response:
        order = self._order_or_404(id)
        if _bool(request.arg("force", "false")):
            del self._orders[order["id"]]
            for rid in [k for k, r in self._refunds.items() if r["parent_id"] == order["id"]]:
                del self._refunds[rid]  # the order's refunds go with it
            for nid in [k for k, n in self._order_notes.items() if n["order_id"] == order["id"]]:
                del self._order_notes[nid]  # and its notes (wp_delete_post deletes the post's comments)
            return Response.json(200, copy.deepcopy(order))
        if order["status"] == "trash":
            raise WooError(410, "woocommerce_rest_already_trashed", "The order has already been deleted.")
        trashed = copy.deepcopy(order)
        trashed["status"] = "trash"
        trashed["date_modified"] = trashed["date_modified_gmt"] = _fmt(self._now())
        self._orders[order["id"]] = trashed
        self._note("order.deleted", order["id"])
        return Response.json(200, copy.deepcopy(trashed))

    def _r_list_orders(self, request: Request) -> Response:
        items = list(self._orders.values())
        status = request.arg("status", "any") or "any"
        statuses = {s.strip() for s in status.split(",") if s.strip()}
        unknown = statuses - set(ORDER_STATUSES) - {"any", "trash"}
        if unknown:
            raise _invalid_param(
                "status", f"status is not one of {', '.join(ORDER_STATUSES + ('any', 'trash'))}."
            )
        if "any" in statuses:
            items = [o for o in items if o["status"] != "trash" or "trash" in statuses]
        else:
            items = [o for o in items if o["status"] in statuses]
        for param, field, newer in (
            ("after", "date_created_gmt", True),
            ("before", "date_created_gmt", False),
            ("modified_after", "date_modified_gmt", True),
            ("modified_before", "date_modified_gmt", False),
        ):
            value = request.arg(param)
            if value:
                bound = _parse_param_date(param, value)
                items = [
                    o
                    for o in items
                    if (_parse_wc_date(o[field]) > bound if newer else _parse_wc_date(o[field]) < bound)
                ]
        for param in ("include", "exclude"):
            value = request.arg(param)
            if value:
                ids = {_int(i, param) for i in value.split(",") if i.strip()}
                items = [o for o in items if (o["id"] in ids) == (param == "include")]
        for param, field in (("customer", "customer_id"), ("parent", "parent_id")):
            value = request.arg(param)
            if value not in (None, ""):
                items = [o for o in items if o[field] == _int(value, param)]
        search = (request.arg("search") or "").strip().lower()
        if search:

            def hit(o: dict[str, Any]) -> bool:
                texts = [o["number"], str(o["id"]), o["billing"]["email"]]
                for section in ("billing", "shipping"):
                    texts += [
                        o[section]["first_name"],
                        o[section]["last_name"],
                        f"{o[section]['first_name']} {o[section]['last_name']}",
                    ]
                return any(search in t.lower() for t in texts if t)

            items = [o for o in items if hit(o)]
        items = self._sort(request, items, default="date")
        return self._paged(request, items)

    # ------------------------------------------------------------------ stock (managed products only)

    def _stock_product(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """The product whose stock a line item moves: its variation, or the parent when the variation
        does not manage its own stock; None when neither manages stock."""
        for pid in (item.get("variation_id"), item.get("product_id")):
            product = self._products.get(pid or 0)
            if product is not None and product.get("manage_stock") is True:
                return product
        return None

    @staticmethod
    def _stock_status(product: dict[str, Any]) -> None:
        if product.get("manage_stock") is not True or product.get("stock_quantity") is None:
            return
        if product["stock_quantity"] > 0:
            product["stock_status"] = "instock"
        else:
            product["stock_status"] = "onbackorder" if product.get("backorders") != "no" else "outofstock"

    def _change_stock(self, product: dict[str, Any], delta: int) -> None:
        product["stock_quantity"] = int(product.get("stock_quantity") or 0) + delta
        self._stock_status(product)
        product["date_modified"] = product["date_modified_gmt"] = _fmt(self._now())

    @staticmethod
    def _item_meta(item: dict[str, Any], key: str) -> Any:
        meta = next((m for m in item.get("meta_data", []) if m["key"] == key), None)
        return meta["value"] if meta else None

    def _set_item_meta(self, item: dict[str, Any], key: str, value: Any) -> None:
        if value is None:
            item["meta_data"] = [m for m in item.get("meta_data", []) if m["key"] != key]
        else:
            self._upsert_meta(item.setdefault("meta_data", []), [{"key": key, "value": value}], item=True)

    def _maybe_reduce_stock(self, order: dict[str, Any]) -> None:
        """wc_maybe_reduce_stock_levels / wc_reduce_stock_levels: once per order, each line whose product
        manages stock lowers it by its quantity and records ``_reduced_stock`` on the line."""
        if order["id"] in self._stock_reduced:
            return
        for item in order["line_items"]:
            product = self._stock_product(item)
            if product is None or self._item_meta(item, "_reduced_stock"):
                continue
            self._change_stock(product, -int(item["quantity"]))
            self._set_item_meta(item, "_reduced_stock", str(item["quantity"]))
        self._stock_reduced.add(order["id"])

    def _maybe_increase_stock(self, order: dict[str, Any]) -> None:
        """wc_maybe_increase_stock_levels (cancelled, pending): what the lines still hold reduced goes back."""
        if order["id"] not in self._stock_reduced:
            return
        for item in order["line_items"]:
            reduced = _int(self._item_meta(item, "_reduced_stock") or 0, "_reduced_stock")
            product = self._stock_product(item)
            if not reduced or product is None:
                continue
            self._change_stock(product, reduced)
            self._set_item_meta(item, "_reduced_stock", None)
        self._stock_reduced.discard(order["id"])

    # ------------------------------------------------------------------ orders: refunds

    def _order_refunds(self, order_id: int) -> list[dict[str, Any]]:
        """The order's refunds, newest first (WC_Order::get_refunds)."""
        return sorted(
            (r for r in self._refunds.values() if r["parent_id"] == order_id),
            key=lambda r: (r["date_created_gmt"], r["id"]),
            reverse=True,
        )

    def _order_refund_summary(self, order: dict[str, Any]) -> None:
        """The order's ``refunds`` field: ``[{id, reason, total: "-12.00"}]``, newest first."""
        order["refunds"] = [
            {"id": r["id"], "reason": r["reason"] or "", "total": "-" + r["amount"]}
            for r in self._order_refunds(order["id"])
        ]

    @staticmethod
    def _rest_bool(body: dict[str, Any], name: str, default: bool) -> bool:
        """A boolean argument as the WP REST API validates one (rest_is_boolean)."""
        if name not in body or body[name] is None:
            return default
        value = body[name]
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
            return value.strip().lower() in ("true", "1")
        raise _invalid_param(name, f"{name} is not of type boolean.")

    @staticmethod
    def _php_number(value: Any) -> Decimal | None:
        """``is_numeric`` then the number; None when PHP would not call it numeric."""
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, (int, float)):
            return Decimal(str(value))
        if isinstance(value, str):
            text = value.strip()
            if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
                return Decimal(text)
        return None

    def _refund_line_args(self, line_items: Any) -> tuple[dict[int, dict[str, Any]] | None, Any]:
        """RestApiUtil::adjust_line_items_for_create_refund_request: ``[{id, quantity, refund_total,
        refund_tax: [{id, refund_total}]}]`` keyed by item id (``quantity`` renamed ``qty``, taxes as
        ``{rate id: amount}``). (the keyed items or None when a line has no ``id``, the raw list)."""
        if not isinstance(line_items, list) or not line_items:
            return {}, line_items
        keyed: dict[int, dict[str, Any]] = {}
        for item in line_items:
            if not isinstance(item, dict) or "id" not in item:
                return None, line_items
            entry = dict(item)
            if "quantity" in entry and "qty" not in entry:
                entry["qty"] = entry["quantity"]
            entry.pop("quantity", None)
            taxes = entry.get("refund_tax")
            if (
                isinstance(taxes, list)
                and taxes
                and all(isinstance(t, dict) and "id" in t and "refund_total" in t for t in taxes)
            ):
                entry["refund_tax"] = {str(t["id"]): t["refund_total"] for t in taxes}
            try:
                key = int(str(entry.pop("id")).strip())
            except ValueError:
                continue
            keyed[key] = entry
        return keyed, line_items

    def _amount_from_lines(self, keyed: dict[int, dict[str, Any]] | None, raw: Any) -> Decimal | None:
        """RestApiUtil::calculate_refund_amount_from_line_items: the sum of every line's refund_total
        and refund_tax amounts, or None unless all of them are numeric."""
        items = list(keyed.values()) if keyed is not None else (raw if isinstance(raw, list) else [])
        if not items:
            return None
        total = Decimal(0)
        for item in items:
            if not isinstance(item, dict):
                return None
            number = self._php_number(item.get("refund_total"))
            if number is None:
                return None
            total += number
            taxes = item.get("refund_tax")
            if taxes is None:
                continue
            for tax in taxes.values() if isinstance(taxes, dict) else taxes:
                number = self._php_number(tax)
                if number is None:
                    return None
                total += number
        return total

    def _remaining_refund_amount(self, order: dict[str, Any]) -> Decimal:
        refunded = sum((_dec(r["amount"]) for r in self._order_refunds(order["id"])), Decimal(0))
        return (_dec(order["total"]) - refunded).quantize(_CENT)

    def _refunded_qty(self, order_id: int, item_id: int) -> int:
        return sum(
            -int(li.get("quantity") or 0)
            for r in self._order_refunds(order_id)
            for li in r["line_items"]
            if str(self._item_meta(li, "_refunded_item_id")) == str(item_id)
        )

    def _refund_payment(self, order: dict[str, Any]) -> str | None:
        """wc_refund_payment: the error message, or None when the order's gateway refunded it."""
        method = order.get("payment_method") or ""
        if method in self.refund_gateways:
            return None
        if method not in self.gateways:
            return "The payment gateway for this order does not exist."
        return "The payment gateway for this order does not support automatic refunds."

    def _create_refund(self, order_id: Any, body: dict[str, Any]) -> dict[str, Any]:
        """WC_REST_Order_Refunds_Controller::create_item and wc_create_refund (see the module docstring)."""
        if body.get("id"):
            raise WooError(
                400, "woocommerce_rest_shop_order_refund_exists", "Cannot create existing shop_order_refund."
            )
        # WP REST argument validation against the item schema
        if "amount" in body and body["amount"] is not None and not isinstance(body["amount"], str):
            raise _invalid_param("amount", "amount is not of type string.")
        if "reason" in body and body["reason"] is not None and not isinstance(body["reason"], str):
            raise _invalid_param("reason", "reason is not of type string.")
        if "refunded_by" in body and body["refunded_by"] is not None:
            _int(body["refunded_by"], "refunded_by")
        meta_updates = body.get("meta_data")
        if meta_updates is not None and not (
            isinstance(meta_updates, list) and all(isinstance(m, dict) for m in meta_updates)
        ):
            raise _invalid_param("meta_data", "meta_data is not of type array.")
        api_refund = self._rest_bool(body, "api_refund", True)
        api_restock = self._rest_bool(body, "api_restock", True)
        reason = body.get("reason") or None
        keyed, raw = self._refund_line_args(body.get("line_items"))
        if body.get("amount") is not None:
            amount_arg: Any = body["amount"]
        else:
            computed = self._amount_from_lines(keyed, raw)
            amount_arg = str(computed) if computed is not None else None
        order = self._orders.get(_int(order_id, "order_id"))
        if order is None:
            raise WooError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
        amount = self._php_number(amount_arg) if amount_arg is not None else Decimal(0)
        # PHP 8 compares a number with a non-numeric string as strings: "0" > "" holds, "0" > "abc" does not
        if (amount is not None and amount < 0) or (amount is None and "0" > str(amount_arg)):
            raise WooError(
                400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero."
            )
        remaining = self._remaining_refund_amount(order)
        if amount is None or amount > remaining:
            raise WooError(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.")
        remaining_items = sum(int(i["quantity"]) for i in order["line_items"]) - sum(
            self._refunded_qty(order["id"], i["id"]) for i in order["line_items"]
        )
        now = self._now()
        refund_id = self._next_order_id  # refunds are orders of type shop_order_refund: one id sequence
        self._next_order_id += 1
        refund: dict[str, Any] = {
            "id": refund_id,
            "parent_id": order["id"],
            "date_created": _fmt(now),
            "date_created_gmt": _fmt(now),
            "amount": _money(amount),
            "reason": reason or "",
            "refunded_by": 1,  # get_current_user_id(): the API keys' user
            "refunded_payment": False,
            "meta_data": [],
            "line_items": [],
            "shipping_lines": [],
            "tax_lines": [],
            "fee_lines": [],
        }
        refund_item_count = 0
        restock: dict[int, int] = {}
        kinds = (
            ("line_items", "line_items"),
            ("shipping_lines", "shipping_lines"),
            ("fee_lines", "fee_lines"),
        )
        for kind, target in kinds:
            for item in order[kind]:
                args = (keyed or {}).get(item["id"])
                if args is None:
                    continue
                qty_number = self._php_number(args.get("qty")) if args.get("qty") is not None else Decimal(0)
                qty = int(qty_number) if qty_number is not None else 0
                refund_total = self._php_number(args.get("refund_total")) or Decimal(0)
                taxes = args.get("refund_tax") if isinstance(args.get("refund_tax"), dict) else {}
                tax_amounts = {
                    str(rate): self._php_number(value)
                    for rate, value in taxes.items()
                    if self._php_number(value) is not None
                }
                if not qty and not refund_total and not args.get("refund_tax"):
                    continue
                copy_item = copy.deepcopy(item)
                copy_item["id"] = self._item_id()
                copy_item["meta_data"] = [
                    dict(m, id=self._meta_id())
                    for m in copy_item.get("meta_data", [])
                    if m["key"] not in ("_reduced_stock", "_restock_refunded_items")
                ]
                self._set_item_meta(copy_item, "_refunded_item_id", str(item["id"]))
                copy_item["total"] = _money(-refund_total)
                tax_rows = [
                    {"id": int(rate) if rate.isdigit() else rate, "total": _money(-v), "subtotal": _money(-v)}
                    for rate, v in tax_amounts.items()
                ]
                copy_item["taxes"] = tax_rows
                copy_item["total_tax"] = _money(-sum(tax_amounts.values(), Decimal(0)))
                if kind == "line_items":
                    copy_item["subtotal"] = _money(-refund_total)
                    copy_item["subtotal_tax"] = copy_item["total_tax"]
                    copy_item["quantity"] = -qty
                    copy_item["price"] = float(refund_total / qty) if qty else 0
                    if qty:
                        restock[item["id"]] = qty
                refund[target].append(copy_item)
                refund_item_count += qty
        # update_taxes(): the refund's tax lines, one per rate its items carry
        by_rate: dict[Any, dict[str, Decimal]] = {}
        for kind in ("line_items", "shipping_lines", "fee_lines"):
            for item in refund[kind]:
                for tax in item["taxes"]:
                    entry = by_rate.setdefault(tax["id"], {"tax": Decimal(0), "shipping": Decimal(0)})
                    entry["shipping" if kind == "shipping_lines" else "tax"] += _dec(tax["total"])
        for rate_id, sums in by_rate.items():
            original = next((t for t in order["tax_lines"] if str(t.get("rate_id")) == str(rate_id)), {})
            refund["tax_lines"].append(
                {
                    "id": self._item_id(),
                    "rate_code": original.get("rate_code", ""),
                    "rate_id": rate_id,
                    "label": original.get("label", "Tax"),
                    "compound": original.get("compound", False),
                    "tax_total": _money(sums["tax"]),
                    "shipping_tax_total": _money(sums["shipping"]),
                    "rate_percent": original.get("rate_percent", 0),
                    "meta_data": [],
                }
            )
        if api_refund:
            error = self._refund_payment(order)
            if error is not None:  # the saved refund is deleted again; its id stays used
                raise WooError(500, "woocommerce_rest_cannot_create_order_refund", error)
            refund["refunded_payment"] = True
        self._refunds[refund_id] = refund
        if api_restock:  # wc_restock_refunded_items
            for item in order["line_items"]:
                qty = restock.get(item["id"])
                reduced = _int(self._item_meta(item, "_reduced_stock") or 0, "_reduced_stock")
                product = self._stock_product(item)
                if not qty or not reduced or product is None:
                    continue
                self._change_stock(product, qty)
                self._set_item_meta(item, "_reduced_stock", str(reduced - qty))
                done = _int(self._item_meta(item, "_restock_refunded_items") or 0, "_restock_refunded_items")
                self._set_item_meta(item, "_restock_refunded_items", str(done + qty))
        has_free_item = any(_dec(i["total"]) == 0 for i in order["line_items"])
        partially = (remaining - amount) > 0 or (
            bool(keyed) and has_free_item and (remaining_items - refund_item_count) > 0
        )
        if not partially:
            self._set_status(order, "refunded", now)  # woocommerce_order_fully_refunded_status
        order["date_modified"] = order["date_modified_gmt"] = _fmt(now)
        self._order_refund_summary(order)
        self._refresh_flags(order)
        self._upsert_meta(refund["meta_data"], meta_updates or [])
        self._note("order.updated", order["id"])  # woocommerce_order_refunded (and the order's save)
        return refund

    def _format_refund(self, refund: dict[str, Any]) -> dict[str, Any]:
        """A refund as the v3 refunds controller shows it."""
        out = {k: copy.deepcopy(v) for k, v in refund.items() if k != "parent_id"}
        base = f"{self.url}{WC_PREFIX}/orders/{refund['parent_id']}"
        out["_links"] = {
            "self": [{"href": f"{base}/refunds/{refund['id']}"}],
            "collection": [{"href": f"{base}/refunds"}],
            "up": [{"href": base}],
        }
        return out

    def _refund_or_404(self, order_id: str, refund_id: str) -> dict[str, Any]:
        refund = self._refunds.get(int(refund_id))
        if refund is None and int(refund_id) not in self._orders:
            raise WooError(404, "woocommerce_rest_shop_order_refund_invalid_id", "Invalid ID.")
        if int(order_id) not in self._orders:
            raise WooError(404, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
        if refund is None or refund["parent_id"] != int(order_id):
            raise WooError(404, "woocommerce_rest_invalid_order_refund_id", "Invalid order refund ID.")
        return refund

    def _r_list_refunds(self, request: Request, order_id: str) -> Response:
        items = [self._format_refund(r) for r in self._order_refunds(int(order_id))]
        for param in ("include", "exclude"):
            value = request.arg(param)
            if value:
                ids = {_int(i, param) for i in value.split(",") if i.strip()}
                items = [r for r in items if (r["id"] in ids) == (param == "include")]
        return self._paged(request, self._sort(request, items, default="date"))

    def _r_create_refund(self, request: Request, order_id: str) -> Response:
        refund = self._create_refund(order_id, self._body(request))
        # WC_REST_CRUD_Controller::create_item builds Location from the route's rest_base, regex and all
        location = f"{self.url}{WC_PREFIX}/orders/(?P<order_id>[\\d]+)/refunds/{refund['id']}"
        return Response.json(201, self._format_refund(refund), {"Location": location})

    def _r_get_refund(self, request: Request, order_id: str, id: str) -> Response:  # noqa: A002
        return Response.json(200, self._format_refund(self._refund_or_404(order_id, id)))

    def _r_delete_refund(self, request: Request, order_id: str, id: str) -> Response:  # noqa: A002
        refund = self._refund_or_404(order_id, id)
        if not self._rest_bool({"force": request.arg("force")}, "force", True):
            raise WooError(
                501,
                "woocommerce_rest_trash_not_supported",
                "The shop_order_refund does not support trashing.",
            )
        shown = self._format_refund(refund)
        del self._refunds[refund["id"]]
        order = self._orders.get(refund["parent_id"])
        if order is not None:
            self._order_refund_summary(order)
        # no webhook: refunds are excluded from order webhooks (woocommerce_delete_order_refund passes the refund)
        return Response.json(200, shown)

    # ------------------------------------------------------------------ order notes

    def _manual_author(self, body: dict[str, Any]) -> str | None:
        """The v3 orders controller's ``manual_update``: a status change attributed to the API user."""
        return self.api_user_name if self._rest_bool(body, "manual_update", False) else None

    def _add_note(
        self,
        order_id: int,
        text: str,
        *,
        customer_note: bool = False,
        author: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """WC_Order::add_order_note: a comment of type order_note (``author`` None: the store's own)."""
        note: dict[str, Any] = {
            "id": self._next_note_id,
            "order_id": order_id,
            "author": author,
            "date": _fmt(now or self._now()),
            "note": text,
            "customer_note": bool(customer_note),
        }
        self._next_note_id += 1
        self._order_notes[note["id"]] = note
        return note

    def _notes_of(self, order_id: int, type_: str = "any") -> list[dict[str, Any]]:
        """get_comments() for the order: newest first (comment_date_gmt, then comment_ID)."""
        notes = [n for n in self._order_notes.values() if n["order_id"] == order_id]
        if type_ != "any":
            notes = [n for n in notes if n["customer_note"] == (type_ == "customer")]
        return sorted(notes, key=lambda n: (n["date"], n["id"]), reverse=True)

    def _format_note(self, note: dict[str, Any]) -> dict[str, Any]:
        """A note as WC_REST_Order_Notes_Controller::prepare_item_for_response shows it."""
        order_url = f"{self.url}{WC_PREFIX}/orders/{note['order_id']}"
        return {
            "id": note["id"],
            "author": self.system_note_author if note["author"] is None else note["author"],
            "date_created": note["date"],
            "date_created_gmt": note["date"],
            "note": note["note"],
            "customer_note": note["customer_note"],
            "_links": {
                "self": [{"href": f"{order_url}/notes/{note['id']}"}],
                "collection": [{"href": f"{order_url}/notes"}],
                "up": [{"href": order_url}],
            },
        }

    def _note_order_or_404(
        self, order_id: Any, code: str = "woocommerce_rest_order_invalid_id"
    ) -> dict[str, Any]:
        try:
            order = self._orders.get(int(order_id))
        except (TypeError, ValueError):
            order = None
        if order is None:  # wc_get_order() finds no shop_order (a refund's id is a shop_order_refund)
            raise WooError(404, code, "Invalid order ID.")
        return order

    def _note_or_404(self, order_id: str, note_id: str) -> dict[str, Any]:
        order = self._note_order_or_404(order_id)
        note = self._order_notes.get(int(note_id))
        if note is None or note["order_id"] != order["id"]:
            raise WooError(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
        return note

    def _r_list_notes(self, request: Request, order_id: str) -> Response:
        raw = request.arg("type")
        type_ = "any" if raw is None else re.sub(r"[^a-z0-9_-]", "", raw.lower())  # sanitize_key
        if type_ not in NOTE_TYPES:
            raise _invalid_param("type", f"type is not one of {', '.join(NOTE_TYPES)}.")
        order = self._note_order_or_404(order_id, "woocommerce_rest_shop_order_invalid_id")
        return Response.json(200, [self._format_note(n) for n in self._notes_of(order["id"], type_)])

    def _r_create_note(self, request: Request, order_id: str) -> Response:
        body = self._body(request)
        if body.get("note") is None:
            raise WooError(
                400, "rest_missing_callback_param", "Missing parameter(s): note", {"params": ["note"]}
            )
        if not isinstance(body["note"], str):
            raise _invalid_param("note", "note is not of type string.")
        customer_note = self._rest_bool(body, "customer_note", False)
        added_by_user = self._rest_bool(body, "added_by_user", False)
        if body.get("id"):
            raise WooError(400, "woocommerce_rest_shop_order_exists", "Cannot create existing shop_order.")
        order = self._note_order_or_404(order_id)
        note = self._add_note(
            order["id"],
            body["note"],
            customer_note=customer_note,
            author=self.api_user_name if added_by_user else None,  # current_user_can('edit_shop_orders')
        )
        data = self._format_note(note)
        return Response.json(201, data, {"Location": data["_links"]["self"][0]["href"]})

    def _r_get_note(self, request: Request, order_id: str, id: str) -> Response:  # noqa: A002
        return Response.json(200, self._format_note(self._note_or_404(order_id, id)))

    def _r_delete_note(self, request: Request, order_id: str, id: str) -> Response:  # noqa: A002
        if not self._rest_bool({"force": request.arg("force")}, "force", False):
            raise WooError(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        note = self._note_or_404(order_id, id)
        del self._order_notes[note["id"]]  # wc_delete_order_note
        return Response.json(200, self._format_note(note))

    # ------------------------------------------------------------------ shipment tracking

    @staticmethod
    def _tracking_items(order: dict[str, Any]) -> list[dict[str, Any]]:
        meta = next((m for m in order["meta_data"] if m["key"] == TRACKING_META_KEY), None)
        return list(meta["value"]) if meta and isinstance(meta["value"], list) else []

    def _store_tracking_items(self, order: dict[str, Any], items: list[dict[str, Any]]) -> None:
        self._upsert_meta(order["meta_data"], [{"key": TRACKING_META_KEY, "value": items}])
        order["date_modified"] = order["date_modified_gmt"] = _fmt(self._now())
        self._note("order.updated", order["id"])  # the extension saves the order: woocommerce_update_order

    def _format_tracking(self, order: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        number = item["tracking_number"]
        postcode = order["shipping"]["postcode"] or order["billing"]["postcode"]
        country = order["shipping"]["country"] or order["billing"]["country"]
        provider, link_format = "", ""
        if item.get("custom_tracking_provider"):
            provider, link_format = item["custom_tracking_provider"], item.get("custom_tracking_link") or ""
        else:
            found = _provider_by_slug(item.get("tracking_provider") or "")
            if found:
                provider, link_format = found
        link = (
            (
                link_format.replace("%1$s", number)
                .replace("%2$s", postcode.replace(" ", ""))
                .replace("%3$s", country)
            )
            if link_format
            else ""
        )
        shipped = (
            datetime.fromtimestamp(int(item["date_shipped"]), UTC).strftime("%Y-%m-%d")
            if str(item.get("date_shipped") or "").isdigit()
            else ""
        )
        href = f"{self.url}{ST_PREFIX}/orders/{order['id']}/shipment-trackings"
        return {
            "tracking_id": item["tracking_id"],
            "tracking_provider": provider,
            "tracking_link": link,
            "tracking_number": number,
            "date_shipped": shipped,
            "_links": {
                "self": [{"href": f"{href}/{item['tracking_id']}"}],
                "collection": [{"href": href}],
                "up": [{"href": f"{self.url}{WC_PREFIX}/orders/{order['id']}"}],
            },
        }

    def _add_tracking(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        number = str(body.get("tracking_number") or "").strip()
        if not number:
            raise WooError(
                400,
                "rest_missing_callback_param",
                "Missing parameter(s): tracking_number",
                {"params": ["tracking_number"]},
            )
        custom = str(body.get("custom_tracking_provider") or "").strip()
        provider = str(body.get("tracking_provider") or "").strip()
        if not custom and not provider:
            raise WooError(
                400,
                "woocommerce_rest_shipment_tracking_missing_provider",
                "Either tracking_provider or custom_tracking_provider is required.",
            )
        if not custom and _provider_by_slug(sanitize_title(provider)) is None:
            custom = provider  # an unknown carrier is kept as a custom provider
        shipped_raw = body.get("date_shipped")
        if shipped_raw in (None, ""):
            shipped = self._now().replace(hour=0, minute=0, second=0)
        elif str(shipped_raw).isdigit():
            shipped = datetime.fromtimestamp(int(shipped_raw), UTC).replace(tzinfo=None)
        else:
            try:
                shipped = datetime.fromisoformat(str(shipped_raw)[:10])
            except ValueError:
                raise _invalid_param("date_shipped", "date_shipped must be a date (YYYY-MM-DD).") from None
        item = {
            "tracking_provider": "" if custom else sanitize_title(provider),
            "custom_tracking_provider": custom,
            "custom_tracking_link": str(body.get("custom_tracking_link") or "") if custom else "",
            "tracking_number": number,
            "date_shipped": str(int(shipped.replace(tzinfo=UTC).timestamp())),
            "tracking_id": secrets.token_hex(16),
        }
        self._store_tracking_items(order, self._tracking_items(order) + [item])
        return self._format_tracking(order, item)

    def _tracking_or_404(self, order: dict[str, Any], tracking_id: str) -> dict[str, Any]:
        item = next((t for t in self._tracking_items(order) if t["tracking_id"] == tracking_id), None)
        if item is None:
            raise WooError(404, "woocommerce_rest_shipment_tracking_invalid_id", "Invalid tracking ID.")
        return item

    def _r_list_trackings(self, request: Request, id: str) -> Response:
        order = self._order_or_404(id)
        return Response.json(200, [self._format_tracking(order, t) for t in self._tracking_items(order)])

    def _r_create_tracking(self, request: Request, id: str) -> Response:
        order = self._order_or_404(id)
        created = self._add_tracking(order, self._body(request))
        return Response.json(201, created, {"Location": created["_links"]["self"][0]["href"]})

    def _r_get_tracking(self, request: Request, id: str, tracking: str) -> Response:
        order = self._order_or_404(id)
        return Response.json(200, self._format_tracking(order, self._tracking_or_404(order, tracking)))

    def _r_delete_tracking(self, request: Request, id: str, tracking: str) -> Response:
        order = self._order_or_404(id)
        item = self._tracking_or_404(order, tracking)
        answer = self._format_tracking(order, item)
        self._store_tracking_items(order, [t for t in self._tracking_items(order) if t is not item])
        return Response.json(200, answer)

    def _r_providers(self, request: Request, id: str | None = None) -> Response:
        if id is not None:
            self._order_or_404(id)
        return Response.json(200, copy.deepcopy(PROVIDERS))

    # ------------------------------------------------------------------ webhooks: events and delivery

    @contextlib.contextmanager
    def _action(self) -> Iterator[None]:
        """One request or Python API call: its events are queued when it ends (as WooCommerce queues
        them at the end of the request), one per topic and order."""
        with self.lock:
            self._action_depth += 1
            try:
                yield
            finally:
                self._action_depth -= 1
                if self._action_depth == 0 and self._pending_events:
                    events, self._pending_events = self._pending_events, []
                    self._flush_events(events)

    def _note(self, topic: str, order_id: int) -> None:
        self._pending_events.append((topic, order_id))
        if self._action_depth == 0:
            events, self._pending_events = self._pending_events, []
            self._flush_events(events)

    def _flush_events(self, events: list[tuple[str, int]]) -> None:
        seen: set[tuple[str, int]] = set()
        for topic, order_id in events:
            if (topic, order_id) in seen:
                continue
            seen.add((topic, order_id))
            for webhook in list(self._webhooks.values()):
                if webhook["status"] == "active" and webhook["topic"] == topic:
                    self._queue_delivery(webhook, order_id)

    def _queue_delivery(self, webhook: dict[str, Any], resource_id: int) -> Delivery:
        wid = webhook["id"]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": WEBHOOK_USER_AGENT,
            "X-WC-Webhook-Source": f"{self.url}/",
            "X-WC-Webhook-Topic": webhook["topic"],
            "X-WC-Webhook-Resource": webhook["resource"],
            "X-WC-Webhook-Event": webhook["event"],
            "X-WC-Webhook-ID": str(wid),
        }

        def build() -> tuple[bytes, dict[str, str]] | None:
            # WC_Webhook::deliver builds the payload when the queued action runs, with the secret then
            with self.lock:
                current = self._webhooks.get(wid)
                if current is None:
                    return None
                if current["event"] == "deleted":
                    payload: Any = {"id": resource_id}
                elif resource_id in self._orders:
                    payload = copy.deepcopy(self._orders[resource_id])
                else:
                    payload = {
                        "code": "woocommerce_rest_shop_order_invalid_id",
                        "message": "Invalid ID.",
                        "data": {"status": 404},
                    }
                body = wp_json_encode(payload)
                return body, {
                    "X-WC-Webhook-Signature": sign(current["secret"], body),
                    "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),
                }

        return self.webhooks.submit(
            Delivery(
                kind="event",
                topic=webhook["topic"],
                url=webhook["delivery_url"],
                headers=headers,
                subscription_id=wid,
                timeout=float(self.webhook_timeout),
                is_success=lambda status: (
                    200 <= status < 303
                ),  # 2xx, 301 and 302, as WC_Webhook::log_delivery
                build=build,
                on_result=self._on_webhook_result,
                coalesce_key=(wid, resource_id),
            )
        )

    def _on_webhook_result(self, delivery: Delivery, entry: dict[str, Any]) -> None:
        """WC_Webhook::log_delivery / failed_delivery: a success resets the failure count; a failure
        when the count is already above ``max_webhook_delivery_failures`` disables the webhook,
        otherwise it counts one more."""
        with self.lock:
            webhook = self._webhooks.get(delivery.subscription_id)
            if webhook is None:
                return
            if entry["ok"]:
                webhook["failure_count"] = 0
            elif webhook["failure_count"] > self.max_webhook_delivery_failures:
                webhook["status"] = "disabled"
                entry["webhook_disabled"] = True
            else:
                webhook["failure_count"] += 1
            entry["failure_count"] = webhook["failure_count"]

    def _ping(self, webhook: dict[str, Any]) -> Delivery:
        """WC_Webhook::deliver_ping: an unsigned form POST ``webhook_id=N``, sent on creation."""
        delivery = self.webhooks.submit(
            Delivery(
                kind="ping",
                topic=webhook["topic"],
                url=webhook["delivery_url"],
                body=f"webhook_id={webhook['id']}".encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": WEBHOOK_USER_AGENT,
                },
                subscription_id=webhook["id"],
                timeout=WEBHOOK_PING_TIMEOUT,
                is_success=lambda status: status == 200,
            )
        )
        pending = getattr(self._pings, "pending", None)
        if pending is None:
            pending = self._pings.pending = []
        pending.append(delivery)
        return delivery

    def _wait_for_pings(self) -> None:
        """Real WooCommerce pings before it answers the create: wait for the ping (outside the lock),
        unless deliveries are paused."""
        pending = getattr(self._pings, "pending", None) or []
        self._pings.pending = []
        for delivery in pending:
            if not self.webhooks.paused:
                delivery.done.wait(delivery.timeout + 1.0)

    # ------------------------------------------------------------------ webhooks: the REST resource

    @staticmethod
    def valid_topic(topic: str) -> bool:
        """wc_is_webhook_valid_topic: ``action.woocommerce_*`` / ``action.wc_*`` or resource.event."""
        if topic.startswith(("action.woocommerce_", "action.wc_")):
            return True
        resource, _, event = topic.partition(".")
        return resource in WEBHOOK_RESOURCES and event in WEBHOOK_EVENTS

    @staticmethod
    def _valid_url(url: Any) -> bool:
        return bool(re.fullmatch(r"https?://[^\s/?#]+[^\s]*", str(url or ""), flags=re.IGNORECASE))

    def _set_topic(self, webhook: dict[str, Any], topic: str) -> None:
        topic = topic.strip().lower()
        resource, _, event = topic.partition(".")
        webhook.update(
            topic=topic,
            resource=resource,
            event=event,
            hooks=[event] if resource == "action" else list(WEBHOOK_TOPIC_HOOKS.get(topic, [])),
        )

    def _webhook_json(self, webhook: dict[str, Any]) -> dict[str, Any]:
        """WC_REST_Webhooks_V2_Controller::prepare_item_for_response (the secret is never returned)."""
        href = f"{self.url}{WC_PREFIX}/webhooks"
        return {
            "id": webhook["id"],
            "name": webhook["name"],
            "status": webhook["status"],
            "topic": webhook["topic"],
            "resource": webhook["resource"],
            "event": webhook["event"],
            "hooks": list(webhook["hooks"]),
            "delivery_url": webhook["delivery_url"],
            "date_created": webhook["date_created"],
            "date_created_gmt": webhook["date_created"],
            "date_modified": webhook["date_modified"],
            "date_modified_gmt": webhook["date_modified"],
            "_links": {
                "self": [{"href": f"{href}/{webhook['id']}"}],
                "collection": [{"href": href}],
            },
        }

    def _webhook_or_error(self, wid: Any, status: int = 400) -> dict[str, Any]:
        webhook = self._webhooks.get(int(wid))
        if webhook is None:
            message = "ID is invalid." if status == 400 else "Invalid ID."
            raise WooError(status, "woocommerce_rest_shop_webhook_invalid_id", message)
        return webhook

    def _create_webhook(self, body: dict[str, Any], default_secret: str | None = None) -> dict[str, Any]:
        missing = [k for k in ("topic", "delivery_url") if k not in body]
        if missing:
            raise WooError(
                400,
                "rest_missing_callback_param",
                f"Missing parameter(s): {', '.join(missing)}",
                {"params": missing},
            )
        if "status" in body and body["status"] not in WEBHOOK_STATUSES:
            raise _invalid_param("status", f"status is not one of {', '.join(WEBHOOK_STATUSES)}.")
        if body.get("id"):
            raise WooError(
                400, "woocommerce_rest_shop_webhook_exists", "Cannot create existing shop_webhook."
            )
        topic = str(body.get("topic") or "")
        if not topic or not self.valid_topic(topic.lower()):
            raise WooError(
                400,
                "woocommerce_rest_shop_webhook_invalid_topic",
                "Webhook topic is required and must be valid.",
            )
        if not self._valid_url(body.get("delivery_url")):
            raise WooError(
                400,
                "woocommerce_rest_shop_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            )
        now = self._now()
        wid = self._next_webhook_id
        self._next_webhook_id += 1
        webhook: dict[str, Any] = {
            "id": wid,
            "name": str(body.get("name") or f"Webhook created on {now.strftime('%b %d, %Y @ %I:%M %p')}"),
            # create_item sets 'active' whatever the request says (the post status is always publish)
            "status": "active",
            "delivery_url": str(body["delivery_url"]),
            "secret": str(
                body.get("secret")
                or default_secret
                or "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(50))
            ),
            "failure_count": 0,
            "api_version": 3,
            "pending_delivery": True,
            "date_created": _fmt(now),
            "date_modified": _fmt(now),
        }
        self._set_topic(webhook, topic)
        self._webhooks[wid] = webhook
        self._ping(webhook)
        return webhook

    def _update_webhook(self, webhook: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        if "status" in body and body["status"] not in WEBHOOK_STATUSES:
            raise _invalid_param("status", f"status is not one of {', '.join(WEBHOOK_STATUSES)}.")
        if body.get("topic"):
            if not self.valid_topic(str(body["topic"]).lower()):
                raise WooError(
                    400, "woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic must be valid."
                )
        if body.get("delivery_url") and not self._valid_url(body["delivery_url"]):
            raise WooError(
                400,
                "woocommerce_rest_shop_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            )
        if body.get("topic"):
            self._set_topic(webhook, str(body["topic"]))
        if body.get("delivery_url"):
            webhook["delivery_url"] = str(body["delivery_url"])
        if body.get("secret"):
            webhook["secret"] = str(body["secret"])
        if body.get("status"):
            webhook["status"] = body["status"]  # the failure count is left as it is, as set_status does
        if body.get("name"):
            webhook["name"] = str(body["name"])
        webhook["date_modified"] = _fmt(self._now())
        return webhook

    def _r_list_webhooks(self, request: Request) -> Response:
        items = list(self._webhooks.values())
        status = request.arg("status", "all") or "all"
        if status not in ("all",) + WEBHOOK_STATUSES:
            raise _invalid_param("status", f"status is not one of all, {', '.join(WEBHOOK_STATUSES)}.")
        if status != "all":
            items = [w for w in items if w["status"] == status]
        for param in ("include", "exclude"):
            value = request.arg(param)
            if value:
                ids = {_int(i, param) for i in value.split(",") if i.strip()}
                items = [w for w in items if (w["id"] in ids) == (param == "include")]
        search = (request.arg("search") or "").strip().lower()
        if search:
            items = [w for w in items if search in w["name"].lower()]
        for param, newer in (("after", True), ("before", False)):
            value = request.arg(param)
            if value:
                bound = _parse_param_date(param, value)
                items = [
                    w
                    for w in items
                    if (
                        _parse_wc_date(w["date_created"]) > bound
                        if newer
                        else _parse_wc_date(w["date_created"]) < bound
                    )
                ]
        orderby = request.arg("orderby", "date") or "date"
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "date": lambda w: (w["date_created"], w["id"]),
            "id": lambda w: w["id"],
            "title": lambda w: (w["name"], w["id"]),
        }
        if orderby not in keys:
            raise _invalid_param("orderby", "orderby is not one of date, id, title.")
        direction = (request.arg("order", "desc") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise _invalid_param("order", "order is not one of asc, desc.")
        items.sort(key=keys[orderby], reverse=direction == "desc")
        return self._paged(request, [self._webhook_json(w) for w in items])

    def _r_create_webhook(self, request: Request) -> Response:
        webhook = self._create_webhook(self._body(request))
        data = self._webhook_json(webhook)
        return Response.json(201, data, {"Location": data["_links"]["self"][0]["href"]})

    def _r_get_webhook(self, request: Request, id: str) -> Response:
        return Response.json(200, self._webhook_json(self._webhook_or_error(id)))

    def _r_update_webhook(self, request: Request, id: str) -> Response:
        webhook = self._webhook_or_error(id)
        return Response.json(200, self._webhook_json(self._update_webhook(webhook, self._body(request))))

    def _r_delete_webhook(self, request: Request, id: str) -> Response:
        if not _bool(request.arg("force", "false")):
            raise WooError(501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
        webhook = self._webhook_or_error(id, status=404)
        del self._webhooks[webhook["id"]]
        return Response.json(200, self._webhook_json(webhook))

    # ------------------------------------------------------------------ webhooks: python API

    def subscribe(self, topic: str, url: str, **options: Any) -> dict[str, Any]:
        """Create a webhook as ``POST /webhooks`` does (``options``: ``secret``, ``name``); the
        secret defaults to ``store.webhook_secret``. Sends the activation ping and waits for it
        (unless paused). Returns the webhook as the REST API shows it (no secret); raises WooError."""
        try:
            with self._action():
                webhook = self._create_webhook(
                    {**options, "topic": topic, "delivery_url": url}, self.webhook_secret
                )
                return self._webhook_json(webhook)
        finally:
            self._wait_for_pings()

    def unsubscribe(self, ident: Any) -> bool:
        with self.lock:
            return self._webhooks.pop(int(ident), None) is not None

    def subscriptions(self) -> list[dict[str, Any]]:
        """Copies of the webhooks with every field, ``secret`` and ``failure_count`` included."""
        with self.lock:
            return copy.deepcopy([self._webhooks[k] for k in sorted(self._webhooks)])

    def get_webhook(self, ident: Any) -> dict[str, Any] | None:
        with self.lock:
            webhook = self._webhooks.get(int(ident))
            return copy.deepcopy(webhook) if webhook is not None else None

    def update_webhook(self, ident: Any, **fields: Any) -> dict[str, Any]:
        """Change a webhook as ``PUT /webhooks/{id}`` does; returns the full copy."""
        with self.lock:
            webhook = self._update_webhook(self._webhook_or_error(ident), fields)
            return copy.deepcopy(webhook)


def wp_json_encode(payload: Any) -> bytes:
    """The body WooCommerce sends: PHP's json_encode (compact, ``\\/`` for ``/``, ``\\uXXXX`` for non-ASCII)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode("ascii")
