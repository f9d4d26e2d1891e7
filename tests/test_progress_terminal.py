"""What a person watching `simulate` / `demo` sees: one job bar over a live iteration bar, one line per iteration."""
from __future__ import annotations

import logging

from pyflclient.client.progress import RoundProgress
from pyflclient.client.results import IterationSummary


def test_one_job_bar_a_live_iteration_bar_and_one_summary_line_per_iteration(capsys, caplog):
    summaries = {it: IterationSummary(it, 2, 0.5 + it / 10, 0.6 + it / 10, 0.4 + it / 10, 1.0) for it in (1, 2, 3)}
    closed: list[int] = []
    progress = RoundProgress(3, True, summaries.get, lambda c, s: closed.append(c.iteration))
    with caplog.at_level(logging.WARNING):  # the default of `pyflclient` without -v
        for it in (1, 2, 3):
            for client in ("a", "b"):
                for stage, samples in (("admitted", 96), ("trained", 96), ("uploaded", 96), ("evaluated", 32)):
                    if stage == "uploaded":  # the upload's bytes, as the device counts them, come before its progress
                        progress.event(client, "traffic", ("updateModel", 250_000, 1_000))
                    progress.event(client, "progress", (it, stage, samples))
                progress.event(client, "iteration", (it,))
            progress.settle()
        progress.settle(final=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and closed == [1, 2, 3]
    assert lines[0].startswith("iteration 1: AVG 0.6000 TOP5 0.7000 LOW5 0.5000 (2 of 2 clients evaluated); "
                               "2 admitted, 2 trained, 2 uploaded;")
    frames = err.replace("\r", "\n")
    assert "job: 100%" in frames and "3/3" in frames  # the job bar, finished, stays
    assert "iteration 2/3" in frames and "0.50 MB up" in frames  # the live bar of an iteration, with the MB counted
    assert caplog.records == []  # the per-iteration line is logged at INFO: shown only with -v
