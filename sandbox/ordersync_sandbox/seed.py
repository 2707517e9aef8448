"""Demo data: a merchant Shopify store, vendor "Acme Tools" on Shopify and vendor "Bolt Supply" on
WooCommerce, with merchant orders that exercise the interesting cases, plus the Airflow
connection / variable environment that points ordersync at them.

Each store has a webhook secret, so the connections' ``extra`` carry ``webhook_secret``: the Shopify
stores sign every delivery with theirs, and Bolt's is the secret to register webhooks with (what
``store.subscribe`` uses by default).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from . import Sandbox

MERCHANT = {
    "name": "merchant",
    "token": "shpat_demo_merchant",
    "webhook_secret": "shpss_demo_merchant",
    "conn_id": "ordersync_merchant",
}
ACME = {
    "name": "acme",
    "token": "shpat_demo_acme",
    "webhook_secret": "shpss_demo_acme",
    "vendor": "Acme Tools",
    "conn_id": "ordersync_vendor_acme",
}
BOLT = {
    "name": "bolt",
    "key": "ck_demo_bolt",
    "secret": "cs_demo_bolt",
    "webhook_secret": "wc_webhook_demo_bolt",
    "vendor": "Bolt Supply",
    "conn_id": "ordersync_vendor_bolt",
}
ZED_VENDOR = "Zed Goods"  # sold by the merchant, not configured as a vendor

VENDORS_VARIABLE_ENV = "AIRFLOW_VAR_ORDERSYNC_VENDORS"

# merchant catalogue: sku -> (title, variant title, vendor, price)
MERCHANT_ITEMS = {
    "ACME-HAMMER": ("Claw hammer", None, ACME["vendor"], "24.00"),
    "ACME-WRENCH-S": ("Adjustable wrench", "Small", ACME["vendor"], "18.00"),
    "ACME-WRENCH-L": ("Adjustable wrench", "Large", ACME["vendor"], "18.00"),
    "ACME-SAW-X": ("Panel saw X", None, ACME["vendor"], "32.00"),  # not in Acme's own store
    "BOLT-M6-100": ("Hex bolts M6 (100)", None, BOLT["vendor"], "9.50"),
    "BOLT-DRILL-18V": ("Cordless drill", "18V", BOLT["vendor"], "129.00"),
    "ZED-LAMP": ("Desk lamp", None, ZED_VENDOR, "45.00"),
}


def create_stores(sb: Sandbox) -> dict[str, Any]:
    """The three stores, empty, with the environment that points ordersync at them."""
    merchant = sb.add_shopify(
        MERCHANT["name"], token=MERCHANT["token"], webhook_secret=MERCHANT["webhook_secret"]
    )
    acme = sb.add_shopify(ACME["name"], token=ACME["token"], webhook_secret=ACME["webhook_secret"])
    bolt = sb.add_woo(
        BOLT["name"], key=BOLT["key"], secret=BOLT["secret"], webhook_secret=BOLT["webhook_secret"]
    )
    vendors = [
        {
            "vendor": ACME["vendor"],
            "platform": "shopify",
            "conn_id": ACME["conn_id"],
            "location_id": None,
            "enabled": True,
        },
        {
            "vendor": BOLT["vendor"],
            "platform": "woocommerce",
            "conn_id": BOLT["conn_id"],
            "location_id": None,
            "enabled": True,
        },
    ]
    env = dict(
        [
            sb.connection_env(merchant, MERCHANT["conn_id"]),
            sb.connection_env(acme, ACME["conn_id"]),
            sb.connection_env(bolt, BOLT["conn_id"]),
        ]
    )
    env[VENDORS_VARIABLE_ENV] = json.dumps(vendors)
    return {"stores": {"merchant": merchant, "acme": acme, "bolt": bolt}, "vendors": vendors, "env": env}


def _vendor_catalogues(acme: Any, bolt: Any) -> None:
    acme.add_product("Claw hammer", sku="ACME-HAMMER", price="24.00", vendor=ACME["vendor"])
    acme.add_product(
        "Adjustable wrench",
        vendor=ACME["vendor"],
        variants=[
            {"sku": "ACME-WRENCH-S", "price": "18.00", "title": "Small"},
            {"sku": "ACME-WRENCH-L", "price": "18.00", "title": "Large"},
        ],
    )
    bolt.add_product("Hex bolts M6 (100)", "BOLT-M6-100", "9.50")
    drill = bolt.add_product("Cordless drill", "BOLT-DRILL", "129.00", type="variable")
    bolt.add_variation(
        drill["id"], "BOLT-DRILL-18V", "129.00", attributes=[{"name": "Voltage", "option": "18V"}]
    )


def _merchant_catalogue(merchant: Any) -> dict[str, str]:
    """Adds the merchant's products; returns sku -> variant GID."""
    by_title: dict[str, list[tuple[str, str | None, str, str]]] = {}
    for sku, (title, variant, vendor, price) in MERCHANT_ITEMS.items():
        by_title.setdefault(title, []).append((sku, variant, vendor, price))
    variant_ids: dict[str, str] = {}
    for title, entries in by_title.items():
        vendor = entries[0][2]
        if len(entries) == 1 and entries[0][1] is None:
            product = merchant.add_product(title, sku=entries[0][0], price=entries[0][3], vendor=vendor)
        else:
            product = merchant.add_product(
                title,
                vendor=vendor,
                variants=[
                    {"sku": sku, "price": price, "title": variant or "Default Title"}
                    for sku, variant, _, price in entries
                ],
            )
        for variant in product["variants"]:
            variant_ids[variant["sku"]] = variant["id"]
    return variant_ids


def _line(sku: str, quantity: int, variant_ids: dict[str, str], currency: str = "USD") -> dict[str, Any]:
    title, variant, vendor, price = MERCHANT_ITEMS[sku]
    line: dict[str, Any] = {
        "title": title,
        "sku": sku,
        "vendor": vendor,
        "quantity": quantity,
        "originalUnitPriceSet": {"shopMoney": {"amount": price, "currencyCode": currency}},
    }
    if variant:
        line["variantTitle"] = variant
    if sku in variant_ids:
        line["variantId"] = variant_ids[sku]
    return line


def _customer(first: str, last: str, email: str, phone: str) -> dict[str, Any]:
    return {"firstName": first, "lastName": last, "email": email, "phone": phone}


def _address(
    first: str,
    last: str,
    address1: str,
    city: str,
    province: str,
    zip_code: str,
    phone: str,
    company: str | None = None,
    address2: str | None = None,
) -> dict[str, Any]:
    return {
        "firstName": first,
        "lastName": last,
        "company": company,
        "address1": address1,
        "address2": address2,
        "city": city,
        "provinceCode": province,
        "zip": zip_code,
        "countryCodeV2": "US",
        "phone": phone,
    }


def _merchant_orders(merchant: Any, variant_ids: dict[str, str]) -> list[dict[str, Any]]:
    people = {
        "ada": (
            "Ada",
            "Lovelace",
            "ada@example.com",
            "+15555550101",
            _address(
                "Ada",
                "Lovelace",
                "12 Analytical Way",
                "Springfield",
                "IL",
                "62701",
                "+15555550101",
                company="Engines Ltd",
                address2="Suite 3",
            ),
        ),
        "grace": (
            "Grace",
            "Hopper",
            "grace@example.com",
            "+15555550102",
            _address("Grace", "Hopper", "44 Compiler Rd", "Arlington", "VA", "22201", "+15555550102"),
        ),
        "alan": (
            "Alan",
            "Turing",
            "alan@example.com",
            "+15555550103",
            _address("Alan", "Turing", "7 Enigma St", "Boston", "MA", "02108", "+15555550103"),
        ),
        "katherine": (
            "Katherine",
            "Johnson",
            "katherine@example.com",
            "+15555550104",
            _address("Katherine", "Johnson", "9 Orbit Ave", "Hampton", "VA", "23666", "+15555550104"),
        ),
        "edsger": (
            "Edsger",
            "Dijkstra",
            "edsger@example.com",
            "+15555550105",
            _address("Edsger", "Dijkstra", "1 Shortest Path", "Austin", "TX", "78701", "+15555550105"),
        ),
    }
    specs = [
        (
            "#1001",
            "PAID",
            "ada",
            "Please deliver before noon",
            ["vip"],
            [("ACME-HAMMER", 1), ("ACME-WRENCH-S", 2), ("BOLT-M6-100", 3), ("BOLT-DRILL-18V", 1)],
        ),
        ("#1002", "PAID", "grace", None, [], [("ACME-WRENCH-L", 1)]),
        ("#1003", "PENDING", "alan", None, [], [("BOLT-M6-100", 2)]),
        ("#1004", "PAID", "katherine", None, [], [("ACME-HAMMER", 1), ("ACME-SAW-X", 1)]),
        ("#1005", "PAID", "edsger", "Gift wrap the lamp", ["gift"], [("BOLT-DRILL-18V", 1), ("ZED-LAMP", 1)]),
    ]
    orders = []
    for name, financial, who, note, tags, lines in specs:
        first, last, email, phone, address = people[who]
        orders.append(
            merchant.add_order(
                name=name,
                displayFinancialStatus=financial,
                email=email,
                phone=phone,
                customer=_customer(first, last, email, phone),
                shippingAddress=dict(address),
                billingAddress=dict(address),
                note=note,
                tags=tags,
                currencyCode="USD",
                lineItems=[_line(sku, qty, variant_ids) for sku, qty in lines],
            )
        )
    return orders


def seed_demo(sb: Sandbox) -> dict[str, Any]:
    """Create and fill the demo stores. Returns ``{"stores", "vendors", "env", "orders"}``."""
    info = create_stores(sb)
    stores = info["stores"]
    _vendor_catalogues(stores["acme"], stores["bolt"])
    variant_ids = _merchant_catalogue(stores["merchant"])
    info["orders"] = [o["name"] for o in _merchant_orders(stores["merchant"], variant_ids)]
    return info


def env_lines(env: dict[str, str]) -> list[str]:
    """``KEY='VALUE'`` lines, single-quoted for a POSIX shell (``set -a; . FILE; set +a``)."""
    return [f"{key}='" + value.replace("'", "'\"'\"'") + "'" for key, value in env.items()]
