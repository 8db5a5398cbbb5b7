"""Temporal filters acting element-wise along dim 0 (time) of torch tensors.

Every filter has two entry points that give the same result where the filter is the same:

- :meth:`TemporalFilter.step` takes the next chunk ``(N, ...)`` of a stream and carries its state
  (causal filters only); memory does not depend on the clip length.
- :meth:`TemporalFilter.whole` takes the whole signal ``(T, ...)`` at once; it is the only entry
  for non-causal filters (``ideal``, zero-phase Butterworth/FIR).

Every causal filter starts a stream in the steady state of its first frame (as if that frame
had always been there), so a static clip comes out unchanged at any alpha: no start-up
transient is magnified. The band is ``(low_hz, high_hz)`` with the frame rate ``fps``.

Filters
-------
ideal        FFT over the whole clip, keeping |f| in [low, high] (gain 1 on both signs).
butterworth  band-pass of order ``order`` as second-order sections; causal (started in the
             steady state of the first frame), or zero-phase (forward-backward) on whole
             clips with ``zero_phase=True``.
fir          windowed-sinc band-pass with ``taps`` taps; causal (delay (taps-1)/2 frames), or
             zero-phase (centred) on whole clips.
iir          difference of two first-order IIR low-passes (Wadhwa et al., as in the MIT code),
             cut-offs at ``high`` and ``low``, scaled to a peak gain of 1 (the MIT code's
             peak is 0.1-0.8 of it); started on the first frame.
none         no filtering: the motion relative to the reference frame (as the static mode).
static       difference to the reference frame (mode="static").
dynamic      difference to the previous frame (mode="dynamic").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .errors import VMMError
from .params import (  # the names and checks live with the parameter model
    FILTERS,
    MODES,
    check_band,
    check_choice,
    check_order,
    fir_taps,
)


def _check_padding(frames: int, padlen: int, name: str) -> None:
    """Forward-backward filtering pads the clip by ``padlen`` frames at each end (scipy's
    default), which needs more frames than that."""
    if frames <= padlen:
        raise VMMError(f"the zero-phase {name} filter needs more than {padlen} frames; the "
                       f"clip has {frames} (use the causal filter, or a lower order/fewer taps)")


class TemporalFilter:
    """Base class: a filter over time for any number of signal tensors.

    Streaming state is kept per signal index ``key`` so one filter object serves a whole
    magnifier signal (a list of tensors).
    """

    causal = True

    def __init__(self) -> None:
        self._state: dict[int, Any] = {}

    def reset(self) -> None:
        """Forget the stream state."""
        self._state.clear()

    def get_state(self, key: int = 0) -> Any:
        """The state of stream ``key`` after the chunks so far (None before the first).

        What it holds is the filter's own business (SOS: a tensor (sections, 2, ...)); pass
        it back to :meth:`set_state` to resume the stream, e.g. in another process.
        """
        return self._state.get(key)

    def set_state(self, state: Any, key: int = 0) -> None:
        """Resume stream ``key`` from ``state`` (from :meth:`get_state`, or None to restart).

        For :class:`SOSFilter` a tensor (sections, 2, ...) of the transposed direct form II
        delays may be built directly, e.g. the state after a constant input.
        """
        if state is None:
            self._state.pop(key, None)
        else:
            self._state[key] = state

    def step(self, x: torch.Tensor, key: int = 0) -> torch.Tensor:
        """Filter the next chunk ``x`` of shape (N, ...) of stream ``key``."""
        raise VMMError(
            f"the {type(self).__name__} filter is not causal; use it on whole clips, "
            "or give a window/latency"
        )

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        """Filter a whole signal ``x`` of shape (T, ...) along dim 0."""
        saved, self._state = self._state, {}
        try:
            return self.step(x, key=0)
        finally:
            self._state = saved


class IdealFilter(TemporalFilter):
    """FFT band-pass over the whole clip (non-causal)."""

    causal = False

    def __init__(self, low: float, high: float, fps: float) -> None:
        super().__init__()
        self.low, self.high, self.fps = low, high, fps

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        freqs = torch.fft.rfftfreq(t, d=1.0 / self.fps).to(x.device)
        keep = ((freqs >= self.low) & (freqs <= self.high)).to(x.dtype)
        spec = torch.fft.rfft(x, dim=0)
        spec *= keep.reshape((-1,) + (1,) * (x.ndim - 1))
        return torch.fft.irfft(spec, n=t, dim=0)


#: Samples per block of the SOS filter's in-place update on CPU (about 1 MB of float32 per
#: tensor, so a block's state and output stay in cache across the sections).
SOS_BLOCK = 1 << 18


class SOSFilter(TemporalFilter):
    """IIR filter as second-order sections (transposed direct form II), state per stream."""

    def __init__(self, sos: np.ndarray, zero_phase: bool = False) -> None:
        super().__init__()
        from scipy.signal import sosfilt_zi

        self.sos = np.asarray(sos, dtype=np.float64)
        self.zero_phase = zero_phase
        self.causal = not zero_phase
        #: Delays (sections, 2) after a unit input held forever: the steady state.
        self.steady = sosfilt_zi(self.sos)

    def steady_state(self, x0: torch.Tensor) -> torch.Tensor:
        """State (sections, 2, ...) after the constant input ``x0`` held forever.

        A stream starts there, so that the filter does not ring (and the magnifier does not
        magnify the ringing: black/white flashing at large alpha) on its first frame.
        """
        zi = torch.as_tensor(self.steady, dtype=x0.dtype, device=x0.device)
        return zi.reshape(zi.shape + (1,) * x0.ndim) * x0

    def step(self, x: torch.Tensor, key: int = 0) -> torch.Tensor:
        if self.zero_phase:
            return super().step(x, key)
        n_sec = self.sos.shape[0]
        z = self._state.get(key)
        if z is None:  # start as if the first frame had always been there
            z = self.steady_state(x[0])
        z = z.contiguous()  # a state from set_state may be a strided view
        out = torch.empty_like(x)
        coeffs = [tuple(float(c) for c in sec) for sec in self.sos]
        last = len(coeffs) - 1
        flat_x, flat_out = x.reshape(x.shape[0], -1), out.view(x.shape[0], -1)
        flat_z = z.view(n_sec, 2, -1)
        size = flat_x.shape[1]
        block = SOS_BLOCK if x.device.type == "cpu" else size
        scratch = [flat_x.new_empty(min(block, size)) for _ in range(min(2, last))]
        # Transposed direct form II, in place, one cache-sized block of samples at a time so
        # that all sections run on it while it is in cache.
        for i in range(x.shape[0]):
            for a in range(0, size, block):
                b = min(size, a + block)
                v = flat_x[i, a:b]
                for s, (b0, b1, b2, _a0, a1, a2) in enumerate(coeffs):
                    z0, z1 = flat_z[s, 0, a:b], flat_z[s, 1, a:b]
                    y = flat_out[i, a:b] if s == last else scratch[s % 2][: b - a]
                    torch.add(z0, v, alpha=b0, out=y)  # y = b0 v + z0
                    torch.add(z1, v, alpha=b1, out=z0).add_(y, alpha=-a1)  # b1 v - a1 y + z1
                    torch.mul(v, b2, out=z1).add_(y, alpha=-a2)  # z1 = b2 v - a2 y
                    v = y
        self._state[key] = z
        return out

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        if not self.zero_phase:
            return super().whole(x)
        from scipy.signal import sosfiltfilt

        zeros = min((self.sos[:, 2] == 0).sum(), (self.sos[:, 5] == 0).sum())
        _check_padding(x.shape[0], 3 * (2 * len(self.sos) + 1 - int(zeros)), "butterworth")
        y = sosfiltfilt(self.sos, x.detach().cpu().numpy().astype(np.float64), axis=0)
        # scipy may return a view with negative strides, which torch refuses
        return torch.as_tensor(np.ascontiguousarray(y), dtype=x.dtype, device=x.device)


class FIRFilter(TemporalFilter):
    """Windowed-sinc band-pass FIR; causal ring buffer, or centred on whole clips."""

    def __init__(self, taps: np.ndarray, zero_phase: bool = False) -> None:
        super().__init__()
        self.taps = np.asarray(taps, dtype=np.float64)
        self.zero_phase = zero_phase
        self.causal = not zero_phase

    def step(self, x: torch.Tensor, key: int = 0) -> torch.Tensor:
        if self.zero_phase:
            return super().step(x, key)
        n = len(self.taps)
        hist = self._state.get(key)
        if hist is None:  # start as if the first frame had always been there
            hist = x[:1].expand((n - 1,) + tuple(x.shape[1:])).clone()
        buf = torch.cat([hist, x], dim=0)
        taps = torch.as_tensor(self.taps[::-1].copy(), dtype=x.dtype, device=x.device)
        out = torch.empty_like(x)
        for i in range(x.shape[0]):
            window = buf[i : i + n]
            out[i] = torch.tensordot(taps, window, dims=([0], [0]))
        self._state[key] = buf[-(n - 1):].clone() if n > 1 else buf[:0]
        return out

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        if not self.zero_phase:
            return super().whole(x)
        from scipy.signal import filtfilt

        _check_padding(x.shape[0], 3 * len(self.taps), "fir")
        y = filtfilt(self.taps, [1.0], x.detach().cpu().numpy().astype(np.float64), axis=0)
        return torch.as_tensor(np.ascontiguousarray(y), dtype=x.dtype, device=x.device)


class DifferenceOfIIR(TemporalFilter):
    """Difference of first-order low-passes (cut-offs ``high`` and ``low``), as in Wadhwa et al."""

    def __init__(self, low: float, high: float, fps: float) -> None:
        super().__init__()
        # r = 1 - exp(-2 pi f / fps): the exact first-order low-pass with cut-off f.
        self.r_high = 1.0 - math.exp(-2 * math.pi * high / fps)
        self.r_low = 1.0 - math.exp(-2 * math.pi * low / fps)
        # The difference of two low-passes peaks well below 1 (0.25 for 1.5-2.5 Hz at 30 fps,
        # 0.09 for 0.83-1 Hz), which the magnification lost: scale its peak to 1, as the
        # other band-passes have it.
        self.gain = 1.0 / self.peak_gain(low, high, fps)

    def response(self, freqs: np.ndarray, fps: float) -> np.ndarray:
        """Complex frequency response of the unscaled difference at ``freqs`` Hz."""
        z = np.exp(-2j * np.pi * np.asarray(freqs, dtype=np.float64) / fps)
        return sum(sign * r / (1 - (1 - r) * z)
                   for sign, r in ((1, self.r_high), (-1, self.r_low)))

    def peak_gain(self, low: float, high: float, fps: float) -> float:
        """Largest gain of the unscaled difference (it peaks inside the band)."""
        return float(np.abs(self.response(np.linspace(low, high, 512), fps)).max())

    def step(self, x: torch.Tensor, key: int = 0) -> torch.Tensor:
        state = self._state.get(key)
        if state is None:
            state = (x[0].clone(), x[0].clone())
        lp_high, lp_low = state
        out = torch.empty_like(x)
        for i in range(x.shape[0]):
            lp_high = lp_high + self.r_high * (x[i] - lp_high)
            lp_low = lp_low + self.r_low * (x[i] - lp_low)
            out[i] = (lp_high - lp_low).mul_(self.gain)
        self._state[key] = (lp_high, lp_low)
        return out


class ReferenceDifference(TemporalFilter):
    """Difference to a reference: frame ``reference`` (static) or the previous frame (dynamic)."""

    def __init__(self, dynamic: bool = False, reference: int = 0) -> None:
        super().__init__()
        self.dynamic = dynamic
        self.reference = int(reference)

    def step(self, x: torch.Tensor, key: int = 0) -> torch.Tensor:
        state = self._state.get(key)
        if self.dynamic:
            prev = x[:1] if state is None else state
            out = x - torch.cat([prev, x[:-1]], dim=0)
            self._state[key] = x[-1:].clone()
            return out
        if state is None:
            if self.reference != 0:
                raise VMMError(
                    "a reference frame other than 0 needs the whole clip; streams use frame 0"
                )
            state = x[:1].clone()
            self._state[key] = state
        return x - state

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            return super().whole(x)
        if not 0 <= self.reference < x.shape[0]:
            raise VMMError(f"reference frame {self.reference} is outside the clip "
                           f"(0..{x.shape[0] - 1})")
        return x - x[self.reference : self.reference + 1]


def make_filter(
    temporal: str,
    band: tuple[float, float] | None,
    fps: float,
    mode: str = "temporal",
    reference: int = 0,
    order: int = 2,
    taps: int | None = None,
    zero_phase: bool = False,
) -> TemporalFilter:
    """Build the temporal filter for ``mode`` and ``temporal``.

    Parameters
    ----------
    temporal : str
        One of ``ideal``, ``butterworth``, ``fir``, ``iir``, ``none`` (ignored unless
        ``mode == "temporal"``).
    band : (float, float)
        Pass band in Hz.
    fps : float
        Frame rate in frames per second.
    mode : str
        ``temporal``, ``static`` (difference to frame ``reference``) or ``dynamic``.
    order : int
        Butterworth order.
    taps : int, optional
        FIR length; default about two periods of the low cut-off, at most 4 s.
    zero_phase : bool
        Forward-backward (Butterworth) or centred (FIR) filtering on whole clips.
    """
    check_choice("mode", mode, MODES)
    if mode == "static":
        return ReferenceDifference(reference=reference)
    if mode == "dynamic":
        return ReferenceDifference(dynamic=True)
    check_choice("temporal filter", temporal, FILTERS)
    low, high = check_band(band, fps, temporal)
    if temporal == "none":
        return ReferenceDifference(reference=reference)
    if temporal == "ideal":
        return IdealFilter(low, high, fps)
    if temporal == "iir":
        return DifferenceOfIIR(low, high, fps)
    from scipy import signal

    if temporal == "butterworth":
        sos = signal.butter(check_order(order), [low, high], btype="bandpass", fs=fps,
                            output="sos")
        return SOSFilter(sos, zero_phase=zero_phase)
    taps = fir_taps(taps, fps, low)
    low_edge = max(low, 1e-6)
    coeffs = signal.firwin(int(taps), [low_edge, high], pass_zero=False, fs=fps)
    # A windowed sinc leaks about 0.5 % of DC, which alpha = 100 turns into a grey level
    # offset of the whole frame for `linear`: remove it with the (low-pass) window itself.
    window = signal.get_window("hamming", int(taps), fftbins=False)
    coeffs -= window * (coeffs.sum() / window.sum())
    return FIRFilter(coeffs, zero_phase=zero_phase)
