"""Micro-batching: inputs of requests that arrive within a few milliseconds of each other run as one batch.

A request puts its inputs on an asyncio queue and awaits its future. One collector task takes the first
waiting request, then keeps taking requests until the batch holds ``max_batch`` inputs or ``max_wait_ms`` has
passed since it began, runs the batch in a single worker thread (the model is used by one batch at a time; it
parallelises inside with its own threads) and hands each request its slice of the results. Under light load a
request waits at most ``max_wait_ms``; under heavy load batches fill at once and the wait costs nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future


class MicroBatcher:
    """Runs ``fn(items) -> results`` (one result per item, in order) on batches gathered across requests."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], *, max_batch: int = 32, max_wait_ms: float = 5.0):
        self.fn, self.max_batch, self.max_wait = fn, max(1, max_batch), max(0.0, max_wait_ms) / 1000
        self.queue: asyncio.Queue[_Job] | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="graftwork-model")
        self.task: asyncio.Task | None = None
        self.batches = 0  # how many batches ran (for /info and tests)

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list[Any]) -> list[Any]:
        """The results for ``items``, computed in a batch shared with concurrent requests."""
        assert self.queue is not None, "MicroBatcher.start() was not called"
        job = _Job(items, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _collect(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            size = len(jobs[0].items)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                left = deadline - time.monotonic()
                try:
                    job = await asyncio.wait_for(self.queue.get(), left) if left > 0 else self.queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                jobs.append(job)
                size += len(job.items)
            items = [x for j in jobs for x in j.items]
            try:
                results = await loop.run_in_executor(self.pool, self.fn, items)
            except Exception as e:  # the batch failed as a whole: every request in it gets the error
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self.batches += 1
            start = 0
            for j in jobs:
                if not j.future.done():
                    j.future.set_result(results[start:start + len(j.items)])
                start += len(j.items)
