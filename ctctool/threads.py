"""CPU threads: how many torch uses when the user does not say.

torch's CPU kernels run on OpenMP (GNU libgomp in the PyPI wheels), whose idle threads spin
for a while before sleeping. When another process holds a core, the thread that shares it is
descheduled in the middle of every parallel region while its partner spins waiting for it:
measured on a 2-core machine beside one busy process, 40 training steps took 53 s with 2
threads against 21 s with 1, and a demo beside two jobs ran about 20x slower than quiet.

So the count comes from the cores other processes left free, measured from ``/proc/stat``
over the command's own start-up (imports take about a second, so the sample costs no extra
time): machine CPU time in that window, less this process's own, per second of wall time.
On a quiet machine half its cores (2 to 8; see MAX_DEFAULT_THREADS), fewer where cores are
taken: one thread on a 2-core machine beside one busy process.
Making idle threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``) was tried and dropped: it
made 2 threads on a quiet machine 2.6x slower (41-45 s against 15-18 s for the same 40
steps, ``tests/bench/threads.py``). It is decided once per command; a training run keeps its
count when resumed (results differ in the last bits with the thread count, and a resumed run
must equal the uninterrupted one).
"""

from __future__ import annotations

import os
import resource
import time

# The most processes any --workers may start (reading, training's data loading, synth): each
# imports the toolkit (about 200 MB), so a typo of 1000 would ask for hundreds of GB.
MAX_WORKERS = 256


def check_workers(workers: object, *, least: int = 0) -> None:
    """Raise OptionError unless ``workers`` is a whole number of processes in least..MAX_WORKERS."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not least <= workers <= MAX_WORKERS:
        from .errors import OptionError

        raise OptionError(f"--workers must be {least} to {MAX_WORKERS} processes, got {workers!r}")


def _node_processes() -> int:
    """ctctool processes sharing this machine under torchrun (``LOCAL_WORLD_SIZE``), else 1."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or "1"))


def cores_per_process() -> int:
    """This process's share of the cores it may use (0 when there are more processes than cores)."""
    return usable_cores() // _node_processes()


def default_workers(gpu: bool = False) -> int:
    """Worker processes when --workers is not given: readers for decode, eval and align,
    DataLoader workers for train. On the CPU, none on a machine of 2 cores or fewer (the
    network's threads need them there), else a quarter of the cores, at most 4. When the network
    runs on a GPU its CPU threads idle and a step is short: loading the batch in the training
    process took 29-36% of a step on an H200 (bundled OCR and speech sets), 2 workers 1.4-2.7%
    (README, "Training step split"). Then up to 4, leaving the training process one core. Under
    torchrun the node's cores are shared among its processes (``LOCAL_WORLD_SIZE``)."""
    cores = cores_per_process()
    if gpu:
        return max(1, min(4, cores - 1))
    return 0 if cores <= 2 else min(4, cores // 4) or 1


DEFAULT_THREADS = 2  # the fewest on a quiet machine of 2+ cores: 2 beat 1 on a quiet 2-core machine (1.2-1.4x)
# More cores: half of them, at most 8. On a quiet 16-core machine (the H200 host, 2026-12-04) 8
# threads made an OCR training step 1.4-1.7x and a speech step 1.5-1.8x faster than 2, and
# decode (4 reader processes) 1.5x; 14 threads gained nothing on OCR steps and made decode
# without readers slower than 8. Half, not all: the other half is headroom for the reader or
# DataLoader processes and for jobs that start after this command sampled the load, since an
# over-subscribed OpenMP team collapses (the module docstring).
MAX_DEFAULT_THREADS = 8


MIN_SAMPLE_S = 0.1  # a shorter window is topped up by sleeping: /proc/stat counts in 10 ms ticks
_sample_start: tuple[float, int, float] | None = None  # (wall s, machine busy ticks, own CPU s)


def usable_cores() -> int:
    """Cores this process may run on: a container's or taskset's share, not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _machine_busy_ticks() -> int | None:
    """Busy clock ticks of all CPUs since boot (user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return user + nice + system + irq + softirq + steal


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_load_sample() -> None:
    """Begin the window over which other processes' CPU use is measured (the CLI calls this
    first thing, so the window spans its imports)."""
    global _sample_start
    ticks = _machine_busy_ticks()
    _sample_start = None if ticks is None else (time.monotonic(), ticks, _own_cpu_seconds())


def busy_cores_elsewhere() -> float | None:
    """Cores' worth of CPU that other processes used since ``start_load_sample`` (None where
    /proc/stat is not available, or no sample was started)."""
    if _sample_start is None:
        return None
    wall0, ticks0, own0 = _sample_start
    waited = time.monotonic() - wall0
    if waited < MIN_SAMPLE_S:
        time.sleep(MIN_SAMPLE_S - waited)
    ticks = _machine_busy_ticks()
    if ticks is None:
        return None
    wall = time.monotonic() - wall0
    others = (ticks - ticks0) / os.sysconf("SC_CLK_TCK") - (_own_cpu_seconds() - own0)
    return max(0.0, others / wall)


def default_threads() -> int:
    """Torch threads when the user gives none: half the cores this process may use (under
    torchrun, its share of the node's), at least DEFAULT_THREADS and at most
    MAX_DEFAULT_THREADS, and never more than the cores other processes leave free (rounded to
    the nearest: 0.6 cores used elsewhere on a 2-core machine leaves 1 thread, 0.4 leaves 2)."""
    processes = _node_processes()
    cores = max(1, cores_per_process())
    limit = min(cores, max(DEFAULT_THREADS, min(MAX_DEFAULT_THREADS, cores // 2)))
    busy = busy_cores_elsewhere()
    if busy is None or limit == 1:
        return limit
    free = (os.cpu_count() or cores) / processes - busy
    return max(1, min(limit, int(free + 0.5)))
