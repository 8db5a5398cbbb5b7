"""Writing text and CSV outputs atomically (shared by ROIs, tables and deflection shapes)."""

from __future__ import annotations

import csv
import io
import os
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) under a temporary name beside ``path``, then rename it."""
    from ...io.atomic import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def rows_to_csv(rows: list[list[Any]]) -> str:
    """CSV text of ``rows`` (header first), ``\\n`` line ends."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()
