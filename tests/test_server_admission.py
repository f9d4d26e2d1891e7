"""admission_policy=sample: seats drawn at random among the devices that ask, reproducibly from a seed."""
from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pyflclient.server.admission import draw_order
from pyflclient.server.config import ServerConfig
from pyflclient.server.rounds import Rounds
from pyflclient.server.store import MemoryStore
from pyflclient.wire.protocol import ResponseCode, StartFLJobRequest, now_ms

DEVICES, SEATS = 40, 10
FL_IDS = [f"device-{i:02d}" for i in range(DEVICES)]


def test_every_asker_has_the_same_chance_of_a_seat():
    picks = Counter(f for it in range(1, 201) for f in draw_order(3, it, FL_IDS)[:SEATS])
    # Binomial(200, 1/4) per device: mean 50, sd 6.1
    assert set(picks) == set(FL_IDS)
    assert 30 <= min(picks.values()) and max(picks.values()) <= 70, picks


def test_the_draw_depends_on_the_seed_and_iteration_not_on_the_order_of_asking():
    assert draw_order(3, 1, FL_IDS) == draw_order(3, 1, reversed(FL_IDS))
    assert draw_order(3, 1, FL_IDS) != draw_order(4, 1, FL_IDS)
    assert draw_order(3, 1, FL_IDS) != draw_order(3, 2, FL_IDS)


def admitted_when_asking_in(order: list[str], seed: int, model: dict[str, np.ndarray]) -> set[str]:
    """Devices ask a real Rounds over a MemoryStore in exactly ``order``; who got a seat of iteration 1."""
    async def run() -> set[str]:
        rounds = Rounds(ServerConfig(start_fl_job_threshold=SEATS, admission_policy="sample",
                                     admission_window_ms=50, admission_seed=seed), MemoryStore(), model)
        await rounds.begin()
        try:
            answers = await asyncio.gather(*(rounds.start_fl_job(
                StartFLJobRequest("Lenet", fl_id, 0, 1, str(now_ms()))) for fl_id in order))
        finally:
            rounds.close()
        return {fl_id for fl_id, a in zip(order, answers) if a.retcode == ResponseCode.SUCCEED}

    return asyncio.run(run())


def test_the_same_devices_asking_in_another_order_get_the_same_seats(small_model):
    shuffled = [FL_IDS[i] for i in np.random.default_rng(5).permutation(DEVICES)]
    picked = admitted_when_asking_in(FL_IDS, 11, small_model)
    assert len(picked) == SEATS
    assert admitted_when_asking_in(shuffled, 11, small_model) == picked == set(draw_order(11, 1, FL_IDS)[:SEATS])
    assert admitted_when_asking_in(shuffled, 12, small_model) != picked


def test_sampled_seats_spread_over_iterations_and_the_others_are_told_when_to_come_back(
        start_server, device, small_model):
    iterations = 5
    srv = start_server(small_model, start_fl_job_threshold=SEATS, fl_iteration_num=iterations,
                       admission_policy="sample", admission_window_ms=1500, admission_seed=1)
    devices = [device(srv.url, fl_id=fl_id, data_size=10) for fl_id in FL_IDS]
    seated: list[set[str]] = []
    with ThreadPoolExecutor(DEVICES) as pool:
        for it in range(1, iterations + 1):
            asked = now_ms()
            replies = list(pool.map(lambda d: d.start_fl_job(), devices))  # held together until the draw
            admitted = [d for d, r in zip(devices, replies) if r.retcode == ResponseCode.SUCCEED]
            refused = [r for r in replies if r.retcode != ResponseCode.SUCCEED]
            assert len(admitted) == SEATS and all(r.is_selected and r.iteration == it for r in replies
                                                  if r.retcode == ResponseCode.SUCCEED)
            assert all(r.retcode == ResponseCode.OutOfTime and not r.is_selected and int(r.next_req_time) > asked
                       for r in refused) and len(refused) == DEVICES - SEATS
            if it == 1:  # after the draw: an admitted device is answered again, a newcomer refused as usual
                assert admitted[0].start_fl_job().retcode == ResponseCode.SUCCEED
                late = device(srv.url, fl_id="late", data_size=10).start_fl_job()
                assert late.retcode == ResponseCode.OutOfTime and "threshold reached" in late.reason
            for d in admitted:
                assert d.update_model(it, {n: a * np.float32(10) for n, a in small_model.items()}).retcode \
                    == ResponseCode.SUCCEED
            assert srv.wait_iteration(it, timeout=30)
            seated.append({d.fl_id for d in admitted})
    assert not set.intersection(*seated)  # nobody sits in every iteration
    assert len(set.union(*seated)) > 2 * SEATS
