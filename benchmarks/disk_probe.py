"""What one small durable file write costs on this disk right now; both store benchmarks print it,
because on a shared machine the disk, not the code, often decides the rate."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def fsync_ms(folder: Path, count: int = 50) -> float:
    """Milliseconds for one fsync'd 1.5 kB file write, averaged over ``count`` writes in ``folder``."""
    probe = folder / "fsync-probe"
    probe.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(count):
        fd = os.open(probe / f"{i}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * 1500)
        os.fsync(fd)
        os.close(fd)
    took = (time.perf_counter() - t0) * 1000 / count
    shutil.rmtree(probe, ignore_errors=True)
    return took
