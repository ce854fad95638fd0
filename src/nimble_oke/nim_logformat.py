"""What NIM writes in its log while it fills its model cache, named once.

Read by the live wait (kube/wait.py), ``nimble troubleshoot`` (kube/diagnose.py), the
cache warm-up, and written by the NIM emulator (sim/nim/coldstart.py), which must print what
the readers look for. A top-level module like :mod:`nimble_oke.ngc_keys`: ``kube`` and
``nim`` are independent layers (``.importlinter``), and the simulator may import neither
product services nor the CLI.

The lines (NIM 1.x, ``ngc_download.py`` / ``ngc_injector.py``)::

    INFO 2026-11-27 13:00:04.101 ngc_download.py:61] Downloading 7 files (16.07 GB) to …
    INFO 2026-11-27 13:00:05.123 ngc_download.py:88] Downloading model files:  40% (…)
    INFO 2026-11-27 13:03:10.002 ngc_download.py:120] Model download complete
    INFO 2026-11-27 13:00:04.101 ngc_injector.py:147] Model files found in cache /opt/nim/…
"""

from __future__ import annotations

import re

# One progress line: the percentage of the model files downloaded so far.
DOWNLOAD_PROGRESS_RE = re.compile(r"Downloading model files:\s+(\d{1,3})%")
# The first line of a download (the file count), or a progress line.
DOWNLOAD_START_RE = re.compile(r"Downloading \d+ files|Downloading model files")
DOWNLOAD_COMPLETE = "Model download complete"
FOUND_IN_CACHE = "Model files found in cache"


def download_percent(line: str) -> int | None:
    """The download percentage in a NIM log line, if it is a progress line."""
    match = DOWNLOAD_PROGRESS_RE.search(line)
    return int(match.group(1)) if match else None


def progress_message(percent: int) -> str:
    """The start of a progress line's message, as NIM prints it (percent right-aligned)."""
    return f"Downloading model files: {percent:3d}%"
