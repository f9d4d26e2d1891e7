"""The live dashboard in a real headless browser (Debian's chromium through chromium-driver and selenium).

A job runs with devices that speak the protocol: iteration 1 finishes and its model is
reported on by the devices (pushMetrics), iteration 2 is half way (3 admitted, 2 of 3
uploads in). The page is loaded from the server, its numbers are read from the DOM and
checked against that state, then iteration 2 finishes and the page must follow without
a reload. A screenshot of it is kept (tmp folder; docs/img/dashboard.png is one).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import upload_of
from pyflclient.wire.protocol import ResponseCode

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                 reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)  # the given driver: nothing downloaded
    yield driver
    driver.quit()


def text_becomes(browser, element_id: str, expected: str, timeout: float = 20) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda b: b.find_element(By.ID, element_id).text == expected,
                                          f"#{element_id} never showed {expected!r}")
    return browser.find_element(By.ID, element_id).text


def test_the_dashboard_shows_a_running_job_and_follows_it(browser, start_server, device, small_model, tmp_path):
    from selenium.webdriver.common.by import By

    srv = start_server(small_model, start_fl_job_threshold=3, fl_iteration_num=3, fl_name="WatchedJob")
    devices = [device(srv.url, fl_id=f"d{i}", data_size=10 * (i + 1)) for i in range(3)]
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    for i, d in enumerate(devices):
        assert d.update_model(1, upload_of(small_model, d.data_size, i)[1]).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(1, timeout=30)
    for d, (loss, acc) in zip(devices, ((0.9, 0.5), (0.7, 0.75), (0.8, 0.25))):
        assert d.push_metrics(loss, acc).retcode == ResponseCode.SUCCEED
    for d in devices:
        assert d.start_fl_job().retcode == ResponseCode.SUCCEED
    for i, d in enumerate(devices[:2]):
        assert d.update_model(2, upload_of(small_model, d.data_size, 10 + i)[1]).retcode == ResponseCode.SUCCEED
    assert srv.dashboard_url == srv.url + "/"

    browser.get(srv.dashboard_url)
    assert text_becomes(browser, "uploaded", "2") == "2"
    read = {i: browser.find_element(By.ID, i).text for i in (
        "fl-name", "iteration", "iterations", "phase", "admitted", "threshold", "done", "device-iteration",
        "device-count", "accuracy-avg", "accuracy-top5", "accuracy-low5", "loss-avg")}
    assert read == {"fl-name": "WatchedJob", "iteration": "2", "iterations": "3", "phase": "upload", "admitted": "3",
                    "threshold": "3", "done": "1", "device-iteration": "1", "device-count": "3",
                    "accuracy-avg": "0.5000", "accuracy-top5": "0.5000", "accuracy-low5": "0.5000",
                    "loss-avg": "0.8000"}
    bar = browser.find_element(By.ID, "upload-bar").get_attribute("style")
    assert "width: 66.6" in bar
    rows = browser.find_elements(By.CSS_SELECTOR, "#timings tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["1"]
    refusals = browser.find_elements(By.CSS_SELECTOR, "#refusals tbody tr")
    assert refusals == []
    assert len(browser.find_elements(By.CSS_SELECTOR, "#accuracy-chart polyline")) == 3
    browser.save_screenshot(str(tmp_path / "dashboard.png"))
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000

    # the job moves on: the page follows without a reload
    assert devices[2].update_model(2, upload_of(small_model, 30, 12)[1]).retcode == ResponseCode.SUCCEED
    assert srv.wait_iteration(2, timeout=30)
    assert text_becomes(browser, "iteration", "3") == "3"
    assert text_becomes(browser, "done", "2") == "2"
    assert browser.find_element(By.ID, "phase").text == "waiting"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timings tbody tr")) == 2


def test_the_dashboard_is_read_only(start_server, small_model):
    import urllib.error
    import urllib.request

    srv = start_server(small_model)
    for path in ("/", "/api/status", "/metrics"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(srv.url + path, data=b"x", method="POST"), timeout=10)
        assert err.value.code == 405
    assert Path(__file__).parent.parent.joinpath("pyflclient/server/dashboard/index.html").read_text().count(
        "http") == 0  # no CDN, nothing from outside
