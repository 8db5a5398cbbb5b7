"""Small Qt helpers shared by the dock views."""

from __future__ import annotations

from typing import Any


def is_alive(widget: Any) -> bool:
    """False once Qt has deleted ``widget``'s C++ object (e.g. its dock was closed)."""
    try:
        from qtpy import sip  # PyQt

        return not sip.isdeleted(widget)
    except ImportError:  # PySide
        import shiboken6

        return shiboken6.isValid(widget)
