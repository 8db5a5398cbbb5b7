"""Task runners: compute Dask tasks with progress and cancellation, locally or on a cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import Cancelled, VMMError


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
