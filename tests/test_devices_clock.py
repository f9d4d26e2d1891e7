"""Device profiles and the simulated clock: files (ours and FedScale's, written here), the clock's rules,
and a real server on loopback running its windows on the simulated clock."""
from __future__ import annotations

import json
import math
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pyflclient.clock import SimulatedClock, ask_rank, transfer_bytes
from pyflclient.devices import DeviceProfile, DeviceProfiles, ProfileError, load_profiles
from pyflclient.server.config import ConfigError
from pyflclient.wire.protocol import ResponseCode

from conftest import fedavg_of, upload_of

# -- profile files --------------------------------------------------------------------------


def write_json(path: Path, devices: dict, default: dict | None = None) -> Path:
    path.write_text(json.dumps({"devices": devices, **({"default": default} if default else {})}))
    return path


def test_json_profiles_give_each_device_its_numbers(tmp_path):
    f = write_json(tmp_path / "p.json", {"a": {"ms_per_sample": 2.5, "download_kbps": 8000, "upload_kbps": 1000,
                                              "latency_ms": 40, "availability": {"period_s": 100,
                                                                                 "online": [[10, 20]]}}},
                   default={"ms_per_sample": 1})
    p = load_profiles(f)
    a = p["a"]
    assert (a.ms_per_sample, a.download_kbps, a.upload_kbps, a.latency_ms) == (2.5, 8000, 1000, 40)
    assert a.download_ms(1000) == pytest.approx(40 + 8 * 1000 / 8000)  # kbit/s = bits per ms
    assert a.train_ms(samples=10, epochs=2) == 50
    assert a.availability.is_online(15) and not a.availability.is_online(25) and a.availability.is_online(115)
    assert a.availability.next_online(25) == 110
    assert p["anyone"].ms_per_sample == 1 and p["anyone"].availability is None


@pytest.mark.parametrize("row, field", [
    ({"ms_per_sample": -1}, "ms_per_sample"),
    ({"download_kbps": 0}, "download_kbps"),
    ({"upload_kbps": "fast"}, "upload_kbps"),
    ({"speed": 1}, "speed"),
    ({"availability": {"period_s": 10, "online": [[5, 20]]}}, "availability.online"),
])
def test_a_bad_profile_is_one_line_naming_file_device_and_field(tmp_path, row, field):
    f = write_json(tmp_path / "bad.json", {"phone7": row})
    with pytest.raises(ProfileError) as e:
        load_profiles(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg and "'phone7'" in msg and field in msg


def test_a_device_missing_from_a_file_without_default_is_named(tmp_path):
    p = load_profiles(write_json(tmp_path / "p.json", {"a": {}}))
    with pytest.raises(ProfileError, match=r"p\.json: device 'b': no profile"):
        p["b"]


def test_unknown_population_or_missing_file_names_the_choices():
    with pytest.raises(ProfileError, match=r"'nope'.*\['mobile', 'uniform'\]"):
        load_profiles("nope")


def fedscale_files(tmp_path: Path) -> tuple[Path, Path]:
    """FedScale's two trace formats, as its client manager reads them (pickled dicts keyed by client id)."""
    capacity = {1: {"computation": 10.0, "communication": 2000.0}, 2: {"computation": 40.0, "communication": 500.0}}
    behaviour = {1: {"duration": 500, "inactive": [100, 400], "finish_time": 500, "active": [0, 300]},
                 2: {"duration": 500, "inactive": [500], "finish_time": 500, "active": [250]}}
    cap, beh = tmp_path / "client_device_capacity", tmp_path / "client_behave_trace"
    cap.write_bytes(pickle.dumps(capacity))
    beh.write_bytes(pickle.dumps(behaviour))
    return cap, beh


def test_fedscale_capacity_and_availability_files_are_read_as_they_are(tmp_path):
    cap, beh = fedscale_files(tmp_path)
    p = load_profiles(cap, availability=beh)
    seen = {(p[f"d{i}"].ms_per_sample, p[f"d{i}"].download_kbps) for i in range(40)}
    assert seen == {(30.0, 2000.0), (120.0, 500.0)}  # training = 3 × traced inference latency (FedScale)
    for i in range(40):
        d = p[f"d{i}"]
        assert d.upload_kbps == d.download_kbps and d.latency_ms == 0
        sessions = d.availability.online
        assert sessions in (((0.0, 100.0), (300.0, 400.0)), ((250.0, 500.0),))
        assert d.availability.period_s == 500


def test_fedscale_files_with_a_missing_field_or_garbage_are_one_line(tmp_path):
    bad = tmp_path / "cap"
    bad.write_bytes(pickle.dumps({7: {"computation": 3.0}}))
    with pytest.raises(ProfileError, match=r"cap: device '7': field 'communication' is missing"):
        load_profiles(bad)
    trace = tmp_path / "trace"
    trace.write_bytes(pickle.dumps({3: {"active": [0, 5], "inactive": [4], "finish_time": 10}}))
    with pytest.raises(ProfileError, match=r"trace: device '3': field 'inactive' has 1 entries"):
        load_profiles("uniform", availability=trace)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(ProfileError, match="junk: not a FedScale device capacity pickle"):
        load_profiles(junk)


def test_populations_are_seeded_per_device_and_heterogeneous():
    a, b = load_profiles("mobile", seed=3), load_profiles("mobile", seed=3)
    ids = [f"f{i}" for i in range(300)]
    assert [a[i] for i in ids] == [b[i] for i in reversed(ids)][::-1]  # a device's draw ignores the others
    speeds = np.array([a[i].ms_per_sample for i in ids])
    assert speeds.max() / speeds.min() > 5  # heterogeneous
    assert sum(a[i].availability is None for i in ids) < 60
    assert load_profiles("mobile", seed=4)["f1"] != a["f1"]
    u = load_profiles(None)
    assert u.uniform and u["x"] == DeviceProfile()


# -- the clock's rules ----------------------------------------------------------------------


def clock_of(devices: dict, seed: int = 0) -> SimulatedClock:
    return SimulatedClock(DeviceProfiles("test", {k: DeviceProfile(**v) for k, v in devices.items()}), seed, 0)


def plan(clock: SimulatedClock, askers: dict, **kw):
    args = dict(threshold=len(askers), start_window_ms=1_000, update_window_ms=10_000, needed=len(askers),
                epochs=1, down_bytes=0, up_bytes=0)
    args.update(kw)
    return clock.plan(1, 0, askers, **args)


def test_a_device_that_must_miss_the_update_window_is_late():
    c = clock_of({"fast": {"ms_per_sample": 1.0}, "slow": {"ms_per_sample": 1_000.0}})
    p = plan(c, {"fast": 100, "slow": 100})  # fast uploads at 100 ms, slow at 100 s; window 10 s from 100 ms
    assert p.finished == ("fast",) and p.late == ("slow",) and not p.valid and p.end_ms == 100 + 10_000


def test_a_slow_device_is_cut_when_the_ratio_is_reached():
    c = clock_of({"a": {"ms_per_sample": 1.0}, "b": {"ms_per_sample": 2.0}, "slow": {"ms_per_sample": 50.0}})
    p = plan(c, {"a": 100, "b": 100, "slow": 100}, needed=2)
    assert p.finished == ("a", "b") and p.late == ("slow",) and p.valid and p.end_ms == 200


def test_transfer_time_counts_bytes_bandwidth_and_latency():
    c = clock_of({"d": {"download_kbps": 1_000.0, "upload_kbps": 100.0, "latency_ms": 10.0, "ms_per_sample": 1.0}})
    t = c.device_times("d", 0, data_size=50, epochs=2, down_bytes=1_000, up_bytes=1_000)
    assert (t.downloaded_ms, t.trained_ms, t.uploaded_ms) == (10 + 8, 18 + 100, 118 + 10 + 80)


def test_an_offline_device_does_not_ask_and_one_going_offline_is_dropped():
    from pyflclient.devices import Availability
    day = 86_400.0
    c = SimulatedClock(DeviceProfiles("t", {
        "on": DeviceProfile(ms_per_sample=1.0),
        "later": DeviceProfile(availability=Availability(day, ((3_600.0, 7_200.0),))),
        "leaving": DeviceProfile(ms_per_sample=100.0, availability=Availability(day, ((0.0, 5.0),))),
    }))
    p = plan(c, {"on": 10, "later": 10, "leaving": 100})
    assert p.offline == ("later",) and "later" not in p.admitted
    assert p.dropped == ("leaving",) and p.finished == ("on",)  # 10 s of training, online for 5 s


def test_devices_asking_at_the_same_time_are_ordered_by_a_seeded_shuffle():
    c0, c1 = clock_of({}, seed=0), clock_of({}, seed=1)
    c0.profiles = c1.profiles = load_profiles("uniform")
    askers = {f"d{i:03d}": 10 for i in range(500)}
    p0 = plan(c0, askers, threshold=50, needed=50)
    assert p0 == plan(c0, dict(reversed(list(askers.items()))), threshold=50, needed=50)  # order-free
    assert set(p0.admitted) != set(plan(c1, askers, threshold=50, needed=50).admitted)
    rank = ask_rank(0, 1, list(askers))
    assert list(p0.admitted) == sorted(askers, key=rank.get)[:50]
    # fair: over 10 iterations the seats go to about 500 × (1 − 0.9^10) ≈ 326 distinct devices
    seen = set()
    for it in range(1, 11):
        seen |= set(c0.plan(it, 0, askers, threshold=50, start_window_ms=1, update_window_ms=1, needed=50, epochs=1,
                            down_bytes=0, up_bytes=0).admitted)
    assert len(seen) >= 250


def test_transfer_bytes_is_the_float32_payload_plus_framing(small_model):
    n = sum(a.size for a in small_model.values())
    assert 4 * n < transfer_bytes(small_model) < 4 * n + 100 * len(small_model)


# -- a real server on the simulated clock ----------------------------------------------------


def ask_all(devices, **kw):
    with ThreadPoolExecutor(len(devices)) as pool:  # the server answers once every device asked
        return list(pool.map(lambda d: d.start_fl_job(**kw), devices))


def upload_all(calls):
    """``{device: callable(device) -> reply}`` at once: the server answers an iteration's uploads once every
    admitted device's is in (their counted bytes decide who is late). Replies by fl_id."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {d.fl_id: pool.submit(call, d) for d, call in calls.items()}
        return {k: f.result() for k, f in futures.items()}


def sim_server(start_server, model, tmp_path, devices: dict, **settings):
    f = write_json(tmp_path / "profiles.json", devices, default={})
    return start_server(model, device_profiles=str(f), device_count=len(devices), **settings)


def test_server_refuses_the_upload_of_a_device_that_misses_the_window(start_server, device, small_model, tmp_path):
    srv = sim_server(start_server, small_model, tmp_path, {"fast": {"ms_per_sample": 1}, "slow": {"ms_per_sample": 10_000}},
                     start_fl_job_threshold=2, fl_iteration_num=1, update_model_time_window=5_000)
    fast, slow = device(srv.url, fl_id="fast", data_size=10), device(srv.url, fl_id="slow", data_size=10)
    joined = ask_all([fast, slow])
    assert [j.retcode for j in joined] == [ResponseCode.SUCCEED] * 2
    replies = upload_all({slow: lambda d: d.update_model(1, upload_of(small_model, 10, 1)[1]),
                          fast: lambda d: d.update_model(1, upload_of(small_model, 10, 2)[1])})
    late = replies["slow"]
    assert late.retcode == ResponseCode.OutOfTime and "after the iteration ended" in late.reason
    assert replies["fast"].retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    m = srv.metrics()[0]
    assert (m["valid"], m["admitted"], m["finished"], m["late"], m["uploaded"]) == (False, 2, 1, 1, 1)
    assert m["sim_end_ms"] - m["sim_start_ms"] == 10 + 5_000  # fast's upload at 10 ms opens the 5 s window


def test_server_never_admits_an_offline_device(start_server, device, small_model, tmp_path):
    srv = sim_server(start_server, small_model, tmp_path, {
        "on": {}, "off": {"availability": {"period_s": 86400, "online": [[3600, 7200]]}}},
        start_fl_job_threshold=2, fl_iteration_num=1, update_model_time_window=1_000)
    on, off = device(srv.url, fl_id="on", data_size=4), device(srv.url, fl_id="off", data_size=4)
    a, b = ask_all([on, off])
    assert a.retcode == ResponseCode.SUCCEED
    assert b.retcode == ResponseCode.OutOfTime and "offline" in b.reason
    assert off.update_model(1, upload_of(small_model, 4, 1)[1]).retcode != ResponseCode.SUCCEED
    assert on.update_model(1, upload_of(small_model, 4, 2)[1]).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    assert [u.fl_id for u in srv.uploads(1)] == ["on"]
    m = srv.metrics()[0]
    assert (m["offline"], m["admitted"]) == (1, 1)


def test_server_cuts_a_slow_device_under_update_model_ratio(start_server, device, small_model, tmp_path):
    srv = sim_server(start_server, small_model, tmp_path, {
        "a": {"ms_per_sample": 1}, "b": {"ms_per_sample": 2}, "slow": {"ms_per_sample": 500}},
        start_fl_job_threshold=3, update_model_ratio=0.66, fl_iteration_num=1)
    devs = [device(srv.url, fl_id=n, data_size=8) for n in ("slow", "a", "b")]
    assert all(j.retcode == ResponseCode.SUCCEED for j in ask_all(devs))
    ups = {d.fl_id: upload_of(small_model, 8, i)[1] for i, d in enumerate(devs)}
    replies = upload_all({d: (lambda d: d.update_model(1, ups[d.fl_id])) for d in devs})
    assert replies["slow"].retcode == ResponseCode.OutOfTime
    assert srv.wait_iteration(1, timeout=30)
    want = fedavg_of([ups["a"], ups["b"]], [8, 8])
    for name, value in want.items():
        np.testing.assert_array_equal(srv.global_model()[name].reshape(-1), value.reshape(-1))
    m = srv.metrics()[0]
    assert (m["valid"], m["finished"], m["late"], m["sim_end_ms"] - m["sim_start_ms"]) == (True, 2, 1, 16)


def run_uniform_job(start_server, device, model, order_seed: int, seed: int):
    """12 devices, 4 seats, 3 iterations on the uniform population; the devices ask in a shuffled wall order."""
    srv = start_server(model, device_profiles="uniform", device_seed=seed, device_count=12,
                       start_fl_job_threshold=4, fl_iteration_num=3)
    devs = [device(srv.url, fl_id=f"d{i:02d}", data_size=4 + i) for i in range(12)]
    rng = np.random.default_rng(order_seed)
    chosen = []
    for it in (1, 2, 3):
        order = [devs[i] for i in rng.permutation(12)]
        joined = dict(zip([d.fl_id for d in order], ask_all(order)))
        admitted = sorted(k for k, j in joined.items() if j.retcode == ResponseCode.SUCCEED)
        chosen.append(admitted)
        ups = {d: upload_of(dict(joined[d.fl_id].weights), d.data_size, it * 100 + int(d.fl_id[1:]))[1]
               for d in order if d.fl_id in admitted}
        replies = upload_all({d: (lambda d, w=w: d.update_model(it, w)) for d, w in ups.items()})
        assert all(r.retcode == ResponseCode.SUCCEED for r in replies.values())
        assert srv.wait_iteration(it, timeout=30)
    return chosen, srv.global_model(), [m["sim_end_ms"] - m["sim_start_ms"] for m in srv.metrics()]


def test_same_seed_same_participants_and_bit_identical_model_whatever_the_arrival_order(start_server, device,
                                                                                    small_model):
    a = run_uniform_job(start_server, device, small_model, order_seed=1, seed=7)
    b = run_uniform_job(start_server, device, small_model, order_seed=2, seed=7)
    assert a[0] == b[0] and a[2] == b[2]
    for name in a[1]:
        assert a[1][name].tobytes() == b[1][name].tobytes()
    c = run_uniform_job(start_server, device, small_model, order_seed=1, seed=8)
    assert c[0] != a[0]


def test_bad_profiles_stop_the_server_config_with_one_line(start_server, small_model, tmp_path):
    f = write_json(tmp_path / "p.json", {"x": {"latency_ms": -3}})
    with pytest.raises(ConfigError, match=r"device_profiles: .*p\.json: device 'x': field 'latency_ms'"):
        start_server(small_model, device_profiles=str(f))
    with pytest.raises(ConfigError, match="device_profiles"):
        start_server(small_model, device_profiles="uniform", encrypt_type="PW_ENCRYPT",
                     start_fl_job_threshold=3, reconstruct_secrets_threshold=2)


def test_clock_hours_and_summary_are_simulated():
    c = clock_of({"d": {"ms_per_sample": 3_600.0}})
    p = plan(c, {"d": 1_000}, update_window_ms=10**8)  # the update window opens at the start window's end
    assert c.hours(p.end_ms) == pytest.approx(1_000 * 3_600 / 3_600_000)
    assert c.hours(plan(c, {"d": 1_000}).end_ms) == pytest.approx((1_000 + 10_000) / 3_600_000)  # late: cut
    assert p.summary()["finished"] == 1 and math.isclose(c.hours(p.start_ms), 0.0)


def test_server_reads_fedscale_capacity_and_availability_files(start_server, device, small_model, tmp_path):
    import zlib

    cap, beh = fedscale_files(tmp_path)  # availability row 0: online at time 0; row 1: only from 250 s
    row = {f"d{i}": zlib.crc32(f"d{i}".encode()) % 2 for i in range(40)}
    on = next(d for d, r in row.items() if r == 0)
    off = next(d for d, r in row.items() if r == 1)
    srv = start_server(small_model, device_profiles=str(cap), device_availability=str(beh), device_count=2,
                       start_fl_job_threshold=2, update_model_ratio=0.5, fl_iteration_num=1,
                       start_fl_job_time_window=1_000)
    a, b = CountingDevice(srv.url, fl_id=on, data_size=20), device(srv.url, fl_id=off, data_size=20)
    ja, jb = ask_all([a, b])
    assert ja.retcode == ResponseCode.SUCCEED and jb.retcode == ResponseCode.OutOfTime and "offline" in jb.reason
    assert a.update_model(1, upload_of(small_model, 20, 1)[1]).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    m = srv.metrics()[0]
    profile = load_profiles(cap)[on]  # 3 × the traced inference ms per sample, the one bandwidth both ways
    a.close()
    want = math.ceil(profile.download_ms(a.received["startFLJob"])) + math.ceil(profile.train_ms(20, 1)) + \
        math.ceil(profile.upload_ms(a.sent["updateModel"]))  # the bytes it received and sent
    assert (m["offline"], m["finished"], m["sim_end_ms"] - m["sim_start_ms"]) == (1, 1, want)


# -- transfer times from the bytes actually sent (the server's counts) -------------------------

def _wire():  # type: ignore[no-untyped-def]
    from pyflclient.wire import compression as c
    return c.TABLE.upload["DIFF_SPARSE_QUANT"].wire, c.TABLE.download["QUANT"].wire


class CountingDevice:
    """A protocol device that keeps the body size of its last request and reply per endpoint."""

    def __new__(cls, url, **kw):  # type: ignore[no-untyped-def]
        from pyflclient.server.device import DeviceClient

        class Counting(DeviceClient):
            def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
                super().__init__(*a, **k)
                self.sent: dict[str, int] = {}
                self.received: dict[str, int] = {}

            def post(self, round_name, body):  # type: ignore[no-untyped-def]
                status, data = super().post(round_name, body)
                self.sent[round_name], self.received[round_name] = len(body), len(data)
                return status, data

        return Counting(url, **kw)


LINKS = {"fast": {"ms_per_sample": 1, "download_kbps": 100_000, "upload_kbps": 100_000, "latency_ms": 5},
         "thin": {"ms_per_sample": 1, "download_kbps": 2_000, "upload_kbps": 200, "latency_ms": 40}}


def run_links(start_server, model, tmp_path, compressed: bool, window_ms: int):  # type: ignore[no-untyped-def]
    """One iteration of the two LINKS devices (data_size 16, both must upload) on LeNet-size weights,
    plain or with QUANT downloads and DIFF_SPARSE_QUANT (rate 0.1) uploads."""
    dsq, quant = _wire()
    codecs = dict(upload_compress_type="DIFF_SPARSE_QUANT", upload_sparse_rate=0.1,
                  download_compress_type="QUANT") if compressed else {}
    srv = sim_server(start_server, model, tmp_path, LINKS, start_fl_job_threshold=2, fl_iteration_num=1,
                     update_model_time_window=window_ms, **codecs)
    devs = [CountingDevice(srv.url, fl_id=n, data_size=16) for n in LINKS]
    try:
        joined = ask_all(devs, download_compress_types=(quant,) if compressed else ())
        assert all(j.retcode == ResponseCode.SUCCEED for j in joined)
        rng = np.random.default_rng(0)
        diff = {n: (rng.normal(0, 0.01, a.shape) * 16).astype(np.float32) for n, a in model.items()}
        plain = {n: ((a + diff[n] / 16) * 16).astype(np.float32) for n, a in model.items()}
        replies = upload_all({d: (lambda d: d.update_model_compressed(1, diff, dsq, 0.1)) if compressed
                              else (lambda d: d.update_model(1, plain)) for d in devs})
        assert srv.wait_iteration(1, timeout=30)
        return srv.metrics()[0], {d.fl_id: d for d in devs}, replies
    finally:
        for d in devs:
            d.close()


def predicted_upload_ms(fl_id: str, dev) -> int:  # type: ignore[no-untyped-def]
    """When ``fl_id`` (asking at 0) uploads: its profile's latency/bandwidth on its counted bytes."""
    p = DeviceProfile(**LINKS[fl_id])
    return (math.ceil(p.download_ms(dev.received["startFLJob"])) + math.ceil(p.train_ms(16, 1))
            + math.ceil(p.upload_ms(dev.sent["updateModel"])))


def test_transfer_times_come_from_the_counted_bytes_so_compression_shortens_the_iteration(
        start_server, lenet_weights, tmp_path):
    rows = {}
    for compressed in (False, True):
        m, devs, replies = run_links(start_server, lenet_weights, tmp_path, compressed, window_ms=600_000)
        assert all(r.retcode == ResponseCode.SUCCEED for r in replies.values())
        # the devices' counts are the server's (byte-exact, issue 22), and they set the simulated times
        assert sum(d.received["startFLJob"] for d in devs.values()) == m["bytes_by_round"]["startFLJob"]["bytes_down"]
        assert sum(d.sent["updateModel"] for d in devs.values()) == m["bytes_by_round"]["updateModel"]["bytes_up"]
        want = max(predicted_upload_ms(k, d) for k, d in devs.items())  # both needed: the thin link's upload
        assert m["sim_end_ms"] - m["sim_start_ms"] == want
        rows[compressed] = (m, devs, want)
    (_, plain, t_plain), (_, comp, t_comp) = rows[False], rows[True]
    thin = DeviceProfile(**LINKS["thin"])
    saved = (math.ceil(thin.download_ms(plain["thin"].received["startFLJob"]))
             - math.ceil(thin.download_ms(comp["thin"].received["startFLJob"]))
             + math.ceil(thin.upload_ms(plain["thin"].sent["updateModel"]))
             - math.ceil(thin.upload_ms(comp["thin"].sent["updateModel"])))
    assert t_plain - t_comp == saved
    assert plain["thin"].sent["updateModel"] > 5 * comp["thin"].sent["updateModel"]  # DIFF_SPARSE_QUANT at 0.1
    assert plain["thin"].received["startFLJob"] > 3 * comp["thin"].received["startFLJob"]  # QUANT: 8 bits a value


def test_a_device_that_misses_the_window_uncompressed_makes_it_compressed(start_server, lenet_weights, tmp_path):
    window = 5_000  # from the fast device's upload; the thin link takes ~11 s plain, ~2 s compressed
    plain_m, plain, replies = run_links(start_server, lenet_weights, tmp_path, False, window)
    t_fast, t_thin = predicted_upload_ms("fast", plain["fast"]), predicted_upload_ms("thin", plain["thin"])
    assert t_thin >= t_fast + window  # what the counted bytes predict: it misses the window
    assert replies["thin"].retcode == ResponseCode.OutOfTime and replies["fast"].retcode == ResponseCode.SUCCEED
    assert (plain_m["valid"], plain_m["finished"], plain_m["late"]) == (False, 1, 1)
    assert plain_m["sim_end_ms"] - plain_m["sim_start_ms"] == t_fast + window
    comp_m, comp, replies = run_links(start_server, lenet_weights, tmp_path, True, window)
    t_fast, t_thin = predicted_upload_ms("fast", comp["fast"]), predicted_upload_ms("thin", comp["thin"])
    assert t_thin < t_fast + window  # compressed it makes it
    assert all(r.retcode == ResponseCode.SUCCEED for r in replies.values())
    assert (comp_m["valid"], comp_m["finished"], comp_m["late"]) == (True, 2, 0)
    assert comp_m["sim_end_ms"] - comp_m["sim_start_ms"] == t_thin


def test_the_simulated_clock_endpoint_and_a_census_of_no_askers(start_server, small_model, tmp_path):
    """What a simulation's devices read (GET /simulatedClock) and announce (POST): nobody online, the
    iteration ends at its windows' end without a request of the protocol, its devices counted offline."""
    import urllib.error
    import urllib.request

    srv = sim_server(start_server, small_model, tmp_path, {"a": {}, "b": {}}, start_fl_job_threshold=1,
                     fl_iteration_num=2, start_fl_job_time_window=1_000, update_model_time_window=2_000)
    url = srv.url.rstrip("/") + "/simulatedClock"

    def get(q: str = "") -> dict:
        with urllib.request.urlopen(url + q, timeout=30) as r:
            return json.loads(r.read())

    first = get()
    assert (first["iteration"], first["opened_ms"], first["start_window_ms"]) == (1, first["origin_ms"], 1_000)
    body = json.dumps({"iteration": 1, "askers": 0, "offline": 2}).encode()
    urllib.request.urlopen(urllib.request.Request(url, body, method="POST"), timeout=30).read()
    after = get("?after=1")
    assert after["iteration"] == 2 and after["opened_ms"] == first["origin_ms"] + 1_000 + 2_000
    m = srv.metrics()[0]
    assert (m["valid"], m["admitted"], m["offline"], m["requests"]) == (False, 0, 2, 0)
    bad = urllib.request.Request(url, b'{"iteration": 2}', method="POST")
    with pytest.raises(urllib.error.HTTPError, match="400"):
        urllib.request.urlopen(bad, timeout=30)
