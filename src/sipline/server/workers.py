"""`--workers N`: N api processes on one port, and the metrics directory they share.

The process `sipline serve` starts is one worker and starts the N-1 others, each the same
command with `--workers 1` and PARENT_ENV naming it. Their REST and store counts go to
prometheus_client's multiprocess files in one directory, made for this serve and removed
when it ends, so that any worker's /metrics sums all of them (server/metrics.py).
prometheus_client picks its file-backed values when it is first imported, from
MULTIPROC_ENV: `metrics_directory` sets or clears it before anything imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PARENT_ENV = "SIPLINE_WORKER_PARENT"  # set in --workers children: the pid of the process that started them
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's name for the directory


@contextmanager
def metrics_directory(workers: int) -> Iterator[str | None]:
    """The directory this serve's workers share their counts in, None for a single process.
    Enter it before importing prometheus_client (server/metrics.py)."""
    if PARENT_ENV in os.environ:  # a child: the directory its parent made
        yield os.environ.get(MULTIPROC_ENV)
        return
    os.environ.pop(MULTIPROC_ENV, None)  # one process counts in memory, whatever the environment says
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="sipline-metrics-")  # mode 0700: the counts are the owner's
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory  # a SIGTERMed serve returns too (server/app.py serve): the directory goes
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def start_workers(argv: list[str], count: int, directory: str | None) -> list[subprocess.Popen[bytes]]:
    """`count` more processes of this serve command on the same port."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "sipline", *argv, "--workers", "1"], env={**os.environ, PARENT_ENV: str(os.getpid())}
        )
        for _ in range(count)
    ]
    for child in children:
        threading.Thread(target=_bury, args=(child, directory), daemon=True).start()
    return children


def _bury(child: subprocess.Popen[bytes], directory: str | None) -> None:
    """When a worker ends, its files of live gauges go (prometheus_client's bookkeeping of a dead
    process); its counters stay, so that the sums never go back."""
    child.wait()
    if directory is not None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(child.pid, directory)
