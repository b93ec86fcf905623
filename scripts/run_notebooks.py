"""Execute numbered notebooks top to bottom, in place or into a build folder.

    python scripts/run_notebooks.py --inplace notebooks/04_arme.ipynb
    python scripts/run_notebooks.py --out build notebooks/*.ipynb   # also writes HTML

In place is how a committed notebook is refreshed (a clean run, execution counts
in order, widget state stripped); ``--out`` is what ``make seminar`` does, leaving
the committed notebooks untouched. Prints the time each notebook took.

Two things keep the stored outputs and the console honest:

* the kernel's sockets are encrypted with CurveZMQ keys the kernel manager provisions
  (``transport_encryption``; the ipykernel kernelspec declares support), so the kernel
  has no reason to warn that it "is running over TCP without encryption";
* a ``tqdm`` progress bar is a widget whose text fallback is frozen when it is first
  shown ("0%"). Widget state is stripped before saving, so each bar's fallback is
  rewritten from its final widget state (``100%|##########| 150/150 [...]``), and a
  bar that closed itself (``leave=False``) is dropped, as it is in a live kernel.
"""
from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

import nbformat
import zmq
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExecutePreprocessor
from traitlets.config import Config

CELL_TIMEOUT_S = 900
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BAR_WIDTH = 10


def kernel_config() -> Config:
    """Kernel manager settings: CurveZMQ transport encryption where libzmq has it."""
    if not zmq.has("curve"):
        return Config()
    return Config({"KernelManager": {"transport_encryption": "auto"}})


def execute(path: Path, out_dir: Path | None) -> tuple[Path, float]:
    """Run one notebook with the current Python's kernel; return where it went and seconds."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    ExecutePreprocessor(timeout=CELL_TIMEOUT_S, kernel_name="python3", config=kernel_config()).preprocess(
        notebook, {"metadata": {"path": str(path.parent)}}
    )
    seconds = time.perf_counter() - started
    widgets = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    store_final_bars(notebook, widgets)
    target = path if out_dir is None else out_dir / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    if out_dir is not None:
        html_text, _ = HTMLExporter().from_notebook_node(notebook)
        target.with_suffix(".html").write_text(html_text, encoding="utf-8")
    return target, seconds


def store_final_bars(notebook: nbformat.NotebookNode, widgets: dict[str, dict]) -> None:
    """Give every stored tqdm bar the text of its final state; drop bars that closed themselves.

    ``widgets`` maps model ids to their saved state (``{"model_name": ..., "state": {...}}``).
    Outputs of other widgets are left as they are.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            view = output.get("data", {}).get(WIDGET_VIEW)
            bar = tqdm_bar_text(view["model_id"], widgets) if view else None
            if bar is None:
                kept.append(output)
            elif bar:
                output["data"]["text/plain"] = bar
                kept.append(output)
        cell.outputs = kept


def tqdm_bar_text(model_id: str, widgets: dict[str, dict]) -> str | None:
    """The final text of a tqdm bar widget, "" for a hidden (closed) bar, None if not a bar.

    tqdm's notebook bar is an HBox of [HTML (description and percentage), FloatProgress,
    HTML (counts and timing)].
    """
    box = widgets.get(model_id, {}).get("state", {})
    children = [ref.removeprefix("IPY_MODEL_") for ref in box.get("children", [])]
    states = [widgets.get(child, {}) for child in children]
    names = [state.get("model_name") for state in states]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    layout = widgets.get(box.get("layout", "").removeprefix("IPY_MODEL_"), {}).get("state", {})
    if layout.get("visibility") == "hidden":
        return ""
    left, progress, right = (state["state"] for state in states)
    top = progress.get("max") or 0
    filled = min(BAR_WIDTH, int(BAR_WIDTH * progress.get("value", 0) / top)) if top else 0
    bar = "\u2588" * filled + " " * (BAR_WIDTH - filled)
    text = f"{left.get('value', '')}|{bar}|{right.get('value', '')}" if top else right.get("value", "")
    return html.unescape(text).replace("\u2007", " ").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--inplace", action="store_true", help="rewrite the given notebooks with their new outputs")
    where.add_argument("--out", type=Path, help="folder for executed copies and their HTML")
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    total = 0.0
    for path in sorted(args.notebooks):
        print(f"running {path} ...", flush=True)
        target, seconds = execute(path.resolve(), None if args.inplace else args.out.resolve())
        total += seconds
        print(f"  {seconds:6.1f} s  -> {target}", flush=True)
    print(f"all notebooks: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
