"""A cached SKU mapping is trusted for ``ORDERSYNC_SKU_CACHE_HOURS`` only: older ones are looked up again, so a
product archived at the vendor (or a second live product with the SKU) is noticed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from ordersync.ledger import Ledger, now, sku_map
from ordersync.models import Mapping
from ordersync.orders.push import sku_cache_age


def test_old_mappings_are_left_out_with_a_max_age(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.migrate()
    ledger.store_mappings("Acme", [Mapping(sku="A", product_id="p1"), Mapping(sku="B", product_id="p2")])
    with ledger.engine.begin() as conn:
        conn.execute(
            update(sku_map).where(sku_map.c.sku == "A").values(refreshed_at=now() - timedelta(hours=30))
        )
    assert set(ledger.cached_mappings("Acme", ["A", "B"])) == {"A", "B"}
    assert set(ledger.cached_mappings("Acme", ["A", "B"], max_age=timedelta(hours=24))) == {"B"}
    ledger.store_mappings("Acme", [Mapping(sku="A", product_id="p3")])  # looked up again: fresh
    fresh = ledger.cached_mappings("Acme", ["A"], max_age=timedelta(hours=24))
    assert fresh["A"].product_id == "p3"


def test_the_cache_age_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("ORDERSYNC_SKU_CACHE_HOURS", raising=False)
    assert sku_cache_age() == timedelta(hours=24)
    monkeypatch.setenv("ORDERSYNC_SKU_CACHE_HOURS", "2.5")
    assert sku_cache_age() == timedelta(hours=2.5)
    monkeypatch.setenv("ORDERSYNC_SKU_CACHE_HOURS", "soon")
    assert sku_cache_age() == timedelta(hours=24)
