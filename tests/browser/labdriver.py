"""JupyterLab as a student meets it: a server on loopback, notebooks run through its UI.

``LabServer`` starts ``jupyter lab`` from this Python environment on a free loopback
port with a random token, in its own process group, with throw-away Jupyter settings
(no news pop-up, no autosave) and user folders; it stops every kernel through the REST
API, then the server's process group, and says which of the processes it ever started
survived. ``NotebookRun`` drives one notebook in a Chromium page: open
``/lab/tree/NAME``, Run > Run All Cells, wait until every cell ran and the kernel is
idle, and read back what the page shows.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}

# Variables that CI sets for nbval and that would change what a student sees: no
# progress bars (TQDM_DISABLE) and no inline figures (MPLBACKEND=Agg).
CI_ONLY_ENV = ("TQDM_DISABLE", "MPLBACKEND")
# User settings of the throw-away settings folder: no "official Jupyter news?" toast
# over the screenshots, and nothing saved back while cells run.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a running process, None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in "ZX" else int(fields[19])


def descendants(root: int) -> set[tuple[int, int]]:
    """``(pid, start time)`` of every live process below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: set[tuple[int, int]] = set()
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        start = process_start(pid)
        if start is not None:
            found.add((pid, start))
        stack += children.get(pid, [])
    return found


class LabServer:
    """``jupyter lab`` serving ``root`` on loopback; ``home`` holds its settings, folders and log."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.log = home / "server.log"
        self.process: subprocess.Popen | None = None
        self.started: set[tuple[int, int]] = set()

    def environment(self) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items() if name not in CI_ONLY_ENV}
        folders = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
                   "JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
                   "IPYTHONDIR": "ipython"}
        for variable, name in folders.items():
            env[variable] = str(self.home / name)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, timeout: float = 180.0) -> None:
        settings = self.home / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer on port {self.port} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def api(self, method: str, path: str, timeout: float = 60.0) -> Any:
        """One REST call with the token; the decoded JSON answer (None when empty)."""
        request = urllib.request.Request(self.url(path), method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def note_processes(self) -> None:
        """Remember every process now running below the server (kernels and what they started)."""
        if self.process is not None:
            self.started |= descendants(self.process.pid)

    def shut_down_session(self, notebook: str) -> None:
        """Close the session of ``notebook`` (path relative to root), which shuts its kernel down."""
        self.note_processes()
        for session in self.api("GET", "/api/sessions"):
            if session["path"] == notebook:
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> list[tuple[int, int]]:
        """Shut down every kernel, then the server's process group; the processes still alive after."""
        if self.process is None:
            return []
        self.note_processes()
        self.started.add((self.process.pid, process_start(self.process.pid) or 0))
        try:
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            alive = [(pid, start) for pid, start in self.started if process_start(pid) == start]
            if not alive:
                break
            time.sleep(0.5)
        return alive


# A widget shown as its text fallback: the front end did not render it.
WIDGET_REPR = re.compile(
    r"\b(interactive|[A-Z]\w*(Slider|Progress|Box|Button|Buttons|Dropdown|Select|Text|Checkbox|Output|Play|Tab|Accordion))"
    r"\((children|value|description|layout|options|outputs|min|max)=")
ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)(: |$)", re.MULTILINE)
UI_ERRORS = ("Loading widget...", "Error displaying widget", "Math input error", "Error rendering output")

INDICATOR = ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator"
READ_CELLS = """root => [...root.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => ({
    code: cell.classList.contains('jp-CodeCell'),
    prompt: cell.querySelector('.jp-InputArea-prompt')?.textContent.trim() ?? '',
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => ({
      mime: out.getAttribute('data-mime-type'),
      text: out.innerText,
      widget: out.querySelector('.jupyter-widgets') !== null,
    })),
  }))"""
READ_PROGRESS = """cell => [...cell.querySelectorAll('.progress-bar')].map(bar => ({
  width: bar.style.width, success: bar.classList.contains('progress-bar-success'),
  danger: bar.classList.contains('progress-bar-danger')}))"""
OUTPUT_SIGNATURE = """area => [...area.querySelectorAll('img')].map(img => img.src).join('|') + '#' +
  [...area.querySelectorAll('.widget-output')].map(out => out.innerText).join('|')"""


@dataclass
class Cell:
    """A cell as the page shows it."""

    code: bool
    prompt: str
    outputs: list[dict[str, Any]]


@dataclass
class NotebookRun:
    """One notebook opened in JupyterLab and run top to bottom through the Run menu."""

    page: Any
    server: LabServer
    name: str
    seconds: float = 0.0
    samples: list[tuple[float, Any]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def open(self, timeout: float = 300.0) -> None:
        """Open the notebook and wait until its kernel is up and idle.

        Where JupyterLab asks which kernel to start (it does when the kernel list comes
        late on a busy machine), the proposed one, the notebook's own, is accepted.
        """
        self.page.goto(self.server.url(f"/lab/tree/{self.name}?reset&token={self.server.token}"))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        accept = self.page.locator(".jp-Dialog", has_text="Select Kernel").locator(".jp-Dialog-button.jp-mod-accept")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if accept.count():
                accept.first.click()
            if self.kernel_state() == "idle" and self.indicator().get_attribute("data-status") == "idle":
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name}: no idle kernel after {timeout:.0f} s:\n{self.server.log_tail()}")

    def kernel_state(self) -> str | None:
        """The execution state of this notebook's kernel as the server reports it (None: no kernel yet)."""
        for session in self.server.api("GET", "/api/sessions"):
            if session["path"] == self.name and session.get("kernel"):
                return session["kernel"]["execution_state"]
        return None

    def indicator(self) -> Any:
        return self.page.locator(INDICATOR).first

    def run_all(self, timeout: float, sample: Callable[[], Any] | None = None) -> None:
        """Run > Run All Cells; return when no cell waits or runs and the kernel is idle.

        ``sample`` is called every half second while the cells run; its answers are kept
        in ``samples`` with the time since the click.
        """
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        start = time.monotonic()
        self.page.locator(".jp-InputArea-prompt", has_text="[*]").first.wait_for(timeout=60_000)
        quiet = 0
        while quiet < 2:
            self.seconds = time.monotonic() - start
            if self.seconds > timeout:
                raise TimeoutError(f"{self.name}: cells still running after {timeout:.0f} s")
            if sample is not None:
                self.samples.append((round(self.seconds, 1), sample()))
            running = any("*" in cell.prompt for cell in self.cells() if cell.code)
            idle = self.indicator().get_attribute("data-status") == "idle"
            idle = idle and self.kernel_state() == "idle"
            quiet = quiet + 1 if idle and not running else 0
            time.sleep(0.5)

    def cells(self) -> list[Cell]:
        return [Cell(**cell) for cell in self.page.locator(".jp-NotebookPanel").first.evaluate(READ_CELLS)]

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-NotebookPanel .jp-Cell").nth(index)

    def progress(self, index: int) -> list[dict[str, Any]]:
        """Every widget progress bar of cell ``index``: its width and bar style."""
        return self.cell(index).evaluate(READ_PROGRESS)

    def output_text(self, index: int) -> str:
        return self.cell(index).locator(".jp-Cell-outputArea").first.inner_text()

    def output_signature(self, area: Any) -> str:
        """The images and widget-output text of an output area, to tell a redraw."""
        return area.evaluate(OUTPUT_SIGNATURE)

    def move_slider(self, slider: Any) -> str:
        """Move a slider to its end with the keyboard (to its start if already there); its new readout."""
        handle, readout = slider.locator(".noUi-handle").first, slider.locator(".widget-readout").first
        handle.scroll_into_view_if_needed()
        before = readout.inner_text()
        for key in ("End", "Home"):
            handle.focus()
            self.page.keyboard.press(key)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if (after := readout.inner_text()) != before:
                    return after
                time.sleep(0.2)
        raise AssertionError(f"the slider's readout stayed at {before} after End and Home")

    def wait_for_change(self, area: Any, before: str, timeout: float) -> bool:
        """Whether ``area``'s signature differs from ``before`` within ``timeout`` seconds, the kernel idle again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output_signature(area) != before and self.indicator().get_attribute("data-status") == "idle":
                return True
            time.sleep(0.5)
        return False

    def screenshot(self, path: Path, cell: int | None = None) -> None:
        """The JupyterLab window, scrolled to the output of ``cell``, else to the first widget."""
        if cell is not None:
            target = self.cell(cell).locator(".jp-Cell-outputArea").first
        else:
            target = self.page.locator(".jp-NotebookPanel .jp-OutputArea-output .jupyter-widgets").first
        if target.count():
            target.evaluate("element => element.scrollIntoView({block: 'start'})")
            self.page.wait_for_timeout(500)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
