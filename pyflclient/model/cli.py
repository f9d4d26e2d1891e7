"""``pyflclient convert``: the MindIR → ``.ms`` converter with the MindSpore Lite converter's flags;
``pyflclient export``: the server's global model out to MindSpore (``.ckpt``) or numpy (``.npz``).

    pyflclient convert --fmk=MINDIR --trainModel=true \\
        --modelFile=ms/lenet/lenet_train.mindir --outputFile=ms/lenet/lenet_train

prints ``CONVERTER RESULT SUCCESS:0`` and writes ``ms/lenet/lenet_train.ms``, or prints
``CONVERT RESULT FAILED:<reason>`` and exits non-zero — the two lines scripts written for
MindSpore's ``converter_lite`` look for.
"""
from __future__ import annotations

import argparse
import logging

from pyflclient.model._mindspore import MindSporeMissingError

log = logging.getLogger(__name__)

SUCCESS_LINE = "CONVERTER RESULT SUCCESS:0"
FAILED_PREFIX = "CONVERT RESULT FAILED:"


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a MindSpore train MindIR into a .ms device model",
        description="Convert a MindIR exported from TrainOneStepCell (mindspore.export, file_format='MINDIR') "
                    "into the .ms device model the Java runtime trains. Needs the mindspore extra "
                    "(pip install 'pyflclient[mindspore]').")
    p.add_argument("--fmk", required=True, help="source framework: MINDIR (the only one supported)")
    p.add_argument("--modelFile", required=True, help="the .mindir file to convert")
    p.add_argument("--outputFile", required=True, help="output path; '.ms' is appended unless present")
    p.add_argument("--trainModel", type=_bool, default=True, metavar="{true,false}",
                   help="keep backward and optimizer ops for on-device training (default: true); "
                        "false keeps only what inference needs")
    p.set_defaults(func=run)

    e = subparsers.add_parser(
        "export", help="write the server's global model as a MindSpore .ckpt (or .npz)",
        description="Write the global model of a finished iteration from the server's checkpoint_dir as a MindSpore "
                    "checkpoint that mindspore.load_checkpoint loads into examples/lenet's LeNet5, or as a .npz. "
                    "The .ckpt needs the mindspore extra.")
    e.add_argument("--checkpoint-dir", required=True, help="the server's checkpoint_dir (iteration_*.npz)")
    e.add_argument("--iteration", type=int, default=None, help="which iteration's model (default: the newest)")
    e.add_argument("--out", required=True, help="file to write, e.g. lenet.ckpt")
    e.add_argument("--format", default="ckpt", choices=("ckpt", "npz"), help="ckpt (MindSpore) or npz (numpy)")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Exit 0 with one line naming the file; 2 with one line for a missing or damaged checkpoint; 1 when the
    output cannot be written or MindSpore is missing."""
    import sys

    from pyflclient.model.checkpoint import ExportError, export_global_model

    try:
        iteration, path = export_global_model(args.checkpoint_dir, args.out, iteration=args.iteration,
                                              fmt=args.format)
    except ExportError as exc:
        print(f"pyflclient export: {exc}", file=sys.stderr)
        return 2
    except (MindSporeMissingError, OSError) as exc:
        print(f"pyflclient export: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"wrote {path}: the global model of iteration {iteration} ({args.format})")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.fmk.upper() != "MINDIR":
        print(f"{FAILED_PREFIX} --fmk={args.fmk} is not supported: only MINDIR converts to a .ms model")
        return 1
    try:
        from pyflclient.model.converter import ConversionError, convert
    except MindSporeMissingError as e:  # pragma: no cover - the converter imports mindspore lazily
        print(f"{FAILED_PREFIX} {e}")
        return 1
    try:
        out = convert(args.modelFile, args.outputFile, train_model=args.trainModel)
    except MindSporeMissingError as e:
        print(f"{FAILED_PREFIX} {e}")
        return 1
    except ConversionError as e:
        print(f"{FAILED_PREFIX} {e}")
        return 1
    except OSError as e:
        print(f"{FAILED_PREFIX} cannot write {args.outputFile}: {e}")
        return 1
    log.info("wrote %s", out)
    print(SUCCESS_LINE)
    return 0
