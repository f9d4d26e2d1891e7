"""``pyflclient convert``: the MindIR → ``.ms`` converter with the MindSpore Lite converter's flags.

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
