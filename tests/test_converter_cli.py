"""``pyflclient convert``: converter_lite's flags, its two result lines, its exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pyflclient.cli import main
from pyflclient.model import msfile
from pyflclient.model.lenet import WEIGHT_NAMES

ROOT = Path(__file__).resolve().parents[1]


def convert(capsys, *flags: str) -> tuple[int, str]:
    code = main(["convert", *flags])
    return code, capsys.readouterr().out


def test_a_framework_other_than_mindir_fails_with_the_failed_line(capsys, tmp_path):
    code, out = convert(capsys, "--fmk=TF", f"--modelFile={tmp_path / 'm.pb'}", f"--outputFile={tmp_path / 'm'}")
    assert code != 0
    assert out.startswith("CONVERT RESULT FAILED:") and "only MINDIR" in out


def test_without_mindspore_convert_fails_saying_to_install_the_extra(tmp_path):
    # a stand-in package that fails to import the way a missing mindspore does
    fake = tmp_path / "site" / "mindspore"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'mindspore'\")\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(ROOT)]))
    code = textwrap.dedent(f"""
        import sys
        from pyflclient.cli import main
        sys.exit(main(["convert", "--fmk=MINDIR", "--modelFile={tmp_path / 'x.mindir'}",
                       "--outputFile={tmp_path / 'x'}"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "CONVERT RESULT FAILED:" in proc.stdout
    assert "pip install 'pyflclient[mindspore]'" in proc.stdout


@pytest.fixture(scope="module")
def mindir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The LeNet train MindIR, exported once for the module (needs the mindspore extra)."""
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    pytest.importorskip("mindspore")
    from _model_support import working_directory

    from pyflclient.model.export import export_lenet

    scratch = tmp_path_factory.mktemp("convert_cli")
    with working_directory(scratch):
        return export_lenet(scratch / "ms" / "lenet" / "lenet_train.mindir", seed=5)


@pytest.mark.mindspore
class TestWithMindSpore:
    def test_converting_the_lenet_mindir_prints_success_and_writes_the_ms_file(self, capsys, mindir, tmp_path):
        code, out = convert(capsys, "--fmk=MINDIR", "--trainModel=true", f"--modelFile={mindir}",
                            f"--outputFile={tmp_path / 'lenet_train'}")
        assert code == 0 and out.strip().endswith("CONVERTER RESULT SUCCESS:0")
        assert list(msfile.trainable_weights(tmp_path / "lenet_train.ms")) == list(WEIGHT_NAMES)

    def test_an_output_name_ending_in_ms_is_kept(self, capsys, mindir, tmp_path):
        code, _ = convert(capsys, "--fmk=MINDIR", f"--modelFile={mindir}", f"--outputFile={tmp_path / 'a.ms'}")
        assert code == 0 and (tmp_path / "a.ms").is_file() and not (tmp_path / "a.ms.ms").exists()

    def test_train_model_false_writes_an_inference_model(self, capsys, mindir, tmp_path):
        code, _ = convert(capsys, "--fmk=MINDIR", "--trainModel=false", f"--modelFile={mindir}",
                          f"--outputFile={tmp_path / 'infer'}")
        model = msfile.load(tmp_path / "infer.ms")
        assert code == 0 and model.loss == -1
        assert {n.phase for n in model.nodes} == {msfile.Phase.FORWARD}

    def test_a_missing_model_file_fails_naming_it(self, capsys, mindir, tmp_path):
        code, out = convert(capsys, "--fmk=MINDIR", f"--modelFile={tmp_path / 'nope.mindir'}",
                            f"--outputFile={tmp_path / 'x'}")
        assert code != 0 and out.startswith("CONVERT RESULT FAILED:") and "nope.mindir" in out
        assert not (tmp_path / "x.ms").exists()

    def test_a_file_that_is_not_mindir_fails(self, capsys, mindir, tmp_path):
        bogus = tmp_path / "bogus.mindir"
        bogus.write_bytes(b"\xff\xfe not protobuf at all")
        code, out = convert(capsys, "--fmk=MINDIR", f"--modelFile={bogus}", f"--outputFile={tmp_path / 'x'}")
        assert code != 0 and "CONVERT RESULT FAILED:" in out and "is not a MindIR" in out

    def test_unsupported_ops_are_listed_in_the_failed_line(self, capsys, mindir, tmp_path):
        from mindspore.train import mind_ir_pb2

        proto = mind_ir_pb2.ModelProto()
        proto.ParseFromString(mindir.read_bytes())
        relu = next(n for n in proto.graph.node if n.op_type.startswith("REF::ReLU"))
        conv = next(n for n in proto.graph.node if n.op_type.startswith("REF::Conv2D"))
        relu.op_type, conv.op_type = "REF::GeLU:6", "REF::DepthwiseConv2dNative:4"
        edited = tmp_path / "edited.mindir"
        edited.write_bytes(proto.SerializeToString())
        code, out = convert(capsys, "--fmk=MINDIR", f"--modelFile={edited}", f"--outputFile={tmp_path / 'x'}")
        assert code != 0 and "CONVERT RESULT FAILED:" in out
        assert "unsupported op(s) DepthwiseConv2dNative, GeLU" in out


@pytest.mark.mindspore
def test_the_tutorial_commands_export_and_convert_lenet_with_other_classes_and_batch(tmp_path):
    pytest.importorskip("mindspore")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               ONEDNN_MAX_CPU_ISA="AVX2")
    export = subprocess.run([sys.executable, str(ROOT / "examples" / "lenet" / "run_export_lenet.py"),
                             "--mindir_path", "ms/lenet/lenet_train.mindir", "--num_class", "10",
                             "--batch_size", "16"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert export.returncode == 0, export.stderr[-3000:]
    convert_cmd = [sys.executable, "-m", "pyflclient.cli", "convert", "--fmk=MINDIR", "--trainModel=true",
                   "--modelFile=ms/lenet/lenet_train.mindir", "--outputFile=ms/lenet/lenet_train"]
    converted = subprocess.run(convert_cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert converted.returncode == 0 and "CONVERTER RESULT SUCCESS:0" in converted.stdout, converted.stderr[-3000:]
    model = msfile.load(tmp_path / "ms" / "lenet" / "lenet_train.ms")
    assert model.tensors[model.data_input].shape == (16, 3, 32, 32)
    assert model.tensors[model.logits].shape == (16, 10)
    assert list(model.trainable_weights()) == list(WEIGHT_NAMES)
