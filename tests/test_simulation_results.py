"""SimulationResults: AVG / TOP5 / LOW5 over clients, JSON / CSV / PNG files (no JVM needed)."""
from __future__ import annotations

import csv
import math
import threading

import pytest

from pyflclient.client.results import SimulationResults, summarize


def filled(n_clients: int = 8, iterations: int = 3) -> SimulationResults:
    res = SimulationResults([f"client_{c}" for c in range(n_clients)])
    for it in range(1, iterations + 1):
        for c in range(n_clients):
            res.record_loss(f"client_{c}", it, 1, 2.0 / it + c)
            res.record_loss(f"client_{c}", it, 2, 1.0 / it + c)
            res.record_accuracy(f"client_{c}", it, (c + 1) / 10 + it / 100)
    return res


def test_top5_and_low5_are_means_of_the_five_best_and_worst():
    avg, top5, low5 = summarize([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert avg == pytest.approx(0.45)
    assert top5 == pytest.approx((0.4 + 0.5 + 0.6 + 0.7 + 0.8) / 5)
    assert low5 == pytest.approx((0.1 + 0.2 + 0.3 + 0.4 + 0.5) / 5)


def test_fewer_than_five_clients_use_all_of_them():
    assert summarize([0.2, 0.4]) == pytest.approx((0.3, 0.3, 0.3))
    assert all(math.isnan(x) for x in summarize([]))


def test_summary_has_one_row_per_iteration_with_last_epoch_loss():
    rows = filled(n_clients=8, iterations=3).summary()
    assert [r.iteration for r in rows] == [1, 2, 3]
    assert rows[0].clients == 8
    assert rows[0].avg == pytest.approx(sum((c + 1) / 10 + 0.01 for c in range(8)) / 8)
    assert rows[2].avg_loss == pytest.approx(sum(1.0 / 3 + c for c in range(8)) / 8)


def test_recording_from_many_threads_loses_nothing():
    res = SimulationResults()

    def client(c: int) -> None:
        for it in range(200):
            res.record_accuracy(f"c{c}", it, 0.5)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(res.accuracy[it]) == 8 for it in range(200))


def test_json_round_trip_keeps_every_number(tmp_path):
    res = filled()
    back = SimulationResults.load_json(res.save_json(tmp_path / "results.json"))
    assert back.accuracy == res.accuracy and back.loss == res.loss and back.epoch_losses == res.epoch_losses
    assert back.summary() == res.summary()


def test_csv_has_summary_and_per_client_columns(tmp_path):
    res = filled(n_clients=3, iterations=2)
    res.accuracy[2].pop("client_1")  # a client that did not report an iteration leaves a blank
    with open(res.save_csv(tmp_path / "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    assert float(rows[0]["acc_client_2"]) == pytest.approx(0.31)
    assert rows[1]["acc_client_1"] == "" and rows[1]["clients"] == "2"
    assert float(rows[0]["top5_accuracy"]) == pytest.approx((0.11 + 0.21 + 0.31) / 3)


def test_plot_writes_a_png(tmp_path):
    files = filled().save(tmp_path / "out")
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["json"].name == "results.json" and files["csv"].name == "results.csv"


def test_an_iteration_trained_but_never_evaluated_has_no_summary_row(tmp_path):
    res = SimulationResults(["a", "b"])
    res.record_loss("a", 1, 1, 2.0)
    res.record_accuracy("a", 1, 0.5)
    res.record_loss("a", 2, 1, 1.5)  # the run failed before iteration 2's model came back
    assert [s.iteration for s in res.summary()] == [1]
    assert "nan" not in (res.save(tmp_path, plot=False)["csv"]).read_text().split("\n", 2)[1]
    assert res.loss[2] == {"a": 1.5}
