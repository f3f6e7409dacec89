"""The CPU thread policy (ctctool/threads.py): passive OpenMP waiting unless the user chose,
a default thread count from the cores other processes leave free, and a resumed training
run that keeps the thread count of the run it continues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ctctool import threads
from ctctool.cli.train import _run_config, _threads_of_run


@pytest.mark.parametrize(("busy", "expected"), [(None, 2), (0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (1.9, 1),
                                                (5.0, 1)])
def test_default_threads_leave_the_cores_others_use(monkeypatch, busy, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: busy)
    assert threads.default_threads() == expected


@pytest.mark.parametrize(("cores", "busy", "processes", "expected"), [
    (3, 0.0, 1, 2), (4, 0.0, 1, 2), (8, 0.0, 1, 4), (16, 0.0, 1, 8), (64, 0.0, 1, 8),
    (16, 10.0, 1, 6), (16, 15.2, 1, 1), (16, None, 1, 8), (16, 0.0, 2, 4), (16, 0.0, 8, 2), (16, 0.0, 16, 1)])
def test_many_cores_give_half_of_them_at_most_8(monkeypatch, cores, busy, processes, expected):
    """Half the cores (2-8) on a quiet machine, the free cores when others are busy, and under
    torchrun the node's cores shared among its processes."""
    monkeypatch.setattr(threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: busy)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
    assert threads.default_threads() == expected


def test_a_cpu_set_smaller_than_the_machine_bounds_the_threads(monkeypatch):
    """taskset or a container's cpuset: the cores this process may use, not the machine's."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: 0.0)
    assert threads.default_threads() == 2


def test_one_usable_core_means_one_thread(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    monkeypatch.setattr(threads, "busy_cores_elsewhere", lambda: 0.0)
    assert threads.default_threads() == 1


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat")
def test_a_busy_process_is_measured_and_our_own_work_is_not():
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        threads.start_load_sample()
        time.sleep(0.6)
        busy = threads.busy_cores_elsewhere()
    finally:
        competitor.kill()
        competitor.wait()
    assert busy is not None and busy >= 0.6
    threads.start_load_sample()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # this process's own work is not "elsewhere"
        pass
    assert threads.busy_cores_elsewhere() < busy


def test_the_cli_leaves_the_openmp_wait_policy_alone(tmp_path):
    """Passive waiting made 2 threads 2.6x slower on a quiet machine: the CLI must not set it."""
    code = "import os, ctctool.cli; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert default.stdout.strip() == "unset"


def test_a_resumed_run_keeps_the_thread_count_of_the_run(tiny_data, tmp_path):
    from typer.testing import CliRunner

    from ctctool.cli import app

    run_dir = tmp_path / "run"
    args = ["train", str(tiny_data["val"]), "-o", str(tmp_path / "m.pt"), "--run-dir", str(run_dir),
            "--max-steps", "2", "--batch-size", "4", "--hidden", "16", "--channels", "8,8,8", "--quiet",
            "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--threads", "1"], env={"CTCTOOL_THREADS": None})
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "config.json").read_text())["torch_threads"] == 1
    assert _threads_of_run(_run_config(str(run_dir))) == 1
    (run_dir / "config.json").write_text(json.dumps({"torch_threads": "lots"}))
    assert _threads_of_run(_run_config(str(run_dir))) is None  # a hand-edited value is ignored, not trusted
    assert _threads_of_run(_run_config(str(tmp_path / "nowhere"))) is None
