"""Function-preserving growth of trained weights: a light thesis model widened into its
base variant, and new inputs of a layer started at zero.

LNVMM M1 and HMN M1 are their light variants (M2) with every feature width three times as
large (C = 24 against 8) and the same layers. Net2WiderNet (Chen, Goodfellow and Shlens,
ICLR 2016) turns a trained narrow network into a wider one that computes the same function:
each channel of a widened feature map is a copy of the narrow channel ``j mod C``, and each
weight that reads a widened map is divided by the number of copies, so every sum is the
narrow network's. A little noise breaks the copies' symmetry (copies with equal weights get
equal gradients and would stay copies), and training then uses the extra width.

It lets ``vmm train lnvmm --init RUN/export/lnvmm_light.pt`` start the base model at what the
light one has learned, instead of at the copy-the-input level: the base models cost 8-9 times
the light ones per sample (docs/thesis_models.md), too much for this project's CPU to train
them from scratch. The provenance records the widening (``init_from``).

An architecture switch that only adds inputs to a layer (σ-θ Net's "riesz-pyramid" form
feeds its fusion conv two more resolutions) keeps the old function when the weights that
read the new inputs start at zero (:func:`grow_inputs`).
"""

from __future__ import annotations

import torch

#: base model -> the light variant it can be widened from
LIGHT_OF = {"lnvmm": "lnvmm_light", "hmn": "hmn_light"}


def _input_parts(model: str, name: str, narrow_in: int) -> tuple[int, ...]:
    """The narrow sizes of the feature maps a weight's input concatenates (one part if it
    reads a single map)."""
    if model == "lnvmm" and name.startswith(("share1.", "share2.", "app.0.")):
        return (narrow_in // 2, narrow_in // 2)        # concat(own stream, other stream)
    if model == "hmn" and ".gates." in name:
        return (narrow_in // 2, narrow_in // 2)        # concat(W_n, F)
    if model == "hmn" and name.startswith("merge."):   # concat(X_m, up(X_m+1)): c·m, c·(m+1)
        level = int(name.split(".")[1]) + 1
        c = narrow_in // (2 * level + 1)
        return (c * level, c * (level + 1))
    return (narrow_in,)


def _channel_map(narrow_parts: tuple[int, ...], wide: int) -> torch.Tensor:
    """For each wide channel, the narrow channel it copies (parts widened alike)."""
    narrow = sum(narrow_parts)
    if wide == narrow:
        return torch.arange(wide)
    if wide % narrow:
        raise ValueError(f"cannot widen {narrow} channels to {wide}")
    k = wide // narrow
    index, offset = [], 0
    for part in narrow_parts:
        index += [offset + q % part for q in range(k * part)]
        offset += part
    return torch.tensor(index)


def widen_state_dict(model: str, narrow: dict[str, torch.Tensor],
                     wide: dict[str, torch.Tensor], noise: float = 0.01,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """The wide state dict ``wide`` (its shapes) filled from the trained ``narrow`` one.

    Parameters
    ----------
    model : str
        The wide model, a key of :data:`LIGHT_OF`.
    narrow, wide : dict of str to Tensor
        State dicts of the light model (trained) and of the base model (only its shapes are
        used). Conv weights are (out, in, kh, kw); norm parameters and statistics (C,).
    noise : float
        Standard deviation of the symmetry-breaking noise added to each widened conv weight,
        relative to that weight's standard deviation (0: an exact copy of the function).
    seed : int
        Seed of the noise.

    Returns
    -------
    dict of str to Tensor
        The widened state dict, float32.
    """
    if model not in LIGHT_OF:
        raise ValueError(f"{model} has no light variant to widen from")
    if set(narrow) != set(wide):
        raise ValueError(f"the {LIGHT_OF[model]} and {model} state dicts name different tensors")
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape_of in wide.items():
        w = narrow[name]
        if w.ndim == 0:  # e.g. a norm's batch counter
            out[name] = w.clone()
            continue
        rows = _channel_map((w.shape[0],), shape_of.shape[0])
        x = w.float()[rows]
        if w.ndim >= 2:
            cols = _channel_map(_input_parts(model, name, w.shape[1]), shape_of.shape[1])
            x = x[:, cols] * (w.shape[1] / shape_of.shape[1])
            if noise and x.shape != w.shape:
                x = x + noise * x.std() * torch.randn(x.shape, generator=gen)
        out[name] = x.contiguous()
    return out


def grow_inputs(trained: dict[str, torch.Tensor],
                target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``trained`` with each weight that reads more inputs in ``target`` padded with zeros.

    A weight (out, in, ...) of ``trained`` whose ``target`` shape differs only by a larger
    ``in`` keeps its trained inputs first and reads the new ones with zero weights, so the
    network computes what it computed before. Every other tensor is returned as it is.
    """
    out = dict(trained)
    for name, w in trained.items():
        want = target.get(name)
        if want is None or w.shape == want.shape or w.ndim < 2:
            continue
        if (w.shape[0], *w.shape[2:]) == (want.shape[0], *want.shape[2:]) \
                and want.shape[1] > w.shape[1]:
            grown = torch.zeros(want.shape, dtype=w.dtype)
            grown[:, :w.shape[1]] = w
            out[name] = grown
    return out
