"""Processes that do not outlive the process they work for.

A long GPU job must not keep running (and holding devices) after whoever started it
is gone: a notebook kernel restarted, killed with SIGKILL, or a terminal closed.
Two mechanisms, both cheap:

* :func:`die_with_parent`: Linux ``prctl(PR_SET_PDEATHSIG)``; the kernel signals this
  process when its parent exits, however the parent died (no effect elsewhere).
* :func:`exit_when_gone`: a daemon thread that checks every ``interval`` seconds that
  a given process (named by :func:`identity`, its PID and start time, so a recycled
  PID is not mistaken for it) still runs, and ends this process when it does not.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1

_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] == "Z":
        return None
    return fields[19] if len(fields) > 19 else ""


def identity(pid: int | None = None) -> str:
    """``"<pid>:<start time>"`` of process ``pid`` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid) or ''}"


def alive(ident: str) -> bool:
    """Whether the process named by :func:`identity` still runs (a zombie does not)."""
    pid_text, _, start = ident.partition(":")
    pid = int(pid_text)
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    now = _start_time(pid)
    return now is not None and (not start or not now or now == start)


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux only).

    Returns whether it is in place; the parent may already be gone when this runs,
    so callers also compare ``os.getppid()`` with the parent they expect.
    """
    if _LIBC is None:
        return False
    return _LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def exit_when_gone(ident: str, what: str, interval: float = 0.5, code: int = 3) -> threading.Thread:
    """Start a daemon thread that ends this process (``os._exit(code)``) once ``ident`` is gone.

    ``what`` names the watched process in the one line printed to stderr before exiting.
    """

    def watch() -> None:
        while alive(ident):
            time.sleep(interval)
        print(f"[pid {os.getpid()}] {what} (pid {ident.partition(':')[0]}) is gone: exiting", file=sys.stderr, flush=True)
        os._exit(code)

    thread = threading.Thread(target=watch, name="lifeline", daemon=True)
    thread.start()
    return thread
