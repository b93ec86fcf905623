"""README thumbnails: one figure per notebook, cut from its executed output.

    python scripts/thumbnails.py [--notebooks notebooks] [--out docs/thumbnails]

Each notebook's figure is the last PNG of the cell with the tag below (the same
tags the slides use), shrunk to at most 320 x 180 pixels. Nothing is drawn here:
the pictures are the notebooks' own output.
"""
from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_slides import Notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {
    "00_overview_and_setup": "hstl-hierarchy",
    "01_syngait": "syngait-views",
    "02_silhouette_preprocessing": "prep-steps",
    "03_dataset_and_sampling": "sampling-pk-batch",
    "04_arme": "arme-levels",
    "05_fta": "fta-windows",
    "06_astp_gem_hpp": "astp-parts",
    "07_hstl_model": "model-embeddings",
    "08_losses_and_training": "train-curves",
    "09_multi_gpu_training": "ddp-curves",
    "10_evaluation": "eval-heatmaps",
    "11_beyond_hstl": "beyond-accuracy-cost",
}
SIZE = (320, 180)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "thumbnails")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    notebooks = Notebooks(args.notebooks)
    for name, tag in FIGURES.items():
        image = Image.open(io.BytesIO(base64.b64decode(notebooks.png(name, tag)))).convert("RGB")
        image.thumbnail(SIZE)
        target = args.out / f"{name[:2]}.png"
        image.save(target, optimize=True)
        print(f"{target.relative_to(ROOT)}  {image.size[0]}x{image.size[1]}  from {name}#{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
