"""28×28 greyscale handwriting → the 32×32×3 float32 samples the LeNet takes.

Both data sources of this package (LEAF FEMNIST and the bundled MNIST digits)
are 28×28 greyscale; the device LeNet takes 32×32×3. Two geometries are offered:

* ``"resize"`` (default): bilinear interpolation to 32×32 with half-pixel
  centres and edge clamping, which is what PIL's ``Image.resize(BILINEAR)``
  does when enlarging and hence what MindSpore r1.6's ``img2bin``
  (``py_transforms.Resize``) applied to make the published
  ``3500_clients_bin``. Choosing it keeps strokes the same size as in that
  archive, so a model trained on one works on the other. (The seed also
  rounded to 8 bits through PNG files; we keep float32 and skip that loss.)
* ``"pad"``: 2 background pixels on each side, LeNet-5's original recipe;
  exact (no interpolation), for users who prefer it.

The grey channel is then repeated three times (the seed's ``Grayscale(3)``).
Values are kept as given in [0, 1]; polarity is the caller's choice (see
``femnist.py`` and ``bundled.py``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

Geometry = Literal["resize", "pad"]
GEOMETRIES: tuple[str, ...] = ("resize", "pad")
SOURCE_SIDE = 28
TARGET_SIDE = 32


@lru_cache(maxsize=4)
def bilinear_matrix(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix M with ``out = M @ row``: 1-D linear interpolation.

    Output pixel i samples the source at ``(i + 0.5) * src / dst - 0.5``,
    clamped to [0, src-1] — PIL's triangle filter for enlargement.
    """
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0.0, src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    frac = pos - lo
    m = np.zeros((dst, src), dtype=np.float64)
    m[np.arange(dst), lo] += 1.0 - frac
    m[np.arange(dst), hi] += frac
    return m


def to_lenet_input(gray: np.ndarray, geometry: Geometry = "resize", background: float = 0.0) -> np.ndarray:
    """(N, 28, 28) or (N, 784) greyscale in [0, 1] → (N, 32, 32, 3) float32.

    ``background`` is the pad value for ``geometry="pad"`` (1.0 for LEAF's
    white paper, 0.0 for MNIST); ``"resize"`` ignores it.
    """
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim == 2 and g.shape[1] == SOURCE_SIDE * SOURCE_SIDE:
        g = g.reshape(-1, SOURCE_SIDE, SOURCE_SIDE)
    if g.ndim != 3 or g.shape[1:] != (SOURCE_SIDE, SOURCE_SIDE):
        raise ValueError(f"expected (N, 28, 28) or (N, 784) greyscale images, got shape {np.shape(gray)}")
    if geometry == "resize":
        m = bilinear_matrix(SOURCE_SIDE, TARGET_SIDE).astype(np.float32)
        out = np.matmul(np.matmul(m, g), m.T)  # rows then columns: separable bilinear
    elif geometry == "pad":
        p = (TARGET_SIDE - SOURCE_SIDE) // 2
        out = np.pad(g, ((0, 0), (p, p), (p, p)), constant_values=np.float32(background))
    else:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    out = np.clip(out, 0.0, 1.0, out=out)
    return np.ascontiguousarray(np.repeat(out[..., None], 3, axis=-1), dtype=np.float32)
