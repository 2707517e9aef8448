"""The merchant's order backlog read with one Shopify bulk query operation instead of page by page.

Why: paging ``orders`` costs about 12.9 points per order against a bucket that restores 100 points/s
(Standard plan), so a 10,000-order backlog takes over 20 minutes of ``fetch_orders`` (docs/benchmarks.md).
A bulk operation runs outside the rate limit: ordersync pays for the mutation and the polls only.

The flow (GraphQL Admin API 2026-10): ``bulkOperationRunQuery`` with ``MerchantOrdersBulk`` (the fields
the paged ``MerchantOrders`` reads) and the paged read's search written in; ``bulkOperation(id:)`` polled
with a backoff (not ``currentBulkOperation``: deprecated, and with 5 concurrent operations per shop the
current one need not be ours); the JSONL file at ``url`` streamed into a scratch SQLite file. Each line is
one object: an order, or a line item or shipping line with ``__parentId`` (its order's id; ``__typename``
says which). With ``groupObjects: false``
children need not follow their parent (Shopify may write every order first, then the lines), so the file
cannot be turned into orders in one pass with bounded memory; the scratch file holds it on disk (orders
in file order, i.e. oldest change first, and the lines indexed by parent), and the orders are then read
back one at a time with their lines. Memory stays at one order plus a write buffer whatever the size.

Anything but a complete file raises :class:`BulkUnavailable` before a single order is handed out, and the
caller reads the backlog page by page instead: ``OPERATION_IN_PROGRESS`` (the shop's 5 bulk query
operations are busy), ``FAILED`` (its ``partialDataUrl`` is not used: with ungrouped output a prefix of
the file may hold orders whose lines come later, so partial data cannot be trusted to be whole orders),
``CANCELED`` (by someone else), ``EXPIRED`` or an expired download URL, and an operation that does not
finish within ``ORDERSYNC_BULK_MAX_WAIT_SECONDS`` (cancelled first). Nothing is staged before the whole
file is spooled, so a fallback never stages an order twice and the watermark only ever moves to what was
staged. ``COMPLETED`` with ``url`` null means nothing matched.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

from ordersync.platforms.http import PermanentError, TransientError
from ordersync.platforms.shopify.client import ShopifyGraphQL
from ordersync.platforms.shopify.documents import document

log = logging.getLogger("ordersync")

# Above this many changed orders a scheduled run reads them with a bulk operation. Paging costs about 13.3
# points an order: the first ~150 orders fit in a full 2,000-point bucket, every one after that waits 0.13 s
# for a 100 points/s restore (measured, docs/benchmarks.md: 1,575 changed orders paged in 152 s, 10,000 read
# in bulk in 40 s) and leaves the bucket empty for every other app of the shop. At 500 orders paging waits
# about 45 s; a bulk operation of that size is a few seconds of run time plus its polls. Below it, the
# operation's fixed latency (start-up, polls, the download) and one of the shop's 5 bulk query slots are not
# worth it, and a routine 5-minute tick stays below it. ORDERSYNC_BULK_THRESHOLD overrides it.
BULK_THRESHOLD = 500
THRESHOLD_ENV = "ORDERSYNC_BULK_THRESHOLD"
POLL_FIRST_SECONDS = 0.25  # first poll; each next one 1.5 x later, up to POLL_MAX_SECONDS
POLL_FACTOR = 1.5
POLL_MAX_SECONDS = 10.0
MAX_WAIT_SECONDS = (
    3 * 3600.0
)  # then the operation is cancelled and the backlog paged (ORDERSYNC_BULK_MAX_WAIT_SECONDS)
DOWNLOAD_ATTEMPTS = 3
SPOOL_BATCH = 1_000  # JSONL objects per SQLite write
IN_PROGRESS = ("CREATED", "RUNNING", "CANCELING")


def bulk_threshold() -> int:
    """``ORDERSYNC_BULK_THRESHOLD`` or :data:`BULK_THRESHOLD`."""
    raw = os.environ.get(THRESHOLD_ENV, "").strip()
    return int(raw) if raw else BULK_THRESHOLD


def max_wait() -> float:
    raw = os.environ.get("ORDERSYNC_BULK_MAX_WAIT_SECONDS", "").strip()
    return float(raw) if raw else MAX_WAIT_SECONDS


class BulkUnavailable(Exception):
    """The bulk operation gave no complete file; the message says why. Nothing has been handed out."""


def inner_query(search: str) -> str:
    """``MerchantOrdersBulk`` with ``search`` written in as a string literal (bulk queries take no
    variables)."""
    text = "".join(
        line for line in document("MerchantOrdersBulk").splitlines(keepends=True) if not line.startswith("#")
    )
    declaration = "($query: String)"
    assert declaration in text and text.count("$query") == 2, "MerchantOrdersBulk changed shape"
    text = text.replace(declaration, "", 1)
    return text.replace("$query", json.dumps(search, ensure_ascii=True), 1)


class Spool:
    """A bulk operation's JSONL objects on disk (SQLite in a temporary directory), read back as orders
    with their line items in the file's order of orders, whatever order the lines came in."""

    def __init__(self, directory: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ordersync-bulk-", dir=directory)
        self.path = Path(self._dir.name) / "bulk.sqlite"
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE roots (seq INTEGER PRIMARY KEY, id TEXT, body TEXT NOT NULL)")
        self.db.execute("CREATE TABLE children (seq INTEGER PRIMARY KEY, parent TEXT NOT NULL, body TEXT)")
        self._roots: list[tuple[int, str | None, str]] = []
        self._children: list[tuple[int, str, str]] = []
        self._seq = 0
        self.roots = 0
        self.children = 0
        self._indexed = False

    def clear(self) -> None:
        self._roots.clear()
        self._children.clear()
        self.db.execute("DELETE FROM roots")
        self.db.execute("DELETE FROM children")
        self._seq = 0
        self.roots = self.children = 0

    def add(self, line: str | bytes) -> None:
        """One JSONL line (blank lines are skipped)."""
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        if not text.strip():
            return
        obj = json.loads(text)
        self._seq += 1
        parent = obj.pop("__parentId", None) if isinstance(obj, dict) else None
        if parent is None:
            self._roots.append((self._seq, obj.get("id") if isinstance(obj, dict) else None, text))
            self.roots += 1
        else:
            self._children.append((self._seq, str(parent), json.dumps(obj)))
            self.children += 1
        if len(self._roots) + len(self._children) >= SPOOL_BATCH:
            self._flush()

    def extend(self, lines: Iterable[str | bytes]) -> Spool:
        for line in lines:
            self.add(line)
        return self

    def _flush(self) -> None:
        if self._roots:
            self.db.executemany("INSERT INTO roots VALUES (?, ?, ?)", self._roots)
            self._roots.clear()
        if self._children:
            self.db.executemany("INSERT INTO children VALUES (?, ?, ?)", self._children)
            self._children.clear()
        self.db.commit()

    def _index(self) -> None:
        self._flush()
        if not self._indexed:
            self.db.execute("CREATE INDEX children_parent ON children (parent, seq)")
            self.db.execute("CREATE INDEX roots_id ON roots (id)")
            self._indexed = True

    def orders(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Each root object (an order) with its children (line items and shipping lines) in file order."""
        self._index()
        for (body,) in self.db.execute("SELECT body FROM roots ORDER BY seq"):
            node = json.loads(body)
            lines = [
                json.loads(child)
                for (child,) in self.db.execute(
                    "SELECT body FROM children WHERE parent = ? ORDER BY seq", (node.get("id"),)
                )
            ]
            yield node, lines

    def orphans(self) -> int:
        """Children whose parent is not in the file (a truncated or inconsistent file)."""
        self._index()
        row = self.db.execute(
            "SELECT COUNT(*) FROM children c WHERE NOT EXISTS (SELECT 1 FROM roots r WHERE r.id = c.parent)"
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            self._dir.cleanup()


class BulkOrders:
    """One bulk query operation of the merchant's orders, from the mutation to the spooled file."""

    def __init__(
        self,
        gql: ShopifyGraphQL,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gql = gql
        self.sleep = sleep or gql.sleep
        self.clock = clock

    def run(self, search: str, backlog: str) -> Spool:
        """Start, wait for and download the operation for ``search``; ``backlog`` describes it in the log
        (``"12,345 orders since …"``). Raises :class:`BulkUnavailable` when there is no complete file."""
        started = self.clock()
        op_id = self._start(search, backlog)
        op = self._wait(op_id, started)
        seconds = self.clock() - started
        spool = Spool()
        try:
            if op.get("url") is None:
                log.info("bulk operation %s COMPLETED with no file: nothing matched (%.0f s)", op_id, seconds)
                return spool
            self._download(op_id, op["url"], spool)
            orphans = spool.orphans()
            if orphans:
                raise BulkUnavailable(
                    f"bulk operation {op_id}: {orphans} line item(s) name an order the file does not hold"
                )
            log.info(
                "bulk operation COMPLETED: %s orders, %s lines in %.0f s (%s)",
                f"{spool.roots:,}",
                f"{spool.children:,}",
                self.clock() - started,
                op_id,
            )
            return spool
        except BaseException:
            spool.close()
            raise

    def _start(self, search: str, backlog: str) -> str:
        result = self.gql.execute("MerchantBulkRun", {"query": inner_query(search)}, mutation=True)[
            "bulkOperationRunQuery"
        ]
        errors = result.get("userErrors") or []
        if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
            raise BulkUnavailable(
                "the shop's bulk query operations are all in use (OPERATION_IN_PROGRESS: "
                + "; ".join(e.get("message") or "" for e in errors)
                + ")"
            )
        if any(e.get("code") == "LIMIT_REACHED" for e in errors):
            raise BulkUnavailable(
                "the shop has reached a limit on bulk operations (LIMIT_REACHED: "
                + "; ".join(e.get("message") or "" for e in errors)
                + ")"
            )
        if errors or not result.get("bulkOperation"):
            raise BulkUnavailable(
                "bulkOperationRunQuery refused the query: "
                + ("; ".join(e.get("message") or "" for e in errors) or "no operation returned")
            )
        op_id = str(result["bulkOperation"]["id"])
        log.info("backlog of %s: reading it with a Shopify bulk operation (%s)", backlog, op_id)
        return op_id

    def _wait(self, op_id: str, started: float) -> dict[str, Any]:
        delay = POLL_FIRST_SECONDS
        limit = max_wait()
        while True:
            self.sleep(delay)
            op = self.gql.execute("MerchantBulkOperation", {"id": op_id})["bulkOperation"]
            if op is None:
                raise BulkUnavailable(f"bulk operation {op_id} no longer exists")
            status = op.get("status")
            elapsed = self.clock() - started
            if status == "COMPLETED":
                return op
            if status in IN_PROGRESS:
                log.info(
                    "bulk operation %s %s: %s object(s), %s order(s) written after %.0f s",
                    op_id,
                    status,
                    f"{int(op.get('objectCount') or 0):,}",
                    f"{int(op.get('rootObjectCount') or 0):,}",
                    elapsed,
                )
                if elapsed >= limit:
                    self._cancel(op_id)
                    raise BulkUnavailable(
                        f"bulk operation {op_id} still {status} after {elapsed:.0f} s "
                        f"(ORDERSYNC_BULK_MAX_WAIT_SECONDS={limit:.0f}); cancelled"
                    )
                delay = min(delay * POLL_FACTOR, POLL_MAX_SECONDS)
                continue
            if status == "FAILED":
                partial = " (its partial data is not used: it may hold orders without all their lines)"
                raise BulkUnavailable(
                    f"bulk operation {op_id} FAILED ({op.get('errorCode') or 'no error code'}) after "
                    f"{int(op.get('objectCount') or 0):,} object(s)"
                    + (partial if op.get("partialDataUrl") else "")
                )
            raise BulkUnavailable(f"bulk operation {op_id} is {status}: it gave no file to read")

    def _cancel(self, op_id: str) -> None:
        try:
            self.gql.execute("MerchantBulkCancel", {"id": op_id}, mutation=True)
        except (PermanentError, TransientError) as exc:
            log.warning("could not cancel bulk operation %s: %s", op_id, exc)

    def _download(self, op_id: str, url: str, spool: Spool) -> None:
        """Stream the file into ``spool``. A signed storage URL: no access token is sent with it."""
        policy = self.gql.http.policy
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            spool.clear()
            try:
                with requests.get(url, stream=True, timeout=self.gql.http.timeout) as response:
                    if response.status_code in (400, 403, 404, 410):
                        raise BulkUnavailable(
                            f"bulk operation {op_id}: its file is gone (HTTP {response.status_code}: "
                            f"{response.text[:120]!r}); the URL expired or was revoked"
                        )
                    if response.status_code >= 500 or response.status_code == 429:
                        raise requests.ConnectionError(f"HTTP {response.status_code}")
                    response.raise_for_status()
                    for line in response.iter_lines():
                        spool.add(line)
                return
            except requests.RequestException as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise TransientError(
                        f"{self.gql.label}: bulk operation {op_id}: downloading its file failed "
                        f"{attempt} times: {exc}"
                    ) from exc
                wait = policy.delay(attempt)
                log.info("bulk operation %s: download failed (%s); retrying in %.1f s", op_id, exc, wait)
                self.sleep(wait)
