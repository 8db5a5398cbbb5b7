"""The one exception type front ends turn into a single clear message."""


class VMMError(ValueError):
    """Bad input or bad parameters: the message names the problem.

    Front ends (``vmm``, ``vmm-filter``, napari) print or notify ``str(err)`` and never show a
    traceback for this type.
    """


class Cancelled(RuntimeError):
    """Raised inside the engine when a progress callback asks to stop."""


class VMMWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. a truncated input).

    Front ends print it as one ``warning:`` line (napari: a notification).
    """
