"""Daemon worker threads for blocking work, shared by the scrape (blocking collectors) and the KPI engine
(database drivers), and the bridge that awaits such work from the event loop.

Daemon threads, unlike asyncio's default executor: a call stuck in the kernel (statvfs on a dead NFS
server) or in a driver must not keep the exporter from exiting on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DaemonWorkers:
    """A pool of daemon threads. A thread is added whenever none is idle, so a stuck one never blocks
    others."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._tasks.put(task)
        if spawn:
            threading.Thread(target=self._work, name="pulse-collector", daemon=True).start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                task()
            except Exception:
                log.exception("collector worker task failed")
            with self._lock:
                self._idle += 1


WORKERS = DaemonWorkers()


async def run_in_daemon_thread(function: Callable[[], T]) -> T:
    """Run a blocking call in one of WORKERS and await its result (or exception) on the event loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def work() -> None:
        try:
            result = function()
        except BaseException as err:  # handed to the awaiting task
            settle = functools.partial(_set_exception, future, err)
        else:
            settle = functools.partial(_set_result, future, result)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (exporter shutting down)
            loop.call_soon_threadsafe(settle)

    WORKERS.submit(work)
    return await future


def _set_result(future: asyncio.Future[T], result: T) -> None:
    if not future.done():  # the awaiting task was cancelled
        future.set_result(result)


def _set_exception(future: asyncio.Future[T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
