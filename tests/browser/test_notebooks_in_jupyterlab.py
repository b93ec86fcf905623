"""The seminar's notebooks in a real JupyterLab in headless Chromium, as a student meets them.

nbval proves that every cell runs in a kernel; this opens the notebooks in JupyterLab
(``jupyter lab`` on a loopback port with a random token, serving a temporary copy of
``notebooks/`` so nothing is saved into the repository; the notebooks find ``data/``
and ``output/`` through ``hstl_core.paths``, not through their own folder), runs each
with Run > Run All Cells in Chromium driven by Playwright, and checks what the page
shows:

* every cell ran, in order, and no output is an error or a traceback; nothing on the
  page failed to render (MathJax's "Math input error", "Error displaying widget");
* every ipywidgets output is a live control, never "Loading widget..." or its text
  repr (``IntSlider(value=...``, ``interactive(children=...``);
* moving each slider (keyboard End, or Home where it already sits at the end)
  changes the figure (or text) of its output;
* the cell that calls ``launch(`` shows a progress bar that advances while torchrun
  trains and ends full (tqdm's widget bar in the success style, or a text bar at 100%);
* a screenshot of JupyterLab per notebook is kept in ``build/browser/NN_name.png``,
  and beside it ``NN_name.json``: how long Run All took and, for the launch cell, the
  progress bar as sampled every half second.

The notebooks run are those that use ipywidgets plus those that call ``launch(``
(found in their source, so a widget added to a notebook is tested without editing
this file). CI's ``TQDM_DISABLE`` and ``MPLBACKEND`` are removed from the server's
environment, so bars and inline figures appear as they do for a student. The server
and every kernel it started are stopped at the end, and the test fails if any of
their processes survives. Skipped, with the reason, where Chromium or Playwright is
not installed (``make test`` installs both where it can).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from hstl_core.paths import REPO_ROOT
from labdriver import CHROMIUM, CHROMIUM_FLAGS, ERROR_LINE, UI_ERRORS, VIEWPORT, WIDGET_REPR, LabServer, NotebookRun

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
ARTIFACTS = REPO_ROOT / "build" / "browser"
RUN_TIMEOUT = 1200.0          # seconds for one notebook's Run All (nbval allows 900 s per cell)
RESPONSE_TIMEOUT = 120.0      # seconds for a slider's output to be redrawn
LAUNCH_CALL = re.compile(r"\blaunch\(")
WIDGET_IMPORT = re.compile(r"^\s*(import ipywidgets|from ipywidgets import)", re.MULTILINE)
TEXT_BAR = re.compile(r"(\d+)%\|")


def notebook_cells(name: str, folder: Path = NOTEBOOK_DIR) -> list[dict[str, Any]]:
    return json.loads((folder / name).read_text(encoding="utf-8"))["cells"]


def uses_widgets(name: str) -> bool:
    return any(cell["cell_type"] == "code" and WIDGET_IMPORT.search("".join(cell["source"]))
               for cell in notebook_cells(name))


def launch_cell(name: str, folder: Path = NOTEBOOK_DIR) -> int | None:
    """Index (among all cells) of the first code cell that calls ``launch(``."""
    for index, cell in enumerate(notebook_cells(name, folder)):
        if cell["cell_type"] == "code" and LAUNCH_CALL.search("".join(cell["source"])):
            return index
    return None


NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
WIDGETS = [name for name in NOTEBOOKS if uses_widgets(name)]
LAUNCHES = [name for name in NOTEBOOKS if launch_cell(name) is not None]
IN_BROWSER = sorted(set(WIDGETS) | set(LAUNCHES))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Chromium with a fresh profile, driven by Playwright."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not installed (make test installs it where apt-get and root are available)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (make installs it with the seminar extra)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS, headless=True, viewport=VIEWPORT)
        yield context
        context.close()


@pytest.fixture(scope="module")
def lab(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> LabServer:
    """JupyterLab serving a temporary copy of notebooks/; stopped with all its kernels afterwards."""
    root = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    server = LabServer(root, root.parent)
    server.start()
    try:
        yield server
    finally:
        survivors = server.stop()
    assert not survivors, f"processes of the server or its kernels still running: {survivors}"


@pytest.fixture(scope="module")
def notebook(request: pytest.FixtureRequest, lab: LabServer, browser: Any) -> NotebookRun:
    """One notebook opened in JupyterLab and run through Run > Run All Cells."""
    name = request.param
    page = browser.new_page()
    run = NotebookRun(page, lab, name)
    page.on("pageerror", lambda error: run.page_errors.append(str(error)))
    index = launch_cell(name, lab.root)
    sample = None if index is None else (lambda: (run.progress(index), run.output_text(index)))
    try:
        run.open()
        run.run_all(RUN_TIMEOUT, sample)
    finally:
        run.screenshot(ARTIFACTS / f"{Path(name).stem}.png", index)
        record = {"run_all_seconds": round(run.seconds, 1), "samples": run.samples}
        (ARTIFACTS / f"{Path(name).stem}.json").write_text(json.dumps(record, indent=1))
    yield run
    lab.shut_down_session(name)
    page.close()


@pytest.mark.parametrize("notebook", IN_BROWSER, indirect=True)
def test_every_cell_runs_in_order_without_an_error(notebook: NotebookRun) -> None:
    cells = notebook.cells()
    assert len(cells) == len(notebook_cells(notebook.name, notebook.server.root)), "the page does not show every cell"
    errors = [f"cell {index}: {output['text'][:800]}" for index, cell in enumerate(cells) for output in cell.outputs
              if ERROR_LINE.search(output["text"])]
    assert not errors, "\n".join(errors)
    prompts = [cell.prompt for cell in cells if cell.code]
    assert prompts == [f"[{count}]:" for count in range(1, len(prompts) + 1)], prompts


@pytest.mark.parametrize("notebook", IN_BROWSER, indirect=True)
def test_nothing_fails_to_render(notebook: NotebookRun) -> None:
    text = notebook.page.locator(".jp-NotebookPanel .jp-Notebook").first.inner_text()
    shown = [message for message in UI_ERRORS if message in text]
    assert not shown, f"{notebook.name} shows {shown}"
    assert not notebook.page_errors, notebook.page_errors


@pytest.mark.parametrize("notebook", IN_BROWSER, indirect=True)
def test_widgets_render_as_live_controls(notebook: NotebookRun) -> None:
    outputs = [output for cell in notebook.cells() for output in cell.outputs]
    rendered = [output for output in outputs if output["widget"]]
    if notebook.name in WIDGETS:
        assert rendered, f"{notebook.name} imports ipywidgets but shows no widget"
    reprs = [match.group(0) for output in outputs if not output["widget"]
             for match in WIDGET_REPR.finditer(output["text"])]
    assert not reprs, f"widgets shown as text, not rendered: {reprs}"
    assert notebook.page.locator(".jupyter-widgets-disconnected").count() == 0, "a widget lost its kernel"


@pytest.mark.parametrize("notebook", WIDGETS, indirect=True)
def test_moving_a_slider_changes_its_output(notebook: NotebookRun) -> None:
    page = notebook.page
    areas = page.locator(".jp-NotebookPanel .jp-Cell-outputArea").filter(has=page.locator(".widget-slider"))
    if areas.count() == 0:
        pytest.skip(f"{notebook.name} has no slider")
    unchanged = []
    for number in range(areas.count()):
        area = areas.nth(number)
        slider = area.locator(".widget-slider").first
        before = notebook.output_signature(area)
        value = notebook.move_slider(slider)
        if not notebook.wait_for_change(area, before, RESPONSE_TIMEOUT):
            unchanged.append(f"slider {number} (now {value}): its output did not change in {RESPONSE_TIMEOUT:.0f} s")
    assert not unchanged, "\n".join(unchanged)


@pytest.mark.parametrize("notebook", LAUNCHES, indirect=True)
def test_launch_cell_shows_a_progress_bar_that_advances_and_finishes(notebook: NotebookRun) -> None:
    index = launch_cell(notebook.name, notebook.server.root)
    bars = [float(bars[0]["width"].rstrip("%")) for _, (bars, _) in notebook.samples if bars and bars[0]["width"]]
    if bars:
        final = notebook.progress(index)[0]
        assert bars == sorted(bars), f"the bar went backwards: {bars}"
        assert any(0 < width < 100 for width in bars), f"the bar never showed progress between empty and full: {bars}"
        assert final["width"] == "100%" and final["success"], f"the bar did not finish: {final}"
        return
    percents = [int(found[-1]) for _, (_, text) in notebook.samples if (found := TEXT_BAR.findall(text))]
    assert percents, "the launch cell showed no progress bar (neither a widget nor a text bar)"
    assert any(0 < percent < 100 for percent in percents) and percents[-1] == 100, percents


@pytest.mark.parametrize("notebook", IN_BROWSER, indirect=True)
def test_screenshot_is_kept(notebook: NotebookRun) -> None:
    image = matplotlib.image.imread(ARTIFACTS / f"{Path(notebook.name).stem}.png")
    assert image.shape[:2] == (VIEWPORT["height"], VIEWPORT["width"])
    assert np.ptp(image[..., :3]) > 0.5, "the screenshot is blank"
