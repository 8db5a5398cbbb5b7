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


def worker_error_message(exc: BaseException, what: str) -> str:
    """One line for a failed worker: a VMMError's own message, else the error's type and
    message (the traceback goes to the log, not to the user)."""
    import logging

    from napari_vmm._napari.jobs import WorkerError
    from napari_vmm.core.errors import VMMError

    if isinstance(exc, WorkerError):
        exc = exc.original
    if isinstance(exc, VMMError):
        return str(exc)
    logging.getLogger(__name__).error("napari-vmm: %s failed", what, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


class CalibrationFields:
    """Keeps a pixel-size box and a unit box in step with ``model.calibration``, both ways.

    An edit of either box sets the model's calibration
    (:meth:`~napari_vmm._napari.model.WidgetsModel.calibration_for`); a calibration set
    elsewhere (another dock, two points) shows in the boxes.
    """

    def __init__(self, owner: Any, model: Any, size_box: Any, unit_box: Any,
                 default_unit: str) -> None:
        self.owner, self.model = owner, model
        self.size_box, self.unit_box, self.default_unit = size_box, unit_box, default_unit
        self._syncing = False
        size_box.changed.connect(self.push)
        unit_box.changed.connect(self.push)
        model.events.calibration.connect(self.show)
        self.show()

    def current(self) -> Any:
        """The calibration the boxes say (the model's own when it says the same)."""
        return self.model.calibration_for(self.size_box.value,
                                          self.unit_box.value.strip() or self.default_unit)

    def push(self, *_: Any) -> None:
        if not self._syncing:
            self.model.calibration = self.current()

    def set(self, size: float, unit: str) -> None:
        """Show ``size`` ``unit`` and make it the model's calibration (one change)."""
        self._syncing = True
        try:
            self.size_box.value, self.unit_box.value = size, unit
        finally:
            self._syncing = False
        self.push()

    def show(self, _event: Any = None) -> None:
        cal = self.model.calibration
        if cal is None or not is_alive(self.owner):
            return
        self._syncing = True
        try:
            self.size_box.value = cal.size if cal.calibrated else 0.0
            if cal.calibrated:
                self.unit_box.value = cal.unit
        finally:
            self._syncing = False
