"""How one vendor's orders go to its store at once, and when they stop doing so."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class Fanout:
    """Runs one vendor's steps on the pool while the store answers cleanly.

    The first step goes alone: its answer tells the client what the request costs and what the bucket holds,
    so the rest fan out already paced (and the store sees the batch start in order). Once a step fails or a
    create's outcome was unknown (found by its marker afterwards), the remaining steps run one at a time, in
    order: a struggling store gets no burst of concurrent retries, and a marker lookup has no other creates
    racing it. Each step returns whether the store answered cleanly and never raises."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.serial = threading.Lock()
        self.degraded = threading.Event()

    def _one(self, step: Callable[[], bool]) -> None:
        if self.degraded.is_set():
            with self.serial:
                clean = step()
        else:
            clean = step()
        if not clean:
            self.degraded.set()

    def run(self, steps: list[Callable[[], bool]]) -> None:
        """Every step; returns when all are done."""
        if not steps:
            return
        self._one(steps[0])
        if self.degraded.is_set() or len(steps) == 1:
            for step in steps[1:]:
                self._one(step)
            return
        for future in [self.pool.submit(self._one, step) for step in steps[1:]]:
            future.result()
