"""Classes 1 and 2: who owns a run folder, and what happens when the launcher or a rank stops."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hstl_core.engine import LaunchError, launch, run_dir
from hstl_core.engine.ownership import RunFolderBusy, lock_path, own_run_folder

from faultkit import Launcher, processes_mentioning, wait_until

HOLD_LOCK = (
    "import sys, time\nfrom hstl_core.engine.ownership import own_run_folder\n"
    "with own_run_folder(sys.argv[1], 'train'):\n    print('held', flush=True)\n    time.sleep(60)\n"
)


def test_a_live_owner_is_named_and_a_dead_owners_lock_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=rf"PID {holder.pid} on .*another save_name"):
            with own_run_folder(tmp_path, "train"):
                pass
        with own_run_folder(tmp_path, "test"):
            pass  # evaluating while training runs is allowed: one lock per phase
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(lock_path(tmp_path, "train").read_text())["pid"] == holder.pid, "the dead owner's file stays"
    with own_run_folder(tmp_path, "train"):
        assert json.loads(lock_path(tmp_path, "train").read_text())["pid"] == os.getpid()


def rank_pids(rank_config: str) -> dict[int, int]:
    """{rank: pid} of the ranks (not torchrun) whose command line names ``rank_config``."""
    ranks = {}
    for pid in processes_mentioning(rank_config):
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK=") and b"torch.distributed.run" not in open(f"/proc/{pid}/cmdline", "rb").read():
                ranks[int(item[5:])] = pid
    return ranks


def folder_is_free(folder) -> bool:
    """True when this process can take the run folder's train lock (and gives it back)."""
    try:
        with own_run_folder(folder, "train"):
            return True
    except RunFolderBusy:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_second_launch_is_refused_and_a_dead_launcher_leaves_no_process(tiny_cfg, tmp_path, sig):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"].update(total_iter=100_000, save_iter=100_000, save_name="owned")
    first = Launcher(cfg, tmp_path, "first")
    try:
        first.wait_for("Iteration 00001")
        folder_config = (run_dir(cfg, "train", tmp_path) / "launch-train.yaml").read_text()
        with pytest.raises(RunFolderBusy, match=rf"PID {first.process.pid}\b"):
            launch(copy.deepcopy(cfg), nproc=2, output_root=tmp_path, quiet=True)
        assert (run_dir(cfg, "train", tmp_path) / "launch-train.yaml").read_text() == folder_config, "nothing rewritten"
        assert len(processes_mentioning(first.rank_config)) == 3, "torchrun and 2 ranks"
        first.process.send_signal(sig)
        first.process.wait(timeout=30)
        gone = wait_until(lambda: not processes_mentioning(first.rank_config), timeout=10)
        assert gone, f"still running 10 s after the launcher's {sig.name}: {processes_mentioning(first.rank_config)}"
        # A dying process loses its command line (its memory) before its files: the lock
        # may outlive the listing by a moment, never by seconds.
        assert wait_until(lambda: folder_is_free(run_dir(cfg, "train", tmp_path)), timeout=5), "the run folder stays locked"
    finally:
        first.cleanup()


@pytest.mark.slow
def test_a_stopped_rank_fails_the_run_after_collective_timeout(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["trainer_cfg"].update(total_iter=100_000, save_iter=100_000, save_name="stopped", collective_timeout=8)
    run = Launcher(cfg, tmp_path, "stopped")
    try:
        run.wait_for("Iteration 00001")
        ranks = rank_pids(run.rank_config)
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGSTOP)
        stopped = time.monotonic()
        output = run.rest(timeout=150)
        assert run.process.returncode != 0
        assert time.monotonic() - stopped < 120
        assert "LaunchError" in output and "collective_timeout (8 s)" in output, output[-3000:]
        assert wait_until(lambda: not processes_mentioning(run.rank_config), timeout=10)
    finally:
        run.cleanup()
