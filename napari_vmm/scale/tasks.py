"""Task runners: compute Dask tasks with progress and cancellation, locally or on a cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import Cancelled, VMMError

_runner = threading.local()  # .stop: the Event of the local pool running this thread's task


def bind_stop(stop: threading.Event) -> None:
    """Initializer of a local runner's threads: their tasks stop once ``stop`` is set."""
    _runner.stop = stop


def check_stop(*_: Any) -> None:
    """Raise :class:`Cancelled` in a task whose local runner was closed (a cancel); called
    per engine chunk and before each Dask task, so a cancel need not wait for a block."""
    stop = getattr(_runner, "stop", None)
    if stop is not None and stop.is_set():
        raise Cancelled("cancelled")


def task_result(future: Any) -> Any:
    """``future.result()``; a worker lost while running the task becomes one VMMError."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise VMMError(
            f"a Dask worker died while running a task ({exc.task}, lost {exc.allowed_failures + 1}"
            " times): it was killed or ran out of memory; lower --memory-budget or give the "
            "workers more memory") from None


def run_tasks(tasks: Sequence[Any], client: Any = None,
              progress: Callable[[int, int], Any] | None = None) -> list[Any]:
    """Compute delayed ``tasks``, reporting ``progress(done, total)`` as each one finishes.

    On a ``distributed.Client`` the progress comes from the futures (``as_completed``); a
    ``KeyboardInterrupt`` or a progress callback returning ``False`` cancels the futures that
    are still pending on the cluster. Without a client the tasks run one by one on the local
    threaded scheduler.

    Returns
    -------
    list
        The task results, in order.
    """
    total = len(tasks)
    if client is None:
        import dask

        results = []
        for i, t in enumerate(tasks):
            results.append(dask.compute(t)[0])
            if progress is not None and progress(i + 1, total) is False:
                raise Cancelled("cancelled")
        return results
    from distributed import as_completed

    futures = client.compute(list(tasks))
    try:
        for done, fut in enumerate(as_completed(futures), start=1):
            if fut.status == "error":
                task_result(fut)  # raise the task's exception here
            if progress is not None and progress(done, total) is False:
                raise Cancelled("cancelled")
        return [task_result(f) for f in futures]
    except BaseException:
        client.cancel(futures)
        raise
