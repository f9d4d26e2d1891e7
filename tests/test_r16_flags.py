"""r1.6's ``run_client_x86.py`` flags on ``pyflclient simulate``: accepted, with r1.6's meaning.

No JVM here: the flags are parsed and turned into the clients' FLParameters.
"""
from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import pytest

from conftest import LENET_MS
from pyflclient.cli_parser import SuggestingArgumentParser
from pyflclient.client import r16
from pyflclient.client.cli import add_simulate_arguments, build_params

#: every flag of r1.6's run_client_x86.py (tests/st/fl/cross_device_lenet, r1.6-era), in its order
R16_SCRIPT_FLAGS = ["jarPath", "case_jarPath", "train_dataset", "test_dataset", "vocal_file", "ids_file", "path_regex",
                    "flName", "train_model_path", "infer_model_path", "train_ms_name", "infer_ms_name",
                    "ssl_protocol", "deploy_env", "domain_name", "cert_path", "use_elb", "server_num", "task",
                    "thread_num", "cpu_bind_mode", "train_weight_name", "infer_weight_name", "name_regex",
                    "server_mode", "batch_size", "client_num"]


def parser() -> SuggestingArgumentParser:
    p = SuggestingArgumentParser(prog="pyflclient simulate")
    add_simulate_arguments(p)
    return p


@pytest.fixture
def layout(tmp_path: Path, bundled_clients) -> tuple[Path, Path]:
    from pyflclient.data import copy_models

    data = tmp_path / "data"
    for c in bundled_clients[:2]:
        shutil.copytree(c.folder, data / c.folder.name)
    copy_models(LENET_MS, 2, tmp_path / "ms")
    return data, tmp_path / "ms"


def parse(*flags: str) -> argparse.Namespace:
    return parser().parse_args(["--train_dataset", "d", "--train_model_path", "m", *flags])


def test_every_flag_of_r16s_script_is_a_simulate_flag() -> None:
    known = {s for a in parser()._actions for s in a.option_strings}
    assert [f for f in R16_SCRIPT_FLAGS if f"--{f}" not in known] == []


def test_null_means_absent_for_the_flags_that_name_files() -> None:
    args = parse("--vocal_file=null", "--ids_file=null", "--test_dataset=null", "--train_weight_name=null",
                 "--infer_weight_name=null", "--cert_path=null")
    assert (args.vocal_file, args.ids_file, args.test_dataset, args.train_weight_name, args.infer_weight_name,
            args.cert_path) == (None,) * 6


def test_cert_path_is_read_for_https_only() -> None:
    http = parse("--domain_name=http://127.0.0.1:6666", "--cert_path=certs/CARoot.pem")
    r16.apply(http)
    assert http.cert_path is None
    https = parse("--domain_name=https://127.0.0.1:6666", "--cert_path=certs/CARoot.pem")
    r16.apply(https)
    assert https.cert_path == "certs/CARoot.pem"


def test_a_flag_with_nothing_to_act_on_is_logged_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    args = parse("--path_regex=;", "--name_regex=::")
    with caplog.at_level(logging.DEBUG, logger="pyflclient.client.r16"):
        r16.apply(args)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("--path_regex ;" in m for m in lines) == 1 and sum("--name_regex ::" in m for m in lines) == 1
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize("flags, says", [
    (["--flName=com.mindspore.flclient.demo.albert.AlbertClient", "--vocal_file=vocab.txt"], "Albert case"),
    (["--input_shape=1,32,32,3"], "input shape is fixed"),
])
def test_a_flag_needing_an_absent_behaviour_stops_with_one_line(flags: list[str], says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        r16.apply(parse(*flags))


def test_ssl_protocol_deploy_env_and_cpu_bind_mode_reach_every_client(layout: tuple[Path, Path]) -> None:
    data, models = layout
    args = parser().parse_args([f"--train_dataset={data}", f"--train_model_path={models}", "--ssl_protocol=TLSv1.3",
                                "--deploy_env=android", "--cpu_bind_mode=BIND_LARGE_CORE", "--client_num=2",
                                "--cert_path=missing.pem"])
    _, params = build_params(args)
    assert [(p.ssl_protocol, p.deploy_env, p.cpu_bind_mode, p.cert_path) for p in params] == \
        [("TLSv1.3", "android", "BIND_LARGE_CORE", None)] * 2


def test_a_value_the_rulebook_refuses_names_the_field(layout: tuple[Path, Path]) -> None:
    from pyflclient.client.errors import InvalidParameterError

    data, models = layout
    args = parser().parse_args([f"--train_dataset={data}", f"--train_model_path={models}", "--ssl_protocol=SSLv3"])
    with pytest.raises(InvalidParameterError, match="ssl_protocol"):
        build_params(args)


def test_pki_verify_needs_the_devices_pki_path_in_python_too() -> None:
    from pyflclient.client.errors import InvalidParameterError
    from pyflclient.client.params import FLParameter

    with pytest.raises(InvalidParameterError, match="pki_path.*pki issue"):
        FLParameter(domain_name="http://127.0.0.1:6666", train_model_path=LENET_MS, pki_verify=True)
