"""``python -m hstl_core``: OpenGait's flags for training and testing, plus tools.

    python -m hstl_core --cfgs FILE --phase train|test [--iter N] [--log_to_file]
    torchrun --nproc-per-node 2 -m hstl_core --cfgs FILE --phase train
    python -m hstl_core config show FILE
    python -m hstl_core config diff FILE1 FILE2
    python -m hstl_core synth RAW [--preset default] ...
    python -m hstl_core preprocess RAW OUT ...
    python -m hstl_core experiment GRID.yaml [--configs ...] [--max-runs N] [--report-only]
"""
from __future__ import annotations

import argparse
import sys

from hstl_core import config

TOOLS = ("config", "synth", "preprocess", "experiment")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in TOOLS:
            args = _tool_parser().parse_args(argv)
            return args.func(args) or 0
        return _run_phase(_phase_parser().parse_args(argv))
    except config.ConfigError as err:
        print(f"config error:\n{err}", file=sys.stderr)
        return 2


def _phase_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hstl_core",
        description="Train or test HSTL from an OpenGait-style config (tools: " + ", ".join(TOOLS) + ").",
    )
    parser.add_argument("--cfgs", required=True, help="experiment YAML, merged over the shipped default.yaml")
    parser.add_argument("--phase", required=True, choices=("train", "test"))
    parser.add_argument("--iter", type=int, default=0, help="restore_hint for both phases (0: keep the config's)")
    parser.add_argument("--log_to_file", action="store_true", help="also write logs/<time>.txt in the run folder")
    parser.add_argument("--output_root", default="output", help="where output/<dataset>/<model>/<save_name>/ goes")
    parser.add_argument(
        "--local_rank", "--local-rank", type=int, default=None,
        help="accepted for torch.distributed.launch compatibility; torchrun's LOCAL_RANK is what counts",
    )
    return parser


def _run_phase(args: argparse.Namespace) -> int:
    from hstl_core.engine.main import run

    cfg = config.load(args.cfgs)
    run(cfg, phase=args.phase, iteration=args.iter, log_to_file=args.log_to_file, output_root=args.output_root)
    return 0


def _tool_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hstl_core")
    tools = parser.add_subparsers(dest="tool", required=True)

    cfg_parser = tools.add_parser("config", help="show or compare configs")
    cfg_actions = cfg_parser.add_subparsers(dest="action", required=True)
    show = cfg_actions.add_parser("show", help="print the merged, validated config")
    show.add_argument("file")
    show.set_defaults(func=_config_show)
    compare = cfg_actions.add_parser("diff", help="what FILE2 changes against FILE1 (both merged)")
    compare.add_argument("file1")
    compare.add_argument("file2")
    compare.set_defaults(func=_config_diff)

    from hstl_core.data.cli import add_preprocess_parser, add_synth_parser

    add_synth_parser(tools)
    add_preprocess_parser(tools)

    from hstl_core.experiments.cli import add_experiment_parser

    add_experiment_parser(tools)
    return parser


def _config_show(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    print(config.dump(cfg), end="")
    for line in config.inert_keys(cfg):
        print(f"# note: {line}", file=sys.stderr)
    return 0


def _config_diff(args: argparse.Namespace) -> int:
    lines = config.diff(config.load(args.file1), config.load(args.file2))
    print("\n".join(lines) if lines else "no differences")
    return 0
