"""``make seminar``: run every numbered notebook into build/, then build the slides.

The committed notebooks are never rewritten: executed copies and their HTML go to
``build/notebooks/``. Generated data (SynGait) and trained checkpoints are reused
when present, so a second run is faster. Prints where everything is and the times.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_slides import build_slides  # noqa: E402
from run_notebooks import execute  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "notebooks"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slides-only", action="store_true", help="rebuild the deck from build/notebooks")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if not args.slides_only:
        notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        print(f"running {len(notebooks)} notebooks into {BUILD.relative_to(ROOT)}/", flush=True)
        for path in notebooks:
            target, seconds = execute(path, BUILD)
            print(f"  {seconds:6.1f} s  {target.relative_to(ROOT)}  (+ .html)", flush=True)
    deck = build_slides(BUILD, ROOT / "slides" / "build")
    total = time.perf_counter() - started
    print()
    print(f"executed notebooks and HTML: {BUILD.relative_to(ROOT)}/")
    print(f"slides:                      {deck.relative_to(ROOT)}")
    print(f"total time:                  {total:.0f} s ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
