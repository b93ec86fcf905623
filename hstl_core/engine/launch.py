"""Start distributed training or testing from a notebook cell: ``launch(config, ...)``.

Functions defined in a notebook cannot be pickled into spawned workers, so the
workers are real ``torchrun`` processes running ``python -m hstl_core`` on a config
file, exactly as on the command line. Rank 0's output streams into the cell and
drives a progress bar showing the latest triplet loss and accuracy (``quiet``
keeps the bar only: the concise form for notebooks); every rank's output also
goes to files under ``<run_dir>/torchrun/`` (torchrun's own ``--log-dir``). Interrupting the cell stops
the whole process group; a failed rank raises :class:`LaunchError` with its last
log lines.

When things go wrong:
* a second ``launch`` of the same phase into a run folder that a live run owns is
  refused (:class:`~hstl_core.engine.ownership.RunFolderBusy`, naming its PID); the
  lock of a dead run is taken over;
* when the launching process dies (kernel restart, SIGTERM, SIGKILL), every rank
  exits within about a second (a watchdog on the launcher's PID) and torchrun with
  them, so no run keeps training or holding GPUs;
* a rank that stops answering (SIGSTOP, a hang) makes the others fail after
  ``collective_timeout`` seconds with an error saying so.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from hstl_core import config as config_module
from hstl_core import lifeline
from hstl_core.atomic import atomic_write_text
from hstl_core.engine.checkpoints import checkpoint_path, run_dir
from hstl_core.engine.main import LAUNCHER_ENV, RESULT_FILE
from hstl_core.engine.ownership import own_run_folder
from hstl_core.paths import OUTPUT_ROOT, REPO_ROOT

ITERATION_LINE = re.compile(r"Iteration (\d+)/(\d+)")
BAR_SCALARS = re.compile(r"\b(triplet_loss|softmax_accuracy)=([-\d.]+)")
TAIL_LINES = 40


class LaunchError(RuntimeError):
    """A rank failed; the message holds the failing rank's last log lines."""


@dataclass(frozen=True)
class Plan:
    """What ``launch`` will start: how many processes, on what, with which backend."""

    nproc: int
    backend: str
    device: str

    def describe(self) -> str:
        return f"{self.nproc} process(es), backend {self.backend}, {self.device}"


def choose_plan(nproc: int | None = None) -> Plan:
    """NCCL and every visible GPU when there are GPUs; gloo and 2 processes on a CPU.

    Only ``torch.cuda.device_count()`` is asked, which does not initialise CUDA in
    this (notebook) process.
    """
    gpus = torch.cuda.device_count()
    if gpus > 0:
        return Plan(nproc or gpus, "nccl", f"{gpus} visible GPU(s)")
    return Plan(nproc or 2, "gloo", "CPU")


def launch(
    cfg: dict | str | Path,
    nproc: int | None = None,
    phase: str = "train",
    iteration: int = 0,
    output_root: str | Path = OUTPUT_ROOT,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run ``torchrun -m hstl_core --cfgs ... --phase ...`` and return rank 0's result.

    ``cfg`` is a merged config dict or a YAML file (merged over the default here).
    Returns the phase's result dict (``scalars``, ``checkpoint`` for training; the
    protocol's tables for testing) plus ``"plan"`` and ``"log_dir"``.
    """
    if not isinstance(cfg, dict):
        cfg = config_module.load(cfg)
    plan = choose_plan(nproc)
    folder = run_dir(cfg, phase, output_root).resolve()
    with own_run_folder(folder, phase) as lock_fd:
        return _launch_owned(cfg, plan, folder, phase, iteration, output_root, quiet, lock_fd)


def _launch_owned(
    cfg: dict, plan: Plan, folder: Path, phase: str, iteration: int, output_root: str | Path, quiet: bool, lock_fd: int
) -> dict[str, Any]:
    """``launch`` once the run folder's lock is held (``lock_fd``, handed on to torchrun)."""
    cfg_file = folder / f"launch-{phase}.yaml"
    atomic_write_text(cfg_file, config_module.dump(cfg))
    result_file = folder / RESULT_FILE.format(phase=phase)
    result_file.unlink(missing_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="torchrun-", dir=folder))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={plan.nproc}",
        f"--log-dir={log_dir}", "--redirects=3", "--tee=3", "--local-ranks-filter=0",
        "-m", "hstl_core", "--cfgs", str(cfg_file), "--phase", phase, "--output_root", str(Path(output_root).resolve()),
    ]
    if iteration:
        command += ["--iter", str(iteration)]
    print(f"launch: {plan.describe()}; logs of every rank in {log_dir}", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_DISABLE="1")
    env[LAUNCHER_ENV] = lifeline.identity()
    if plan.backend == "gloo":
        env.update(MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME=env.get("GLOO_SOCKET_IFNAME", "lo"), OMP_NUM_THREADS="1")
    total = cfg["trainer_cfg"]["total_iter"] if phase == "train" else None
    tail = _stream(command, env, total, quiet, lock_fd)
    if tail is not None:
        raise LaunchError(_failure_report(log_dir, tail))
    result = json.loads(result_file.read_text())
    result.update(plan=plan.describe(), log_dir=str(log_dir))
    return result


def _stream(command: list[str], env: dict[str, str], total: int | None, quiet: bool, lock_fd: int) -> deque[str] | None:
    """Run torchrun in its own process group; None on success, else its last lines.

    torchrun inherits the run folder's lock (``lock_fd``), so the folder stays owned
    while it runs. The kernel kills torchrun when this process dies (it would
    otherwise linger after its ranks, which end themselves, see ``tie_to_launcher``).
    """
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1, start_new_session=True, pass_fds=(lock_fd,), preexec_fn=_die_with_launcher,
    )
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    bar = tqdm(total=total, desc="iterations", disable=total is None)
    try:
        for line in process.stdout:
            tail.append(line.rstrip())
            match = ITERATION_LINE.search(line)
            if match:
                bar.update(int(match.group(1)) - bar.n)
                bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in BAR_SCALARS.findall(line)))
            if not quiet:
                print(line, end="", flush=True)
        process.wait()
    except BaseException:
        _stop_group(process)
        raise
    finally:
        bar.close()
        if process.poll() is None:
            _stop_group(process)
    return None if process.returncode == 0 else tail


def _die_with_launcher() -> None:
    """In the forked torchrun, before it runs: SIGKILL when the launching process exits."""
    lifeline.die_with_parent(signal.SIGKILL)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (torchrun and every rank), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _failure_report(log_dir: Path, tail: deque[str]) -> str:
    """The failing rank (from torchrun's summary) and the last lines of its own log."""
    summary = "\n".join(tail)
    ranks = re.findall(r"rank\s*:\s*(\d+)", summary)
    rank = int(ranks[0]) if ranks else 0
    lines = [f"rank {rank} failed (torchrun exit). Its last log lines:"]
    logs = sorted(log_dir.rglob(f"attempt_*/{rank}/*.log"))
    own = [line for path in logs for line in path.read_text(errors="replace").splitlines()]
    lines += own[-TAIL_LINES:] if own else list(tail)
    lines.append(f"(all ranks' logs: {log_dir})")
    return "\n".join(lines)


def ensure_trained(cfg: dict, nproc: int | None = None, output_root: str | Path = OUTPUT_ROOT) -> Path:
    """The final checkpoint of ``cfg``'s training run, training it with ``launch`` if missing.

    Notebooks that need a trained model (evaluation) call this, so they run alone
    too: the checkpoint notebook 09 wrote is reused, otherwise the same run is made.
    """
    final = checkpoint_path(cfg, cfg["trainer_cfg"]["total_iter"], "train", output_root)
    if not final.is_file():
        launch(cfg, nproc=nproc, phase="train", output_root=output_root, quiet=True)
    return final
