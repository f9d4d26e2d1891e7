"""RedisStore against a real redis-server: each step atomic across processes (one store per process here,
each with its own connections), and what an unreachable Redis does."""
from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from pyflclient.server.redis_store import RedisStore
from pyflclient.server.store import Admission, StoreUnavailable, Upload

from conftest import random_model

SHAPES = {"fc.weight": (4, 3), "fc.bias": (4,)}


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def group(address: str, n: int, **kwargs) -> list[RedisStore]:  # noqa: ANN003
    """``n`` stores on one job, as ``n`` server processes would hold them (the first begins, the others join)."""
    stores = [RedisStore(address, **kwargs) for _ in range(n)]
    for store in stores:
        await store.begin(1, random_model(SHAPES, seed=0))
    return stores


async def close_all(stores: list[RedisStore]) -> None:
    for store in stores:
        await store.aclose()


def test_the_threshold_th_seat_is_given_once_among_racing_processes(redis_server):
    async def scenario():
        stores = await group(redis_server.address, 4)
        outcomes = await asyncio.gather(*(stores[i % 4].admit(1, f"dev-{i:02d}", 10, 1000, 10, 60_000)
                                          for i in range(40)))
        view = await stores[3].view()
        await close_all(stores)
        return [o for o, _ in outcomes], view

    outcomes, view = run(scenario())
    assert outcomes.count(Admission.ADMITTED) == 10
    assert outcomes.count(Admission.FULL) == 30
    assert (view.admitted, view.start_window_began_ms) == (10, 1000)


def test_an_iteration_is_closed_exactly_once_among_racing_processes(redis_server):
    async def scenario():
        stores = await group(redis_server.address, 8)
        for i in range(3):
            await stores[i].admit(1, f"dev-{i}", i + 1, 1000, 3, 60_000)
            await stores[i].add_upload(1, f"dev-{i}", random_model(SHAPES, seed=10 + i), 2000)
        closes = await asyncio.gather(*(s.close(1) for s in stores))
        await close_all(stores)
        return closes

    closes = run(scenario())
    winners = [c for c in closes if c is not None]
    assert len(winners) == 1
    assert sorted(winners[0].uploads) == ["dev-0", "dev-1", "dev-2"]
    assert (winners[0].uploaded, winners[0].data_size) == (3, 6)
    want = random_model(SHAPES, seed=11)
    for name in SHAPES:
        np.testing.assert_array_equal(winners[0].uploads["dev-1"].weights[name], want[name])


def test_an_upload_is_taken_once_whichever_process_receives_the_retry(redis_server):
    async def scenario():
        a, b = await group(redis_server.address, 2)
        await a.admit(1, "dev", 5, 1000, 2, 60_000)
        weights = random_model(SHAPES, seed=3)
        outcomes = await asyncio.gather(a.add_upload(1, "dev", weights, 2000), b.add_upload(1, "dev", weights, 2000))
        await close_all([a, b])
        return sorted(o.value for o, _ in outcomes)

    assert run(scenario()) == sorted([Upload.ACCEPTED.value, Upload.DUPLICATE.value])


def test_seats_per_address_are_counted_across_processes(redis_server):
    async def scenario():
        stores = await group(redis_server.address, 3)
        return [(await s.admit(1, f"dev-{i}", 1, 1000, 10, 60_000, remote="203.0.113.7", per_address=2))[0]
                for i, s in enumerate(stores)]

    assert run(scenario()) == [Admission.ADMITTED, Admission.ADMITTED, Admission.ADDRESS_FULL]


def test_a_closer_that_never_publishes_is_taken_over_after_its_lease_and_publishes_once(redis_server):
    async def scenario():
        a, b = await group(redis_server.address, 2, close_lease_ms=300)
        await a.admit(1, "dev", 2, 1000, 1, 60_000)
        await a.add_upload(1, "dev", random_model(SHAPES, seed=4), 2000)
        first = await a.close(1)
        during_lease = await b.close(1)
        await asyncio.sleep(0.4)
        taken_over = await b.close(1)
        model = random_model(SHAPES, seed=5)
        await b.publish(1, model, finished=False)
        await a.publish(1, random_model(SHAPES, seed=6), finished=False)  # the late one: ignored
        served = await a.model(1)
        view = await a.view()
        await close_all([a, b])
        return first, during_lease, taken_over, served, model, view

    first, during_lease, taken_over, served, model, view = run(scenario())
    assert first is not None and during_lease is None and taken_over is not None
    assert sorted(taken_over.uploads) == sorted(first.uploads) == ["dev"]
    for name in SHAPES:
        np.testing.assert_array_equal(served[name], model[name])
    assert (view.iteration, view.closed, view.admitted) == (2, False, 0)


def test_a_process_with_another_model_cannot_join_the_job(redis_server):
    async def scenario():
        a = RedisStore(redis_server.address)
        await a.begin(1, random_model(SHAPES, seed=0))
        b = RedisStore(redis_server.address)
        try:
            await b.begin(1, random_model({"fc.weight": (5, 3)}, seed=0))
        finally:
            await close_all([a, b])

    with pytest.raises(ValueError, match="another model"):
        run(scenario())


def test_an_unreachable_redis_is_store_unavailable_logged_once_and_the_state_is_there_when_it_returns(
        durable_redis_server, caplog):
    async def scenario():
        (store,) = await group(durable_redis_server.address, 1, timeout_s=1.0)
        await store.admit(1, "dev", 7, 1000, 2, 60_000)
        durable_redis_server.kill()
        failures = 0
        for _ in range(5):
            try:
                await store.view()
            except StoreUnavailable:
                failures += 1
        durable_redis_server.start()
        view = await store.view()
        size = await store.data_size(1, "dev")
        await store.aclose()
        return failures, view, size

    with caplog.at_level(logging.INFO, logger="pyflclient.server.redis_store"):
        failures, view, size = run(scenario())
    assert failures == 5
    assert (view.admitted, size) == (1, 7)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


def test_a_cipher_phase_takes_each_device_once_freezes_once_and_goes_with_the_publication(redis_server):
    """The PW_ENCRYPT phase state (store.cipher_*) across four processes, as the MemoryStore keeps it."""
    from pyflclient.server.store import CipherAdd, MemoryStore

    async def scenario(stores):
        for i in range(3):
            await stores[0].admit(1, f"dev-{i}", 10, 1000, 3, 60_000)
        adds = await asyncio.gather(*(stores[j % len(stores)].cipher_add(1, "keys", f"dev-{j % 3}", b"k%d" % j,
                                                                          {"dev-0": b"for-0"})
                                      for j in range(12)))
        frozen = await asyncio.gather(*(s.cipher_freeze(1, "keys", 2000 + i) for i, s in enumerate(stores)))
        late = await stores[-1].cipher_add(1, "keys", "dev-9", b"late")
        admitted = await stores[0].cipher_freeze(1, "admitted", 5)
        empty = await stores[0].cipher_freeze(1, "shares", 6)
        held = (await stores[-1].cipher_values(1, "keys>dev-0"), await stores[0].cipher_count(1, "keys"))
        await stores[0].close(1)
        await stores[0].publish(1, random_model(SHAPES, seed=1), False)
        gone = (await stores[-1].cipher_values(1, "keys"), await stores[-1].cipher_frozen(1, "keys"))
        return adds, frozen, late, admitted, empty, held, gone

    async def on_redis():
        stores = await group(redis_server.address, 4)
        try:
            return await scenario(stores)
        finally:
            await close_all(stores)

    async def in_memory():
        store = MemoryStore()
        await store.begin(1, random_model(SHAPES, seed=0))
        return await scenario([store])

    for adds, frozen, late, admitted, empty, held, gone in (run(on_redis()), run(in_memory())):
        assert adds.count(CipherAdd.ADDED) == 3 and adds.count(CipherAdd.DUPLICATE) == 9
        assert len({f for f in frozen}) == 1 and frozen[0].members == ("dev-0", "dev-1", "dev-2")
        assert late is CipherAdd.FROZEN
        assert admitted.members == ("dev-0", "dev-1", "dev-2") and empty.members == ()
        assert held == ({"dev-0": b"for-0", "dev-1": b"for-0", "dev-2": b"for-0"}, 3)
        assert gone == ({}, None)  # iteration 2 is current; iteration 1's phases went with its publication


def test_pw_encrypt_phase_freezes_by_one_process_bind_the_others_admissions_and_uploads(redis_server):
    """The secure-aggregation race across processes (issue 26): process A froze PW_ENCRYPT's admitted devices
    (its admission window ended) while process B, whose clock was a millisecond behind, still admitted a device:
    a seat outside the frozen list, whose exchangeKeys is then refused and whose job fails. Likewise an upload
    stored by B after A froze the upload phase would be left out of the sum while its device was told SUCCEED.
    Now the frozen phases are checked in the same atomic step: B's late admission is WINDOW_OVER and its late
    upload CLOSED, in Redis as in memory."""
    from pyflclient.server.store import MemoryStore

    async def scenario(a, b):
        await a.admit(1, "dev-0", 10, 1000, 3, 500)          # the admission window began at t = 1000 (500 ms)
        await a.cipher_freeze(1, "admitted", 1500)           # A: the window is over, the keys phase begins
        late_seat, _ = await b.admit(1, "dev-1", 10, 1499, 3, 500)  # B: its clock says 1499, still open
        frozen = await b.cipher_freeze(1, "uploads", 9000)   # B froze the (empty) upload phase
        late_upload, _ = await a.add_upload(1, "dev-0", random_model(SHAPES, seed=3), 9001)
        return late_seat, late_upload, frozen.members

    async def on_redis():
        stores = await group(redis_server.address, 2)
        try:
            return await scenario(*stores)
        finally:
            await close_all(stores)

    async def in_memory():
        store = MemoryStore()
        await store.begin(1, random_model(SHAPES, seed=0))
        return await scenario(store, store)

    for late_seat, late_upload, members in (run(on_redis()), run(in_memory())):
        assert late_seat is Admission.WINDOW_OVER
        assert late_upload is Upload.CLOSED and members == ()
