"""The seed's basic start command, verbatim, and the seed's four greps.

MindSpore r1.6's tutorial starts the clients with ``python run_client_x86.py`` and this
exact set of flags (8 clients, ELB over 4 server ports), with the paths made absolute.
Here ``python run_client_x86.py`` becomes ``pyflclient simulate`` (train, getModel) or
``python -m pyflclient.run_client_x86`` (inference); nothing else changes — not even the
certificate path, which r1.6 reads only for https and which does not exist here. The
seed's folders are laid out as it names them (``libs/jarX86``, ``case_jar``,
``data/femnist/3500_clients_bin``, ``ms/lenet``) and the server listens on 4 ports.
Then the seed's ``grep -r … client_0/client.log`` commands must print lines of the
shape the seed shows: ``INFO: <FLClient> ----------epoch:0,average loss:4.1258564 ----------``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from conftest import LENET_MS
from pyflclient.client.jvm import find_jars
from pyflclient.model import msfile
from test_server_group import consecutive_free_ports

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 8
ITERATIONS = 2

pytestmark = pytest.mark.timeout(600)


def seed_command(root: Path, port: int, task: str) -> list[str]:
    """The seed's flags in the seed's order and spelling, paths absolute under ``root``."""
    return [f'--jarPath={root}/libs/jarX86/mindspore-lite-java-flclient.jar',
            f'--case_jarPath={root}/case_jar/quick_start_flclient.jar',
            f'--train_dataset={root}/data/femnist/3500_clients_bin/', '--test_dataset=null', '--vocal_file=null',
            '--ids_file=null', '--flName=com.mindspore.flclient.demo.lenet.LenetClient',
            f'--train_model_path={root}/ms/lenet/', f'--infer_model_path={root}/ms/lenet/',
            '--train_ms_name=lenet_train', '--infer_ms_name=lenet_train', f'--domain_name=http://127.0.0.1:{port}',
            f'--cert_path={root}/certs/https_signature_certificate/client/CARoot.pem', '--use_elb=true',
            '--server_num=4', f'--client_num={CLIENTS}', '--thread_num=1', '--server_mode=FEDERATED_LEARNING',
            '--batch_size=32', f'--task={task}']


def run(root: Path, entry: list[str], port: int, task: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", *entry, *seed_command(root, port, task)], cwd=root, env=env,
                          text=True, capture_output=True, timeout=500)


def grep(root: Path, pattern: str, *options: str) -> list[str]:
    """The seed's ``grep -r "<pattern>" client_0/client.log``."""
    out = subprocess.run(["grep", "-r", *options, pattern, "client_0/client.log"], cwd=root, text=True,
                         capture_output=True)
    return out.stdout.splitlines()


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory, bundled_clients) -> Iterator[tuple[Path, object]]:
    from pyflclient.data import copy_models
    from pyflclient.server import Server

    root = tmp_path_factory.mktemp("seed")
    client_jar, case_jar = find_jars()
    for folder, jar in (("libs/jarX86", client_jar), ("case_jar", case_jar)):
        (root / folder).mkdir(parents=True)
        shutil.copy(jar, root / folder / jar.name)
    data = root / "data/femnist/3500_clients_bin"
    data.mkdir(parents=True)
    for c in bundled_clients[:CLIENTS]:
        shutil.copytree(c.folder, data / c.folder.name)
    copy_models(LENET_MS, CLIENTS, root / "ms/lenet")
    port = consecutive_free_ports(4)
    with Server(LENET_MS, fl_server_port=port, server_num=4, start_fl_job_threshold=CLIENTS,
                fl_iteration_num=ITERATIONS, client_epoch_num=1, client_batch_size=32) as srv:
        yield root, srv


def test_seed_command_trains_every_client_and_the_seeds_greps_show_its_lines(seed) -> None:
    root, srv = seed
    port = int(srv.url.rsplit(":", 1)[1])
    done = run(root, ["pyflclient.cli", "simulate"], port, "train")
    assert done.returncode == 0, done.stdout + done.stderr
    assert srv.wait_finished(timeout=30)
    losses = grep(root, "average loss:")
    shape = r".*INFO: <FLClient> ----------epoch:(\d+),average loss:[0-9.]+ ----------"
    assert [int(re.fullmatch(shape, line).group(1)) for line in losses] == [0] * ITERATIONS, losses
    accs = grep(root, "evaluate acc:")
    assert len(accs) == ITERATIONS
    assert all(re.fullmatch(r".*INFO: <FLClient> \[evaluate\] evaluate acc: [0-9.]+", line) for line in accs), accs
    for i in range(CLIENTS):
        assert (root / f"client_{i}" / "client.log").is_file()


def test_seed_command_infers_and_the_seeds_grep_shows_the_labels(seed) -> None:
    root, srv = seed
    port = int(srv.url.rsplit(":", 1)[1])
    done = run(root, ["pyflclient.run_client_x86"], port, "inference")
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = grep(root, "the predicted labels:")
    m = re.fullmatch(r".*INFO: <FLClient> \[model inference\] the predicted labels: \[([0-9, ]+)\]", line)
    assert m, line
    assert all(0 <= int(v) < 62 for v in m.group(1).split(","))


def test_seed_command_gets_the_model_and_the_log_says_so(seed) -> None:
    root, srv = seed
    port = int(srv.url.rsplit(":", 1)[1])
    model = root / "ms/lenet/lenet_train0.ms"
    shutil.copy(LENET_MS, model)  # forget the trained model: getModel must bring the global one back
    done = run(root, ["pyflclient.cli", "simulate"], port, "getModel")
    assert done.returncode == 0, done.stdout + done.stderr
    # the seed shows this line without a grep command; -F: the brackets are no character class
    got = grep(root, "[getModel] get response from server ok!", "-F")
    assert got and all(line.endswith("INFO: <FLClient> [getModel] get response from server ok!") for line in got)
    saved = msfile.trainable_weights(model)
    for name, arr in srv.global_model().items():
        np.testing.assert_array_equal(saved[name].reshape(-1), arr.reshape(-1), err_msg=name)


def test_a_misspelt_seed_flag_is_refused_with_the_flag_it_resembles(seed) -> None:
    root, _ = seed
    flags = [f.replace("--vocal_file", "--vocab_file") for f in seed_command(root, 1, "train")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "pyflclient.run_client_x86", *flags],
                          cwd=root, env=env, text=True, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert "--vocab_file (did you mean --vocal_file?)" in done.stderr.splitlines()[-1]
