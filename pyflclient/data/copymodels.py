"""One device model file per simulated client (the seed's ``copy_ms.py`` step).

Every client of a simulation trains into its own ``.ms`` file (the device
saves its weights back into the file it loaded), so N clients need N copies:
``lenet_train.ms`` → ``ms/lenet/lenet_train0.ms … lenet_train{N-1}.ms``.
Real copies, not links, for that reason.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def copy_models(model: str | os.PathLike[str], num: int, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy ``model`` to ``out_dir/<stem><i><suffix>`` for i in 0..num-1; return the paths.

    Existing copies are overwritten, so a rerun resets every client to the
    given model.
    """
    src = Path(model)
    if not src.is_file():
        raise FileNotFoundError(
            f"model file {src} does not exist; make it with the export + convert steps (see docs) "
            "or point --model at the shipped LeNet .ms"
        )
    if num < 1:
        raise ValueError(f"the number of copies must be >= 1, got {num}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(num):
        dst = out / f"{src.stem}{i}{src.suffix}"
        shutil.copyfile(src, dst)
        paths.append(dst)
    log.info("copied %s to %d files in %s", src, num, out)
    return paths
