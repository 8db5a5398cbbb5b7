"""The one progress report of the command-line front ends: a tqdm bar on stderr.

A :class:`Progress` is the engine's callback (``progress(done, total) -> None``: absolute
counts, as :func:`napari_vmm.magnify` and the Dask runners call it) and also takes increments
(``update(n)``, as a decoding loop reports frames). The bar is created on first use, so a
command that fails before any work prints nothing.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A tqdm bar on stderr fed by ``progress(done, total)`` calls or ``update(n)``.

    Parameters
    ----------
    desc : str
        The bar's label (a command or file name).
    total : int, optional
        Units of work; ``progress(done, total)`` calls may set or change it.
    unit : str
        What is counted (``frame``, ``task``, ``file``).
    quiet : bool
        No bar at all (``-q``).
    force : bool
        Show the bar even when stderr is not a terminal (``vmm-filter -v``), redrawn at most
        every 5 s there; otherwise it shows on a terminal only.
    leave : bool
        Keep the last state of the bar on screen when closed.
    """

    def __init__(self, desc: str, total: int | None = None, *, unit: str = "frame",
                 quiet: bool = False, force: bool = False, leave: bool = False) -> None:
        self.desc, self.total, self.unit, self.leave = desc, total, unit, leave
        self.disable: bool | None = True if quiet else (False if force else None)
        self._bar: Any = None
        self._closed = False

    def _get(self) -> Any:
        if self._bar is None:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self._bar = tqdm(total=self.total, unit=self.unit, desc=self.desc, file=sys.stderr,
                             disable=self.disable, leave=self.leave,
                             mininterval=0.5 if tty else 5.0)
        return self._bar

    def __call__(self, done: int, total: int | None = None) -> None:
        """Report ``done`` units finished out of ``total`` (None: unchanged or unknown)."""
        bar = self._get()
        if total is not None and total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def update(self, n: int = 1) -> None:
        """Report ``n`` more units finished."""
        self._get().update(n)

    def close(self) -> None:
        """Finish the bar (a no-op when it never showed)."""
        if self._bar is not None and not self._closed:
            self._bar.close()
        self._closed = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
