"""``python -m pyflclient.run_client_x86 …``: MindSpore r1.6's ``run_client_x86.py`` under its own name.

Scripts written for r1.6 call ``python run_client_x86.py --jarPath=… --task=train …``;
this runs ``pyflclient simulate`` with the same flags (see ``--help``), every client a
thread of one JVM instead of one ``java -jar`` process each.
"""
from __future__ import annotations

import sys

from .client.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="run_client_x86.py"))
