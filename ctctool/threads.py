"""CPU threads: how many torch uses, and how its idle OpenMP threads wait.

Why a wait policy: torch's CPU kernels run on OpenMP (GNU libgomp in the PyPI wheels), whose
idle threads spin for a while before sleeping. When another process holds a core, the thread
that shares it is descheduled in the middle of every parallel region while its partner spins
waiting for it: measured on a 2-core machine beside one busy process, 40 training steps took
82 s with 2 threads against 50 s with 1, and a demo beside two jobs ran about 20x slower than
quiet. With ``OMP_WAIT_POLICY=PASSIVE`` idle threads sleep at once and the loaded case keeps
near the 1-thread speed (``make bench``, ``bench-out/threads.md``, measures all of it).
"""

from __future__ import annotations

import os
import sys

DEFAULT_THREADS = 2  # 2 beat 1 on a quiet 2-core machine (1.4x); more than the cores only adds contention
WAIT_POLICY = "PASSIVE"


def apply_wait_policy() -> bool:
    """Set ``OMP_WAIT_POLICY`` to passive for this process unless the user chose one; libgomp
    reads it once, when torch is first imported, so this must run before that. Returns whether
    the setting can still take effect (False when torch was imported already)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    return "torch" not in sys.modules


def default_threads() -> int:
    """Torch threads when the user gives none: DEFAULT_THREADS, or fewer cores (those this
    process may run on: a container's or taskset's share, not the machine's)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(DEFAULT_THREADS, cores))
