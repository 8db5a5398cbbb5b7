"""The Dask cluster: ``local:N`` (a LocalCluster of processes) or a running scheduler."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ..core.errors import VMMError


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM while worker processes start (yields the list of signals that
    came): interrupted mid-spawn, a worker prints a traceback and the cluster cannot close."""
    import signal
    import threading

    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    old = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in old.items():
            if handler is not None:
                signal.signal(sig, handler)


def get_client(cluster: str | None):
    """A ``distributed.Client`` for ``local:N`` (a new LocalCluster of N worker processes,
    one thread each) or ``tcp://host:port`` (an existing scheduler); None for None."""
    if not cluster:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise VMMError("--cluster needs dask.distributed: pip install 'napari-vmm[dask]'"
                       ) from None
    if cluster.startswith("local:") or cluster == "local":
        text = cluster.partition(":")[2] or str(os.cpu_count() or 1)
        try:
            workers = int(text)
        except ValueError:
            raise VMMError(f"--cluster local:N needs a number of workers, got {cluster!r}"
                           ) from None
        if workers < 1:
            raise VMMError(f"--cluster local:N needs N >= 1, got {workers}")
        import logging

        # CRITICAL: a worker whose scheduler went away (Ctrl-C) logs a heartbeat traceback at
        # ERROR; task errors still reach the client as exceptions
        with _signals_held() as held:
            lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(lc)
            client._vmm_owned_cluster = lc  # closed by close_client
        if held:  # Ctrl-C or SIGTERM while the workers started: stop them, then obey
            import signal

            close_client(client)
            signal.raise_signal(held[0])
        return client
    if cluster.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")):
        try:
            return Client(cluster, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise VMMError(f"cannot connect to the Dask scheduler {cluster}: {exc}") from None
    raise VMMError(f"--cluster must be local:N or tcp://host:port, got {cluster!r}")


def close_client(client: Any) -> None:
    """Close a client from :func:`get_client` (and the LocalCluster it started)."""
    if client is None:
        return
    cluster = getattr(client, "_vmm_owned_cluster", None)
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


def check_scheduler(address: str | None) -> str | None:
    """Validate a Dask scheduler setting without connecting: None for local threads.

    Parameters
    ----------
    address : str or None
        ``""`` (or None): the local threaded scheduler; ``local:N``: a ``LocalCluster`` of N
        worker processes; ``tcp://host:port`` (or ``tls://``, ...): a running scheduler.

    Returns
    -------
    str or None
        The address, stripped, or None for the local threaded scheduler.

    Raises
    ------
    VMMError
        When the text is none of these.
    """
    text = (address or "").strip()
    if not text:
        return None
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise VMMError(f"Dask scheduler local:N needs a number of workers N >= 1, got "
                           f"{text!r}")
        return text
    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("tcp", "tls", "ws", "wss", "inproc", "ucx") and rest:
        return text
    raise VMMError(f"Dask scheduler must be empty (local threads), local:N or "
                   f"tcp://host:port, got {text!r}")
