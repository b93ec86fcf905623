"""Process helpers of the fault-injection suite: find, wait for and launch real processes."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hstl_core import config
from hstl_core.engine import run_dir


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live (not zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                if (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Launcher:
    """``launch(cfg)`` in a separate Python process: the notebook kernel of the tests."""

    def __init__(self, cfg: dict, output_root: Path, name: str):
        self.cfg = copy.deepcopy(cfg)
        self.output_root = output_root
        cfg_file = output_root / f"{name}.yaml"
        output_root.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(config.dump(self.cfg))
        script = (
            "from hstl_core import config\nfrom hstl_core.engine import launch\n"
            f"launch(config.load({str(cfg_file)!r}, base=None), nproc=2, output_root={str(output_root)!r})\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.rank_config = str(run_dir(self.cfg, "train", output_root) / "launch-train.yaml")
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        for line in self.process.stdout:
            self.lines.append(line)
            if text in line:
                return
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"launcher never printed {text!r}:\n{''.join(self.lines[-30:])}")

    def rest(self, timeout: float = 120) -> str:
        out, _ = self.process.communicate(timeout=timeout)
        return "".join(self.lines) + out

    def cleanup(self) -> None:
        for pid in processes_mentioning(self.rank_config):
            with_suppressed(os.kill, pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def with_suppressed(function, *args) -> None:
    try:
        function(*args)
    except ProcessLookupError:
        pass
