"""The one output policy and the one atomic write of the project.

Every output (videos, stacks, Zarr stores, weights, figures, settings, tables) is written under
a temporary name beside its destination and renamed into place only on success, so a crash, a
full disk or Ctrl-C never leaves a partial file. :func:`check_output_path` is the policy every
front end applies before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..core.errors import VMMError

#: errno values that mean "the output cannot be written" (read-only, full, over a size limit).
_WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES,
                 errno.EPERM}


def check_output_path(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = (),
                      overwrite: bool = True) -> Path:
    """The one output policy of every command, checked before any work starts.

    Refuses an output that is one of the inputs in ``protect``, is a folder, lies in a missing
    or unwritable folder (probed by creating a file there), or exists while ``overwrite`` is
    False (the front ends' ``-y``/``--overwrite``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    VMMError
        With one clear message saying which rule is broken.
    """
    dest = Path(path)
    for src in protect:
        if dest.exists() and Path(src).exists() and os.path.samefile(dest, src):
            raise VMMError(f"refusing to overwrite the input {src}")
    folder = dest.parent
    if not folder.exists():
        raise VMMError(f"cannot write {dest}: folder {folder} does not exist")
    if not folder.is_dir():
        raise VMMError(f"cannot write {dest}: {folder} is not a folder")
    if dest.exists() and not overwrite:
        raise VMMError(f"{dest} exists; give -y/--overwrite to replace it")
    if dest.is_dir() and dest.suffix.lower() != ".zarr":
        raise VMMError(f"cannot write {dest}: it is a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".vmm-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VMMError(f"cannot write {dest}: folder {folder} is not writable "
                       f"({exc.strerror or exc})") from None
    return dest


def check_outputs(paths: Iterable[str | os.PathLike | None],
                  protect: Iterable[str | os.PathLike] = (), overwrite: bool = True) -> None:
    """:func:`check_output_path` for each of ``paths`` (None skipped); two equal paths are
    refused too (e.g. ``--compare`` naming the output)."""
    protect = list(protect)
    seen: dict[str, str] = {}
    for path in paths:
        if path is None:
            continue
        key = os.path.abspath(path)
        if key in seen:
            raise VMMError(f"{path} is given for two outputs")
        seen[key] = str(path)
        check_output_path(path, protect, overwrite)


def _write_error(dest: Path, exc: BaseException) -> VMMError | None:
    """A VMMError for an OSError that means the output cannot be written, else None."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return VMMError(f"cannot write {dest}: {exc.strerror or exc}; nothing was written")
    return None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = (),
                  overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    Refuses to write over any file in ``protect`` (the inputs), and over an existing ``path``
    unless ``overwrite``. A full disk, a file-size limit or a read-only folder becomes one
    VMMError; the temporary file is removed on any error, so no partial output is left.
    """
    dest = check_output_path(path, protect, overwrite)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    except OSError as exc:
        raise (_write_error(dest, exc) or exc) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual mode
    try:
        yield tmp
        _rename(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        err = _write_error(dest, exc)
        if err is not None:
            raise err from None
        raise


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = (),
                      overwrite: bool = True, background_cleanup: bool = False) -> Iterator[str]:
    """Like :func:`atomic_output` for a folder output (``.zarr``): a temporary folder beside
    ``path`` replaces ``path`` only on success.

    On failure the temporary folder is deleted; with ``background_cleanup`` (a long-lived
    process such as napari, where a cancel must return at once) a thread deletes it, since
    deleting a large partial store takes seconds.

    An existing ``path`` is first renamed aside and deleted only once the new folder is in
    place (renamed back if that fails), so no moment leaves neither the old nor the new output.
    """
    dest = check_output_path(path, protect, overwrite)
    try:
        tmp = tempfile.mkdtemp(prefix=f".{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    except OSError as exc:
        raise (_write_error(dest, exc) or exc) from None
    try:
        yield tmp
        _swap_in(Path(tmp), dest)
    except BaseException as exc:
        if background_cleanup:
            threading.Thread(target=_remove_tree, args=(Path(tmp),),
                             name="vmm-remove-partial-output").start()
        else:
            _remove_tree(Path(tmp))
        err = _write_error(dest, exc)
        if err is not None:
            raise err from None
        raise


def _remove_tree(path: Path, settle_s: float = 1.0) -> None:
    """Delete a temporary folder that a cancelled writer (a Dask task still finishing its
    block) may be filling at the same moment: delete again until it stays gone for a while."""
    deadline = time.monotonic() + settle_s
    while True:
        shutil.rmtree(path, ignore_errors=True)
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
        if not path.exists():
            time.sleep(0.1)
            if not path.exists():
                return


def _swap_in(new: Path, dest: Path) -> None:
    """Rename the folder ``new`` to ``dest``, moving an existing ``dest`` aside first and
    deleting it only after ``new`` is in place."""
    if not dest.exists():
        _rename(new, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.stem}.old-", dir=dest.parent))
    _rename(dest, old)  # replaces the empty placeholder folder
    try:
        _rename(new, dest)
    except BaseException:
        _rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _rename(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """The project's one rename into place (atomic on one filesystem)."""
    os.replace(src, dest)
