"""The device (Java, com.mindspore.flclient.cipher) and the server (Python, pyflclient.wire.secagg) compute
PW_ENCRYPT's arithmetic bit for bit alike: masks, key agreement, Shamir shares, quantisation, sealed shares.
Random cases from hypothesis, run through the real classes of the shipped jar in this process's JVM."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from pyflclient.client import jvm
from pyflclient.wire import secagg

jvm.start_jvm()
import jpype  # noqa: E402  (after the JVM: the classes load from the shipped jars)

MaskPrg = jpype.JClass("com.mindspore.flclient.cipher.MaskPrg")
X25519Keys = jpype.JClass("com.mindspore.flclient.cipher.X25519Keys")
Shamir = jpype.JClass("com.mindspore.flclient.cipher.Shamir")
Ring = jpype.JClass("com.mindspore.flclient.cipher.Ring")
ShareSeal = jpype.JClass("com.mindspore.flclient.cipher.ShareSeal")
BigInteger = jpype.JClass("java.math.BigInteger")
SecureRandom = jpype.JClass("java.security.SecureRandom")
HashMap = jpype.JClass("java.util.HashMap")
Integer = jpype.JClass("java.lang.Integer")


def jbytes(b: bytes):  # type: ignore[no-untyped-def]
    return jpype.JArray(jpype.JByte)(b)


def pybytes(a) -> bytes:  # type: ignore[no-untyped-def]
    return bytes(np.array(a, dtype=np.int8).view(np.uint8))


@settings(max_examples=25, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), iteration=st.integers(0, 2**31 - 1), count=st.integers(1, 5000),
       label=st.sampled_from([secagg.PARAMS["pairwise_mask_info"], secagg.PARAMS["self_mask_info"]]))
def test_the_mask_of_a_seed_is_the_same_on_both_sides(seed, iteration, count, label):
    into = jpype.JArray(jpype.JLong)(count)
    MaskPrg.addMask(jbytes(seed), label, iteration, 1, into)
    assert np.array(into, dtype=np.int64).view(np.uint64).tobytes() == secagg.prg(seed, label, iteration, count).tobytes()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**6))
def test_x25519_keys_agree_across_the_two_sides(_):
    java = X25519Keys.generate()
    py = secagg.new_key_pair()
    assert secagg.public_key_of(pybytes(java.privateKey)) == pybytes(java.publicKey)
    assert pybytes(X25519Keys.agree(java.privateKey, jbytes(py.public))) == secagg.agree(py.private,
                                                                                          pybytes(java.publicKey))


@settings(max_examples=25, deadline=None)
@given(secret=st.integers(0, 2**256 - 1), n=st.integers(1, 9), data=st.data())
def test_shares_made_on_one_side_combine_on_the_other(secret, n, data):
    t = data.draw(st.integers(1, n))
    java_shares = Shamir.split(BigInteger(str(secret)), t, n, SecureRandom())
    points = {x: int(str(java_shares[x - 1].toString())) for x in range(1, n + 1)}
    assert secagg.combine(dict(list(points.items())[:t])) == secret
    assert secagg.share_to_int(pybytes(Shamir.toBytes(java_shares[0]))) == points[1]
    py_shares = secagg.split(secret, t, list(range(1, n + 1)))
    jpoints = HashMap()
    for x in list(py_shares)[-t:]:
        jpoints.put(Integer(x), BigInteger(str(py_shares[x])))
    assert int(str(Shamir.combine(jpoints).toString())) == secret


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1e7, 1e7, width=32), min_size=1, max_size=200))
def test_quantisation_is_the_same_on_both_sides(values):
    x = np.array(values, dtype=np.float32)
    into = jpype.JArray(jpype.JLong)(len(values))
    Ring.addQuantised(jpype.JArray(jpype.JFloat)(x), into, 0)
    assert np.array(into, dtype=np.int64).view(np.uint64).tobytes() == secagg.quantise(x).tobytes()


def test_a_share_sealed_on_one_side_opens_on_the_other():
    a, b = X25519Keys.generate(), secagg.new_key_pair()
    key = secagg.share_key(b.private, pybytes(a.publicKey))
    assert pybytes(ShareSeal.key(a.privateKey, jbytes(b.public))) == key
    aad = secagg.share_aad("a", "b", 4)
    sealed = pybytes(ShareSeal.seal(jbytes(key), jbytes(b"x" * 132), jbytes(aad), SecureRandom()))
    assert secagg.open_sealed(key, sealed, aad) == b"x" * 132
    assert pybytes(ShareSeal.open(jbytes(key), jbytes(secagg.seal(key, b"y" * 132, aad)), jbytes(aad))) == b"y" * 132
    assert pybytes(ShareSeal.commitment(jbytes(b"z"))) == secagg.commitment(b"z")
