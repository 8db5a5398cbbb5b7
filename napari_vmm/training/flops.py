"""A small multiply-accumulate counter for conv / linear layers (forward hooks, no packages).

Convention (digest §0.3, documented in docs/thesis_models.md):

- only ``nn.Conv2d``, ``nn.ConvTranspose2d`` and ``nn.Linear`` are counted, one MAC per
  weight use: a conv contributes ``H_out · W_out · C_out · (C_in / groups) · k_h · k_w`` per
  sample, a transposed conv ``H_in · W_in · C_in · (C_out / groups) · k_h · k_w``, a linear
  layer ``in · out`` per row; biases, activations, norms, pooling, FFTs and element-wise
  operations are not counted;
- a model is measured on its full two-frame forward (both encoder streams run);
- GFLOPs = 2 × GMACs, which is what the thesis (S3) and FD4MM (S1) numbers appear to be
  (they report 268.6 G for Oh et al. at 720×720; our counter gives 293.9 G for the project's
  oh2018, i.e. 147 GMAC, which includes its extra fuse conv).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn


def count_macs(model: nn.Module, run: Callable[[], object]) -> int:
    """Multiply-accumulates of the conv / linear layers of ``model`` during ``run()``.

    Parameters
    ----------
    model : nn.Module
        The network whose layers are hooked.
    run : callable
        Runs one forward pass (e.g. ``lambda: net(xa, xb, 10.0)``); its batch should be 1.

    Returns
    -------
    int
        MACs summed over every call of every hooked layer (divided by the batch size).
    """
    total = [0]

    def hook(mod: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        x = inp[0]
        n = max(1, x.shape[0])
        if isinstance(mod, nn.ConvTranspose2d):
            kh, kw = mod.kernel_size
            total[0] += (x.numel() // n) * (mod.out_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            total[0] += (out.numel() // n) * (mod.in_channels // mod.groups) * kh * kw
        elif isinstance(mod, nn.Linear):
            total[0] += (x.numel() // n // mod.in_features) * mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.inference_mode():
            run()
    finally:
        for h in handles:
            h.remove()
    return total[0]


def pair_gflops(model: nn.Module, size: int = 720, amp: float = 10.0,
                probe: int = 144) -> float:
    """GFLOPs (2 × GMAC) of ``model``'s two-frame forward on a ``size``×``size`` RGB pair.

    Conv MACs are proportional to the number of pixels, so the forward runs at ``probe`` px
    (``size`` and ``probe`` multiples of every stride, here of 8) and is scaled by
    (size / probe)²; the result is exact for fully convolutional networks.
    """
    model = model.eval()
    x = torch.zeros(1, 3, probe, probe)
    y = torch.full((1, 3, probe, probe), 0.1)
    macs = count_macs(model, lambda: model(x, y, amp))
    return 2 * macs * (size / probe) ** 2 / 1e9


__all__ = ["count_macs", "pair_gflops"]
