"""Properties of PW_ENCRYPT's own arithmetic (pyflclient.wire.secagg): Shamir over GF(2^521−1), the ring Z_2^64,
the mask PRG and the pairwise cancellation. The crypto primitives are the `cryptography` package's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pyflclient.wire import secagg

secret_ints = st.integers(min_value=0, max_value=secagg.PRIME - 1)


@settings(max_examples=60, deadline=None)
@given(secret=secret_ints, n=st.integers(1, 12), data=st.data())
def test_any_t_of_n_shares_give_back_the_secret(secret, n, data):
    t = data.draw(st.integers(1, n))
    shares = secagg.split(secret, t, list(range(1, n + 1)))
    chosen = data.draw(st.lists(st.sampled_from(sorted(shares)), min_size=t, max_size=n, unique=True))
    assert secagg.combine({x: shares[x] for x in chosen}) == secret


@settings(max_examples=40, deadline=None)
@given(secret=secret_ints, n=st.integers(3, 10), data=st.data())
def test_fewer_than_t_shares_give_another_value(secret, n, data):
    t = data.draw(st.integers(2, n))
    shares = secagg.split(secret, t, list(range(1, n + 1)))
    # t-1 shares are consistent with every secret: their interpolation at 0 is uniform, not the secret
    assert secagg.combine({x: shares[x] for x in list(shares)[:t - 1]}) != secret


@settings(max_examples=40, deadline=None)
@given(secret=secret_ints, n=st.integers(2, 8), data=st.data())
def test_one_forged_share_changes_the_result(secret, n, data):
    shares = secagg.split(secret, n, list(range(1, n + 1)))
    x = data.draw(st.sampled_from(sorted(shares)))
    delta = data.draw(st.integers(1, secagg.PRIME - 1))
    forged = {**shares, x: (shares[x] + delta) % secagg.PRIME}
    assert secagg.combine(forged) != secret


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-secagg.MAX_ABS_UPLOAD / 64, secagg.MAX_ABS_UPLOAD / 64), min_size=1, max_size=64))
def test_the_ring_sum_of_quantised_values_decodes_to_their_sum(values):
    x = np.array(values)
    parts = [x / 2, x / 4, x / 4]
    total = np.zeros(len(values), dtype=np.uint64)
    for p in parts:
        total += secagg.quantise(p)
    assert np.allclose(secagg.dequantise(total), x, rtol=0, atol=3 / secagg.SCALE)


def test_values_beyond_the_range_are_refused():
    with pytest.raises(secagg.SecAggError, match="max_abs_upload"):
        secagg.quantise(np.array([secagg.MAX_ABS_UPLOAD * 1.01]))
    with pytest.raises(secagg.SecAggError, match="NaN"):
        secagg.quantise(np.array([np.nan]))


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=64).filter(lambda b: len(b) % 8 == 0))
def test_ring_elements_survive_the_float32_wire_slots_bit_for_bit(raw):
    q = np.frombuffer(raw, dtype="<u8")
    slots = secagg.ring_to_wire(q)
    assert slots.size == 2 * q.size
    assert secagg.wire_to_ring(np.array(slots)).tobytes() == raw


def test_pairwise_masks_cancel_and_the_masked_sum_is_the_plain_sum():
    rng = np.random.default_rng(3)
    ids = [f"d{i}" for i in range(5)]
    keys = {i: secagg.new_key_pair() for i in ids}
    x = {i: rng.normal(size=100) * 50 for i in ids}
    label = secagg.PARAMS["pairwise_mask_info"]
    total = np.zeros(100, dtype=np.uint64)
    for i in ids:
        y = secagg.quantise(x[i]) + secagg.mask_sum(
            ((secagg.sign_of(i, j), secagg.agree(keys[i].private, keys[j].public)) for j in ids if j != i), label, 4, 100)
        assert abs(np.corrcoef(secagg.dequantise(y), x[i])[0, 1]) < 0.5  # masked: noise, not the update
        total += y
    assert np.allclose(secagg.dequantise(total), sum(x.values()), atol=1e-5)


def test_the_mask_depends_on_seed_label_and_iteration():
    seed = bytes(range(32))
    a = secagg.prg(seed, "pyflclient/pw-mask", 1, 8)
    assert a.tobytes() == secagg.prg(seed, "pyflclient/pw-mask", 1, 8).tobytes()
    assert a.tobytes() != secagg.prg(seed, "pyflclient/pw-mask", 2, 8).tobytes()
    assert a.tobytes() != secagg.prg(seed, "pyflclient/self-mask", 1, 8).tobytes()


def test_a_sealed_share_opens_only_for_its_holder_and_binding():
    a, b, c = (secagg.new_key_pair() for _ in range(3))
    k_ab = secagg.share_key(a.private, b.public)
    assert k_ab == secagg.share_key(b.private, a.public)
    sealed = secagg.seal(k_ab, b"share", secagg.share_aad("a", "b", 1))
    assert secagg.open_sealed(k_ab, sealed, secagg.share_aad("a", "b", 1)) == b"share"
    with pytest.raises(secagg.SecAggError):
        secagg.open_sealed(k_ab, sealed, secagg.share_aad("a", "b", 2))
    with pytest.raises(secagg.SecAggError):
        secagg.open_sealed(secagg.share_key(a.private, c.public), sealed, secagg.share_aad("a", "b", 1))


def test_wrong_key_lengths_are_refused():
    k = secagg.new_key_pair()
    with pytest.raises(secagg.SecAggError, match="32 bytes"):
        secagg.agree(k.private, k.public[:31])
