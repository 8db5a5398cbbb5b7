"""The contract every magnifier (classical or learned) implements."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..registry import Option


class Magnifier:
    """Turns frames into a motion signal and back; the engine does everything else.

    The engine converts dtype and colour, runs the temporal filter (or the static/dynamic
    difference) element-wise along dim 0 of each signal tensor, and chunks and tiles the
    work. A magnifier only implements :meth:`encode` and :meth:`decode`.

    Parameters
    ----------
    alpha : float
        Magnification in the project convention (Wu et al. Eq. 1): the output displacement is
        ``(1 + alpha)`` times the input displacement. Subclasses convert internally.
    device : torch.device
        Where tensors live.
    **options
        Validated method options (see :attr:`options`).
    """

    name: ClassVar[str] = ""
    color_space: ClassVar[str] = "yiq"  # "yiq": engine hands YIQ; "rgb": engine hands RGB
    luma_only: ClassVar[bool] = False  # True: only channel 0 is passed to encode/decode
    options: ClassVar[dict[str, Option]] = {}
    #: How the magnifier treats the frame edges, so that tiles at an edge can do the same:
    #: "reflect" (local padding: a tile's window is clamped at the frame edge) or "periodic"
    #: (the frame wraps around, as with FFTs over the whole frame: the halo wraps too).
    boundary: ClassVar[str] = "reflect"

    def __init__(self, alpha: float, device: torch.device, **options: Any) -> None:
        self.alpha = float(alpha)
        self.device = torch.device(device)
        self.opts = options

    @property
    def spatial_support(self) -> int:
        """Halo in pixels a spatial tile needs so that tiling leaves no seams."""
        return 32

    @property
    def work_factor(self) -> float:
        """Transient memory of encoding and decoding one chunk, in multiples of its signal."""
        return 3.0

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        """Options that pin what the magnifier derives from the size of the frames it gets.

        A tile of a frame must build the same pyramid as the whole frame (same depth), so the
        tiled paths resolve automatic choices such as ``levels=0`` for the full ``(height,
        width)`` frame once and give every tile these options (and :attr:`spatial_support`
        is then computed for them).

        Parameters
        ----------
        height, width : int
            Size of the whole frame.

        Returns
        -------
        dict
            Option names and values (empty: nothing depends on the frame size).
        """
        return {}

    def reset(self) -> None:
        """Forget per-clip state (reference frames). Called at the start of a clip or tile."""

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        """Motion signal of N consecutive frames.

        Parameters
        ----------
        x : Tensor, shape (N, C, H, W), float32

        Returns
        -------
        signal : list of Tensor, each of shape (N, ...)
            What the temporal filter acts on, element-wise along dim 0.
        ctx : Any
            Whatever :meth:`decode` needs besides the filtered signal.
        """
        raise NotImplementedError

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        """Magnified frames from the frames, their filtered motion signal and ``ctx``.

        Returns
        -------
        Tensor, shape (N, C, H, W), float32
        """
        raise NotImplementedError
