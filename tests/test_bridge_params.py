"""FLParameter: validation in Python before the JVM sees a value (no JVM needed here)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pyflclient.client.errors import InvalidParameterError
from pyflclient.client.params import DataFiles, FLParameter
from pyflclient.model import LENET_TRAIN_MS

SAMPLE = 32 * 32 * 3


def write_split(folder: Path, user: str, split: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.zeros((n, 32, 32, 3), np.float32).tofile(folder / f"{user}_bn_1_{split}_data.bin")
    np.arange(n, dtype=np.int32).tofile(folder / f"{user}_bn_1_{split}_label.bin")


@pytest.fixture()
def client_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "f0000_14"
    write_split(folder, "f0000_14", "train", 64)
    write_split(folder, "f0000_14", "test", 32)
    return folder


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "ms" / "lenet_train0.ms"
    path.parent.mkdir()
    shutil.copyfile(LENET_TRAIN_MS, path)  # batch 32: the only part of the model read here
    return path


def good(client_dir: Path, model: Path, **changes) -> FLParameter:
    values = dict(domain_name="http://127.0.0.1:6666", train_dataset=client_dir, train_model_path=model)
    values.update(changes)
    return FLParameter(**values)


def test_builder_and_keyword_forms_build_equal_parameters(client_dir, model):
    built = (FLParameter.builder().domain_name("http://127.0.0.1:6666").train_dataset(client_dir)
             .train_model_path(model).batch_size(32).build())
    assert built == good(client_dir, model, batch_size=32)


def test_folder_resolves_to_absolute_train_and_test_files(client_dir, model, monkeypatch):
    monkeypatch.chdir(client_dir.parent.parent)
    p = good(Path("data/f0000_14"), Path("ms/lenet_train0.ms"))
    assert p.train_dataset.data == client_dir / "f0000_14_bn_1_train_data.bin"
    assert p.train_dataset.label.is_absolute() and p.train_dataset.num_samples == 64
    assert p.test_dataset.data == client_dir / "f0000_14_bn_1_test_data.bin" and p.test_dataset.num_samples == 32
    assert p.infer_dataset == p.test_dataset
    assert p.train_model_path == model and p.infer_model_path == model


def test_replace_keeps_the_checked_files_and_still_checks_them(client_dir, model, monkeypatch):
    monkeypatch.chdir(client_dir.parent.parent)
    p = good(Path("data/f0000_14"), Path("ms/lenet_train0.ms"))
    monkeypatch.chdir(model.parent)  # a relative path would now resolve elsewhere: the checked ones are absolute
    q = p.replace(client_id="c7", log_path=Path("c7.log"))
    assert q.train_dataset == p.train_dataset and q.test_dataset == p.test_dataset
    assert q.client_id == "c7" and q.log_path == model.parent / "c7.log"
    (client_dir / "f0000_14_bn_1_test_label.bin").unlink()  # what replace checks again
    with pytest.raises(InvalidParameterError, match="test_dataset.*label file .* does not exist"):
        p.replace(client_id="c8")


def test_explicit_data_and_label_files_are_accepted(client_dir, model):
    data, label = client_dir / "f0000_14_bn_1_train_data.bin", client_dir / "f0000_14_bn_1_train_label.bin"
    p = FLParameter.builder().domain_name("https://10.0.0.1:6668").train_dataset(data, label) \
        .train_model_path(model).build()
    assert (p.train_dataset.data, p.train_dataset.label) == (data, label)
    assert good(client_dir, model, train_dataset=data).train_dataset == p.train_dataset


def test_trailing_slash_of_domain_name_is_dropped(client_dir, model):
    assert good(client_dir, model, domain_name="http://127.0.0.1:6666/").domain_name == "http://127.0.0.1:6666"


def test_retry_bounds_are_left_to_java_unless_set_and_the_builder_sets_both(client_dir, model):
    assert good(client_dir, model).retry_timeout_s is None and good(client_dir, model).max_retries is None
    built = (FLParameter.builder().domain_name("http://127.0.0.1:6666").train_dataset(client_dir)
             .train_model_path(model).retry_timeout_s(600).max_retries(20).build())
    assert built == good(client_dir, model, retry_timeout_s=600, max_retries=20)


def test_parameter_is_frozen(client_dir, model):
    p = good(client_dir, model)
    with pytest.raises(AttributeError):
        p.batch_size = 8  # type: ignore[misc]
    assert p.replace(thread_num=2).thread_num == 2


@pytest.mark.parametrize("field, value, says", [
    ("domain_name", "ftp://127.0.0.1:6666", "scheme://host:port"),
    ("domain_name", "127.0.0.1:6666", "scheme://host:port"),
    ("domain_name", "http://:6666", "scheme://host:port"),
    ("domain_name", "http://127.0.0.1:99999", "scheme://host:port"),
    ("domain_name", "http://127.0.0.1:6666/startFLJob", "scheme://host:port"),
    ("fl_name", "", "class name"),
    ("train_dataset", "missing_folder", "does not exist"),
    ("test_dataset", "missing_folder", "does not exist"),
    ("infer_dataset", "missing_folder", "does not exist"),
    ("train_model_path", "missing.ms", "does not exist"),
    ("infer_model_path", "missing.ms", "does not exist"),
    ("cert_path", "missing.pem", "does not exist"),
    ("batch_size", 0, "at least 1"),
    ("batch_size", 64, "exported with batch 32"),
    ("batch_size", 3.5, "integer"),
    ("thread_num", 0, "at least 1"),
    ("server_num", 0, "between 1 and 1000"),
    ("server_num", 1001, "between 1 and 1000"),
    ("sleep_time_ms", -1, "at least 0"),
    ("time_out_s", 0, "at least 1 second"),
    ("max_retries", True, "integer"),
    ("max_retries", -1, "at least 0"),
    ("retry_timeout_s", 0, "at least 1 second"),
    ("deploy_env", "ios", "x86 or android"),
    ("cpu_bind_mode", "BIND_ALL", "NOT_BINDING_CORE"),
    ("ssl_protocol", "SSLv3", "TLSv1.2"),
    ("use_elb", "yes", "bool"),
    ("client_id", "", "must not be empty"),
])
def test_each_bad_field_is_a_value_error_naming_it(client_dir, model, tmp_path, monkeypatch, field, value, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:
        good(client_dir, model, **{field: value})
    assert isinstance(info.value, InvalidParameterError)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ") and says in str(info.value)


def test_fewer_training_samples_than_the_models_batch_are_refused(tmp_path, model):
    folder = tmp_path / "small"
    write_split(folder, "u", "train", 20)
    with pytest.raises(InvalidParameterError, match="fewer than one batch of 32") as info:
        good(folder, model)
    assert info.value.field == "train_dataset"


def test_unset_batch_size_is_the_models(client_dir, model):
    assert good(client_dir, model).batch_size is None
    assert good(client_dir, model, batch_size=32).batch_size == 32


def test_use_elb_needs_a_port(client_dir, model):
    with pytest.raises(InvalidParameterError, match="no port") as info:
        good(client_dir, model, domain_name="http://127.0.0.1", use_elb=True)
    assert info.value.field == "domain_name"


def test_missing_train_model_path_says_how_to_get_one(client_dir):
    with pytest.raises(InvalidParameterError, match="copy-models"):
        FLParameter(domain_name="http://127.0.0.1:6666", train_dataset=client_dir)


def test_builder_without_domain_name_names_it(model):
    with pytest.raises(InvalidParameterError, match="domain_name"):
        FLParameter.builder().train_model_path(model).build()


def test_folder_without_exactly_one_pair_is_refused(tmp_path, model):
    folder = tmp_path / "two"
    write_split(folder, "a", "train", 32)
    write_split(folder, "b", "train", 32)
    with pytest.raises(InvalidParameterError, match="exactly one"):
        good(folder, model)


def test_label_and_data_files_of_different_sizes_are_refused(tmp_path, model):
    folder = tmp_path / "bad"
    write_split(folder, "u", "train", 32)
    np.arange(33, dtype=np.int32).tofile(folder / "u_bn_1_train_label.bin")
    with pytest.raises(InvalidParameterError, match="same client") as info:
        good(folder, model)
    assert info.value.field == "train_dataset"


def test_data_files_count_samples_from_the_label_file(client_dir):
    files = DataFiles.resolve(client_dir, "test", "test_dataset")
    assert files.num_samples == 32
