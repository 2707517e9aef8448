"""Helpers shared by the test layers (imported, unlike conftest.py)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POSTGRES_URL = os.environ.get("ORDERSYNC_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def fresh_postgres_url() -> str:
    """A schema of its own in the test database, so tests never see each other's rows."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


class Receiver:
    """A real HTTP endpoint on loopback that records every JSON document POSTed to it."""

    def __init__(self) -> None:
        received = self.received = []
        self.fail_next = 0  # answer this many POSTs with HTTP 503 (a receiver that is down)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    self.send_response(503)
                else:
                    received.append({"headers": dict(self.headers), "body": json.loads(body)})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ordersync"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict]:
        return [alert for post in self.received for alert in post["body"]["alerts"]]
