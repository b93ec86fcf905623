"""The ``synth`` and ``preprocess`` sub-commands of ``python -m hstl_core``.

    python -m hstl_core synth data/syngait/raw-default --preset default --workers 2
    python -m hstl_core synth --preset wild --img_size 32      # ready to train: data/syngait/wild-32
    python -m hstl_core preprocess RAW OUT --img_size 64 --workers 2
"""
from __future__ import annotations

import argparse
import json
import sys

from hstl_core.data import wild
from hstl_core.data.preprocess import preprocess_dataset
from hstl_core.data.syngait import MANIFEST, ensure_syngait
from hstl_core.data.synthetic import PRESETS, write_raw


def _subjects(text: str) -> list[int]:
    """``"1-10,15"`` -> ``[1, ..., 10, 15]``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _run_synth(args: argparse.Namespace) -> int:
    if (args.root is None) == (args.img_size is None):
        raise SystemExit("synth: give either ROOT (raw PNGs) or --img_size (a preprocessed set), not both or neither")
    if args.img_size is not None:
        if args.subjects is not None:
            raise SystemExit("synth: --subjects works with raw PNGs only; --img_size makes the whole preset")
        target = ensure_syngait(args.preset, img_size=args.img_size, seed=args.seed, workers=args.workers)
        print(target)
        print(json.dumps({k: v for k, v in json.loads((target / MANIFEST).read_text()).items() if k != "knobs"}, indent=1))
        return 0
    writer = wild.write_raw if args.preset in wild.WILD_PRESETS else write_raw
    summary = writer(args.root, preset=args.preset, seed=args.seed, subjects=args.subjects, workers=args.workers)
    print(json.dumps(summary, indent=1))
    return 0


def _run_preprocess(args: argparse.Namespace) -> int:
    """Exit 0 when the output folder holds sequences; 1 when nothing was written or there; 2 on a refused input."""
    try:
        report = preprocess_dataset(args.raw, args.out, img_size=args.img_size, workers=args.workers, fmt=args.format,
                                    clean=args.clean, min_frames=args.min_frames)
    except (ValueError, FileNotFoundError) as err:
        print(f"preprocess: {err}", file=sys.stderr)
        return 2
    print(f"written {len(report['written'])}, already there {len(report['skipped_existing'])}, "
          f"skipped {len(report['skipped'])}, frames {report['frames_in']} -> {report['frames_out']}, "
          f"problems {len(report['errors'])}; report: {args.out}/preprocess_report.json")
    for problem in report["errors"][:20]:
        print("  ", problem)
    if not report["written"] and not report["skipped_existing"]:
        print(f"preprocess: no sequence was written to {args.out}; see the problems above", file=sys.stderr)
        return 1
    return 0


def add_synth_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``synth [ROOT] [--preset] [--seed] [--subjects] [--workers] [--img_size]``.

    With ROOT: raw SynGait PNGs there. With ``--img_size`` instead: the preprocessed
    set ``data/syngait/<preset>-<img_size>`` (``ensure_syngait``), its manifest printed.
    """
    parser = subparsers.add_parser("synth", help="write raw SynGait silhouettes (CASIA-B raw layout) or a preprocessed set")
    parser.add_argument("root", nargs="?", default=None, help="output folder <root>/<id>/<type-seq>/<view>/*.png")
    parser.add_argument("--preset", default="default", choices=sorted([*PRESETS, *wild.WILD_PRESETS]))
    parser.add_argument("--img_size", type=int, default=None,
                        help="make the preprocessed set data/syngait/<preset>-<img_size> instead of raw PNGs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=_subjects, default=None, help="e.g. 1-10,15 (default: all of the preset)")
    parser.add_argument("--workers", type=int, default=2)
    parser.set_defaults(func=_run_synth)
    return parser


def add_preprocess_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``preprocess RAW OUT [--img_size] [--workers] [--format] [--clean] [--min_frames]``."""
    parser = subparsers.add_parser("preprocess", help="pretreat raw silhouette frames into one array per sequence")
    parser.add_argument("raw", help="raw root <raw>/<id>/<type-seq>/<view>/*.png")
    parser.add_argument("out", help="output root (not inside RAW)")
    parser.add_argument("--img_size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", choices=("npy", "pkl"), default="npy")
    parser.add_argument("--clean", action="store_true", help="keep the largest component and fill small holes")
    parser.add_argument("--min_frames", type=int, default=1, help="skip sequences with fewer valid frames")
    parser.set_defaults(func=_run_preprocess)
    return parser
