"""28×28 grey → 32×32×3: the seed's PIL bilinear resize, or a 2-pixel pad."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pyflclient.data.images import to_lenet_input


@pytest.fixture
def gray() -> np.ndarray:
    return np.random.default_rng(3).random((4, 28, 28), dtype=np.float32)


def test_resize_equals_pil_bilinear_like_the_seeds_img2bin(gray: np.ndarray) -> None:
    ours = to_lenet_input(gray, geometry="resize")
    for img, out in zip(gray, ours):
        reference = np.asarray(Image.fromarray(img, mode="F").resize((32, 32), Image.BILINEAR))
        np.testing.assert_allclose(out[..., 0], reference, atol=1e-6)


def test_grey_channel_is_repeated_into_three_float32_channels(gray: np.ndarray) -> None:
    out = to_lenet_input(gray)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_pad_keeps_pixels_exactly_and_fills_the_border_with_background(gray: np.ndarray) -> None:
    out = to_lenet_input(gray, geometry="pad", background=1.0)
    np.testing.assert_array_equal(out[:, 2:30, 2:30, 0], gray)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (out[:, border, :] == 1.0).all()


def test_flat_784_vectors_are_accepted(gray: np.ndarray) -> None:
    np.testing.assert_array_equal(to_lenet_input(gray.reshape(4, 784)), to_lenet_input(gray))


def test_wrong_image_size_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        to_lenet_input(np.zeros((2, 32, 32)))
