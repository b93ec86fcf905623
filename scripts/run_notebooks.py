"""Execute numbered notebooks top to bottom, in place or into a build folder.

    python scripts/run_notebooks.py --inplace notebooks/04_arme.ipynb
    python scripts/run_notebooks.py --out build notebooks/*.ipynb   # also writes HTML

In place is how a committed notebook is refreshed (a clean run, execution counts
in order, widget state stripped); ``--out`` is what ``make seminar`` does, leaving
the committed notebooks untouched. Prints the time each notebook took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import ExecutePreprocessor

CELL_TIMEOUT_S = 900


def execute(path: Path, out_dir: Path | None) -> tuple[Path, float]:
    """Run one notebook with the current Python's kernel; return where it went and seconds."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    ExecutePreprocessor(timeout=CELL_TIMEOUT_S, kernel_name="python3").preprocess(
        notebook, {"metadata": {"path": str(path.parent)}}
    )
    seconds = time.perf_counter() - started
    notebook.metadata.pop("widgets", None)
    target = path if out_dir is None else out_dir / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    if out_dir is not None:
        html, _ = HTMLExporter().from_notebook_node(notebook)
        target.with_suffix(".html").write_text(html, encoding="utf-8")
    return target, seconds


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
