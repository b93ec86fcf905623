"""A research grid: configs x seeds x benchmarks, read from one YAML file.

    name: main                    # results go to <grid file's folder>/<name>/
    seeds: [0, 1, 2]
    reference: HSTL               # the config every other one is compared with, seed by seed
    comparisons: [[HSTL++, HSTL]] # or: these (a, b) pairs instead (optional)
    flops_input: [30, 32, 22]     # frames, height, width: the input parameters/FLOPs are counted on
    common: {trainer_cfg: ...}    # what every run shares (the budget)
    benchmarks:
      SynGait: {headline: mean, config: {data_cfg: ..., evaluator_cfg: ...}}
    configs:
      HSTL: {model_cfg: ..., optimizer_cfg: ...}

One run's config is OpenGait's layering carried one step further: the shipped
``default.yaml``, then ``common``, then the benchmark's ``config``, then the model
config, merged with :func:`hstl_core.config.merge`. A model config (or a benchmark's
``config``) may name a config file, ``file: hstl_core/configs/hstl.yaml``: the file
is that layer, and the entry's other keys are merged over it (a shipped paper config
then runs unchanged, data section included). The runner then sets what a grid
decides for itself: ``class_num`` (every ``class_num`` key inside ``model_cfg``),
raised to the number of the benchmark partition's training ids where it is smaller
(a published config keeps its own: OpenGait's CASIA-B configs say 74 for 73 ids, and
released checkpoints have that shape), ``trainer_cfg.seed``, and the run's
``save_name``. Each run is validated like any config file.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hstl_core import config as config_module
from hstl_core.data.partitions import load_partition
from hstl_core.paths import REPO_ROOT, resolve_data_path

GRID_KEYS = ("name", "seeds", "reference", "comparisons", "flops_input", "common", "benchmarks", "configs")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Benchmark:
    """A test bed: its config sections and the metric comparisons are made on."""

    name: str
    headline: str
    config: dict


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: (config, benchmark, seed), its merged config and what the grid says of it.

    ``definition`` is the grid's own part of the run (its layers, config files read
    in, and the seed), without the shipped ``default.yaml``: a default that gains a
    key does not make finished runs stale; the code revision is recorded instead.
    """

    config: str
    benchmark: str
    seed: int
    cfg: dict
    definition: dict

    @property
    def run_id(self) -> str:
        """``<config>__<benchmark>__s<seed>``: the result file's and the run folder's name."""
        return f"{self.config}__{self.benchmark}__s{self.seed}"

    @property
    def cfg_hash(self) -> str:
        """First 12 hex digits of the SHA-256 of ``definition`` (a changed definition reruns)."""
        return hashlib.sha256(json.dumps(self.definition, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Grid:
    """A parsed grid file; :meth:`runs` expands it, config-major then benchmark then seed."""

    path: Path
    name: str
    seeds: list[int]
    reference: str
    comparisons: list[tuple[str, str]]
    flops_input: tuple[int, int, int]
    common: dict
    benchmarks: dict[str, Benchmark]
    configs: dict[str, dict]

    @property
    def results_dir(self) -> Path:
        """``<grid file's folder>/<name>/``: run files, ``results.json/csv``, ``summary.md``."""
        return self.path.parent / self.name

    def runs(self) -> list[RunSpec]:
        return [
            RunSpec(name, bench, seed, self.run_config(name, bench, seed), self.definition(name, bench, seed))
            for name in self.configs
            for bench in self.benchmarks
            for seed in self.seeds
        ]

    def definition(self, config_name: str, benchmark: str, seed: int) -> dict:
        """The grid's layers of one run (config files read in) and its seed."""
        layers = (self.common, self.benchmarks[benchmark].config, self.configs[config_name])
        return {"layers": [_with_file(layer, self.path.parent) for layer in layers], "seed": seed}

    def run_config(self, config_name: str, benchmark: str, seed: int) -> dict:
        """The merged, validated config of one run (raises ``ConfigError`` naming the run)."""
        bench = self.benchmarks[benchmark]
        cfg = config_module.read_yaml(config_module.DEFAULT_CONFIG)
        for layer in self.definition(config_name, benchmark, seed)["layers"]:
            cfg = config_module.merge(cfg, layer)
        where = f"{self.path}: run {config_name} x {benchmark} x seed {seed}"
        partition_file = cfg.get("data_cfg", {}).get("dataset_partition")
        if not partition_file:
            raise config_module.ConfigError(f"{where}: data_cfg.dataset_partition is not set")
        train_ids = load_partition(resolve_data_path(partition_file))["TRAIN_SET"]
        if not _set_class_num(cfg.get("model_cfg", {}), len(train_ids)):
            raise config_module.ConfigError(f"{where}: model_cfg has no class_num key to set")
        save_name = f"{config_name}__{benchmark}__s{seed}"
        cfg["trainer_cfg"]["seed"] = seed
        cfg["trainer_cfg"]["save_name"] = save_name
        cfg["evaluator_cfg"]["save_name"] = save_name
        for phase in ("trainer_cfg", "evaluator_cfg"):
            if "transform" not in cfg[phase] and "transform" in cfg:
                cfg[phase]["transform"] = copy.deepcopy(cfg["transform"])
        problems = config_module.validate(cfg)
        if problems:
            raise config_module.ConfigError("\n".join(f"{where}: {line}" for line in problems))
        return cfg


def _with_file(layer: dict, folder: Path) -> dict:
    """``layer`` with its ``file`` (relative to the repository, the grid's folder or the working directory) under it."""
    if "file" not in layer:
        return layer
    rest = {k: v for k, v in layer.items() if k != "file"}
    name = Path(layer["file"])
    found = next((p for p in (REPO_ROOT / name, folder / name, name) if p.is_file()), name)
    return config_module.merge(config_module.read_yaml(found), rest)


def _set_class_num(section: Any, count: int) -> bool:
    """Raise every ``class_num`` inside ``section`` (nested too, as OpenGait's BN necks) to ``count``; True if any."""
    found = False
    if isinstance(section, dict):
        for key, value in section.items():
            if key == "class_num":
                section[key] = max(value, count) if isinstance(value, int) else count
                found = True
            else:
                found = _set_class_num(value, count) or found
    return found


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; every problem is a ``ConfigError`` naming the file and key."""
    path = Path(path).resolve()
    raw = config_module.read_yaml(path)
    problems = [f"unknown key {key!r} (known: {', '.join(GRID_KEYS)})" for key in raw if key not in GRID_KEYS]
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"name must be a folder name of letters, digits, _ . + -; got {name!r}")
    seeds = raw.get("seeds")
    if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds) and len(set(seeds)) == len(seeds)):
        problems.append(f"seeds must be a non-empty list of distinct ints; got {seeds!r}")
    flops_input = raw.get("flops_input")
    if not (isinstance(flops_input, list) and len(flops_input) == 3 and all(type(v) is int and v > 0 for v in flops_input)):
        problems.append(f"flops_input must be [frames, height, width] (positive ints); got {flops_input!r}")
    common = raw.get("common", {})
    if not isinstance(common, dict):
        problems.append("common must be a mapping of config sections")
    benchmarks = _named_mappings(raw.get("benchmarks"), "benchmarks", problems)
    for bench_name, entry in benchmarks.items():
        extra = set(entry) - {"headline", "config"}
        if extra or not isinstance(entry.get("headline"), str) or not isinstance(entry.get("config"), dict):
            problems.append(f"benchmarks.{bench_name} needs exactly 'headline' (a metric name) and 'config' (a mapping)")
    configs = _named_mappings(raw.get("configs"), "configs", problems)
    reference = raw.get("reference")
    if reference not in configs:
        problems.append(f"reference must name one of the configs {sorted(configs)}; got {reference!r}")
    pairs = raw.get("comparisons", [])
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(c in configs for c in p) and p[0] != p[1] for p in pairs
    ):
        problems.append(f"comparisons must be a list of [config, config] pairs of two different configs; got {pairs!r}")
    if problems:
        raise config_module.ConfigError("\n".join(f"{path}: {line}" for line in problems))
    return Grid(
        path=path, name=name, seeds=list(seeds), reference=reference,
        comparisons=[tuple(p) for p in pairs], flops_input=tuple(flops_input),
        common=common,
        benchmarks={k: Benchmark(k, v["headline"], v["config"]) for k, v in benchmarks.items()},
        configs=configs,
    )


def _named_mappings(value: Any, key: str, problems: list[str]) -> dict[str, dict]:
    """A non-empty mapping of names (usable in file names) to mappings; problems appended."""
    if not isinstance(value, dict) or not value:
        problems.append(f"{key} must be a non-empty mapping of names to mappings")
        return {}
    good = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not NAME.match(name) or "__" in name:
            problems.append(f"{key}: {name!r} is not a usable name (letters, digits, _ . + -, no '__')")
        elif not isinstance(entry, dict):
            problems.append(f"{key}.{name} must be a mapping")
        else:
            good[name] = entry
    return good
