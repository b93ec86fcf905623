"""Layered YAML configs in OpenGait's schema: load, merge, validate, diff.

OpenGait (and HSTL on top of it) reads ``default.yaml`` first and merges the chosen
experiment file over it: dictionaries merge key by key, every other value (lists
included) replaces the base value. We keep that rule, ship the base as package data
(``hstl_core/configs/default.yaml``), and add what the original lacks: validation.
A key the engine does not know, a value of the wrong type or a missing required key
is an error that names the file, the key and the nearest valid names, instead of
being silently dropped (the original filters unknown arguments away without a word).

    cfg = load("hstl_core/configs/hstl.yaml")       # merged over default.yaml, validated
    for line in diff(load(a), load(b)): print(line)  # what b changes against a
"""
from __future__ import annotations

import copy
import difflib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
import yaml

from hstl_core.paths import CONFIG_ROOT, folder_name_problem

DEFAULT_CONFIG = CONFIG_ROOT / "default.yaml"


class ConfigError(ValueError):
    """A config that cannot be used; the message has one line per problem."""


@dataclass(frozen=True)
class Key:
    """One leaf of the schema: the types it accepts and whether it must be set."""

    types: tuple[type, ...]
    required: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    inert: str | None = None
    """Why a known OpenGait key has no effect here (a warning is printed when set)."""
    minimum: float | None = None
    """The smallest value a number may take (``1`` for iteration counts and frame numbers)."""
    folder: bool = False
    """The value names a folder under ``output_root``: one plain name, never a path."""


@dataclass(frozen=True)
class TorchClass:
    """A section naming a ``torch.optim`` class; its other keys are that class's arguments."""

    module: Any
    name_key: str


@dataclass(frozen=True)
class ListOf:
    """A list whose items are dicts validated by the schema of their ``type`` entry."""

    schemas: dict[str, dict[str, Any]]
    allow_single: bool = False
    """OpenGait also accepts a single dict where a list is expected (``transform``)."""
    open_prefix: str | None = None
    """Types with this prefix name a library class (``torchvision.RandomHorizontalFlip``)
    whose own constructor checks the other keys when it is built."""


INT = (int,)
NUM = (int, float)
STR = (str,)
BOOL = (bool,)
INT_LIST = (list,)

SAMPLER = {
    "type": Key(STR, choices=("TripletSampler", "InferenceSampler")),
    "batch_size": Key((int, list)),
    "batch_shuffle": Key(BOOL),
    "sample_type": Key(
        STR,
        choices=("fixed_ordered", "fixed_unordered", "unfixed_ordered", "unfixed_unordered", "all_ordered", "all_unordered"),
    ),
    "frames_num_fixed": Key(INT, minimum=1),
    "frames_num_max": Key(INT),
    "frames_num_min": Key(INT),
    "frames_skip_num": Key(INT),
    "frames_all_limit": Key(INT, nullable=True),
}

TRANSFORMS = {
    "BaseSilCuttingTransform": {
        "img_w": Key(INT), "divsor": Key(NUM), "disvor": Key(NUM), "cutting": Key(INT, nullable=True),
    },
    "BaseSilTransform": {"divsor": Key(NUM), "disvor": Key(NUM)},
    "RandomPerspective": {"prob": Key(NUM), "distortion_scale": Key(NUM)},
    "RandomHorizontalFlip": {"prob": Key(NUM)},
    "RandomRotate": {"prob": Key(NUM), "degree": Key(NUM)},
    "RandomErasing": {"prob": Key(NUM), "sl": Key(NUM), "sh": Key(NUM), "r1": Key(NUM), "per_frame": Key(BOOL)},
    "Compose": {"trf_cfg": Key((list,))},
}
"""Our silhouette transforms; ``disvor`` is the original HSTL code's spelling of ``divsor``.
OpenGait's augmentations by name and its nested ``Compose`` (``trf_cfg``, whose
entries the transform builder checks) are accepted as OpenGait's configs write them.
Training augmentations are ``torchvision.<Name>`` entries (``hstl_core.data.transforms``)."""

LOSSES = {
    "TripletLoss": {"loss_term_weight": Key(NUM), "log_prefix": Key(STR), "margin": Key(NUM)},
    "CrossEntropyLoss": {
        "loss_term_weight": Key(NUM),
        "log_prefix": Key(STR),
        "scale": Key(NUM),
        "label_smooth": Key(BOOL),
        "eps": Key(NUM),
        "log_accuracy": Key(BOOL),
    },
}

def numeric_string_hint(text: str) -> str:
    """Why a number arrived as the string ``text``, and how to write it so YAML reads a number."""
    mantissa, e, exponent = text.strip().lower().partition("e")
    if e and "." not in mantissa:
        return f"(PyYAML reads {text} without a dot as a string: write {mantissa}.0e{exponent})"
    return f"(a quoted number is a string: write {text.strip()} without quotes)"

DISTRIBUTED_INERT = "torchrun decides: one process per GPU, or N gloo processes on a CPU"

SCHEMA: dict[str, Any] = {
    "data_cfg": {
        "dataset_name": Key(STR, required=True, folder=True),
        "dataset_root": Key(STR, required=True),
        "dataset_partition": Key(STR, required=True),
        "test_dataset_name": Key(STR),
        "num_workers": Key(INT),
        "remove_no_gallery": Key(BOOL),
        "cache": Key(BOOL),
        "data_in_use": Key((list,), nullable=True),
    },
    "model_cfg": {
        "model": Key(STR, required=True, choices=("HSTL", "HSTL_OU", "HSTL_Gait3D", "Baseline", "DeepGaitV2", "HSTLPP")),
        "channels": Key(INT_LIST),
        "class_num": Key(INT),
        "input_height": Key(INT),
        "backbone_cfg": Key((dict,)),
        "SeparateFCs": Key((dict,)),
        "SeparateBNNecks": Key((dict,)),
        "bin_num": Key(INT_LIST),
        "Backbone": Key((dict,)),
        "use_emb2": Key(BOOL),
        "p3d_arme": Key(BOOL),
        "downsample": Key(BOOL),
        "bnneck_head": Key(BOOL),
        "part_confidence": Key(BOOL),
    },
    "loss_cfg": ListOf(LOSSES),
    "optimizer_cfg": TorchClass(torch.optim, "solver"),
    "scheduler_cfg": TorchClass(torch.optim.lr_scheduler, "scheduler"),
    "trainer_cfg": {
        "enable_float16": Key(BOOL),
        "enable_bfloat16": Key(BOOL),
        "enable_distributed": Key(BOOL, inert=DISTRIBUTED_INERT),
        "with_test": Key(BOOL),
        "fix_BN": Key(BOOL),
        "sync_BN": Key(BOOL),
        "log_iter": Key(INT, minimum=1),
        "save_iter": Key(INT, minimum=1),
        "total_iter": Key(INT, minimum=1),
        "save_name": Key(STR, folder=True),
        "restore_hint": Key((int, str)),
        "restore_ckpt_strict": Key(BOOL),
        "optimizer_reset": Key(BOOL),
        "scheduler_reset": Key(BOOL),
        "clip_grad_norm": Key(NUM, nullable=True),
        "compile": Key(BOOL),
        "seed": Key(INT),
        "collective_timeout": Key(NUM, minimum=1),
        "sampler": SAMPLER,
        "transform": ListOf(TRANSFORMS, allow_single=True, open_prefix="torchvision."),
    },
    "evaluator_cfg": {
        "enable_float16": Key(BOOL),
        "enable_distributed": Key(BOOL, inert=DISTRIBUTED_INERT),
        "restore_hint": Key((int, str)),
        "restore_ckpt_strict": Key(BOOL),
        "save_name": Key(STR, folder=True),
        "eval_func": Key(STR),
        "metric": Key(STR, choices=("euc", "cos")),
        "cross_view_gallery": Key(BOOL),
        "compile": Key(BOOL),
        "collective_timeout": Key(NUM, minimum=1),
        "sampler": SAMPLER,
        "transform": ListOf(TRANSFORMS, allow_single=True, open_prefix="torchvision."),
    },
    "transform": ListOf(TRANSFORMS, allow_single=True, open_prefix="torchvision."),
}
"""Every key OpenGait's HSTL configs use, plus ours (``enable_bfloat16``,
``clip_grad_norm``, ``compile``, ``seed``, ``model_cfg.input_height``). ``optimizer_cfg`` and
``scheduler_cfg`` take the keyword arguments of the named ``torch.optim`` class."""


_HSTL_KEYS = (("channels", "class_num"), ("input_height",))
MODEL_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "HSTL": _HSTL_KEYS,
    "HSTL_OU": _HSTL_KEYS,
    "HSTL_Gait3D": _HSTL_KEYS,
    "Baseline": (("backbone_cfg", "SeparateFCs", "SeparateBNNecks"), ("bin_num",)),
    "DeepGaitV2": (("Backbone", "SeparateBNNecks"), ("use_emb2", "bin_num")),
    "HSTLPP": (("channels", "class_num"), ("input_height", "p3d_arme", "downsample", "bnneck_head", "part_confidence")),
}
"""(required, optional) ``model_cfg`` keys per model besides ``model``: the HSTL
family's (HSTL++ adds its switches, ``hstl_core.model.hstl_pp``), and OpenGait's own
for ``Baseline`` and ``DeepGaitV2``. The content of
OpenGait's nested sections is checked by ``build_model``."""


REQUIRED_SECTIONS = ("data_cfg", "model_cfg")
"""Sections an experiment must write (default.yaml has none of their required keys)."""


def read_yaml(path: str | Path) -> dict:
    """Read one YAML file into a dict; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def merge(base: dict, override: dict) -> dict:
    """OpenGait's rule: dicts merge recursively, anything else (lists too) replaces.

    Neither input is modified.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load(path: str | Path, base: str | Path | None = DEFAULT_CONFIG) -> dict:
    """Merge the experiment file ``path`` over ``base`` (the shipped default) and validate.

    ``base=None`` loads the file alone. Phase-specific ``transform`` entries that are
    not set inherit the top-level ``transform``. Raises :class:`ConfigError` listing
    every problem, each naming the file and key.
    """
    experiment = read_yaml(path)
    merged = merge(read_yaml(base), experiment) if base is not None else experiment
    problems = validate(merged)
    if problems:
        raise ConfigError("\n".join(f"{path}: {line}" for line in problems))
    for phase in ("trainer_cfg", "evaluator_cfg"):
        if phase in merged and "transform" not in merged[phase] and "transform" in merged:
            merged[phase]["transform"] = copy.deepcopy(merged["transform"])
    return merged


def validate(cfg: dict) -> list[str]:
    """All problems of a merged config, one line each (empty when it is valid)."""
    problems: list[str] = []
    problems += [f"{name}: required section is missing" for name in REQUIRED_SECTIONS if name not in cfg]
    _check_section(cfg, SCHEMA, "", problems)
    problems += _check_samplers(cfg)
    problems += _check_model_keys(cfg)
    return problems


def _check_model_keys(cfg: dict) -> list[str]:
    """The ``model_cfg`` keys the named model needs, and no key it does not know."""
    model_cfg = cfg.get("model_cfg")
    if not isinstance(model_cfg, dict) or model_cfg.get("model") not in MODEL_KEYS:
        return []
    name = model_cfg["model"]
    required, optional = MODEL_KEYS[name]
    problems = [f"model_cfg.{key}: required key is missing for model {name}" for key in required if key not in model_cfg]
    for key in model_cfg:
        if key != "model" and key not in required + optional:
            problems.append(f"model_cfg.{key}: not a key of model {name}; its keys are {', '.join(required + optional)}")
    return problems


def reject_unknown_keys(section: Any, allowed: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` if the mapping ``section`` has keys outside ``allowed``.

    The message names the place (``where``, e.g. ``"model_cfg"``), the unknown keys
    and the allowed ones: ``model_cfg: unknown key(s) ['p3d']; allowed: [...]``.
    """
    allowed = list(allowed)
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {allowed}")


def inert_keys(cfg: dict) -> list[str]:
    """Known OpenGait keys that are set but have no effect here, with the reason."""
    found = []
    for dotted, key in _leaves(cfg, SCHEMA, ""):
        if key.inert:
            found.append(f"{dotted} has no effect: {key.inert}")
    return found


def diff(a: dict, b: dict) -> list[str]:
    """What ``b`` changes against ``a``, one line per leaf: ``key: old -> new``.

    Keys only in ``b`` are shown as ``+ key: value``, keys only in ``a`` as ``- key``.
    Lists are compared whole, as the merge rule treats them.
    """
    lines: list[str] = []
    _diff(a, b, "", lines)
    return lines


def dump(cfg: dict) -> str:
    """The config as YAML, sections in OpenGait's order and keys as written."""
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None, allow_unicode=True)


def _diff(a: Any, b: Any, prefix: str, lines: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            dotted = f"{prefix}{key}"
            if key not in b:
                lines.append(f"- {dotted}: {_short(a[key])}")
            elif key not in a:
                lines.append(f"+ {dotted}: {_short(b[key])}")
            else:
                _diff(a[key], b[key], dotted + ".", lines)
    elif a != b:
        lines.append(f"{prefix.rstrip('.')}: {_short(a)} -> {_short(b)}")


def _short(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _nearest(name: str, valid: list[str]) -> str:
    contained = [v for v in valid if v in name or name in v]
    close = contained + [v for v in difflib.get_close_matches(name, valid, n=3, cutoff=0.5) if v not in contained]
    close = close[:3]
    options = close or sorted(valid)
    label = "did you mean" if close else "valid keys are"
    return f"{label} {', '.join(options)}"


def _check_section(cfg: Any, schema: dict, prefix: str, problems: list[str]) -> None:
    if not isinstance(cfg, dict):
        problems.append(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_describe(cfg)}")
        return
    for name, value in cfg.items():
        dotted = f"{prefix}{name}"
        if name not in schema:
            problems.append(f"{dotted}: unknown key; {_nearest(str(name), list(schema))}")
            continue
        _check_value(value, schema[name], dotted, problems)
    for name, rule in schema.items():
        if isinstance(rule, Key) and rule.required and name not in cfg:
            problems.append(f"{prefix}{name}: required key is missing")


def _check_value(value: Any, rule: Any, dotted: str, problems: list[str]) -> None:
    if isinstance(rule, dict):
        _check_section(value, rule, dotted + ".", problems)
    elif isinstance(rule, ListOf):
        _check_list(value, rule, dotted, problems)
    elif isinstance(rule, TorchClass):
        _check_torch_class(value, rule, dotted, problems)
    else:
        _check_leaf(value, rule, dotted, problems)


def _check_leaf(value: Any, rule: Key, dotted: str, problems: list[str]) -> None:
    if value is None:
        if not rule.nullable:
            problems.append(f"{dotted}: must be set, got null")
        return
    if not _is_instance(value, rule.types):
        expected = " or ".join(t.__name__ for t in rule.types)
        hint = ""
        if isinstance(value, str) and (float in rule.types or int in rule.types) and _looks_numeric(value):
            hint = f" {numeric_string_hint(value)}"
        problems.append(f"{dotted}: expected {expected}, got {_describe(value)}{hint}")
        return
    if rule.choices is not None and value not in rule.choices:
        problems.append(f"{dotted}: {value!r} is not one of {', '.join(map(str, rule.choices))}")
    if rule.minimum is not None and value < rule.minimum:
        problems.append(f"{dotted}: must be at least {rule.minimum:g}, got {value!r}")
    if rule.folder and folder_name_problem(value):
        problems.append(f"{dotted}: {value!r} {folder_name_problem(value)}; it names one folder under output_root")


def _check_list(value: Any, rule: ListOf, dotted: str, problems: list[str]) -> None:
    items = [value] if rule.allow_single and isinstance(value, dict) else value
    if not isinstance(items, list):
        problems.append(f"{dotted}: expected a list of entries, got {_describe(value)}")
        return
    for index, item in enumerate(items):
        where = f"{dotted}[{index}]"
        if not isinstance(item, dict) or "type" not in item:
            problems.append(f"{where}: expected a mapping with a 'type' key, got {_describe(item)}")
            continue
        kind = item["type"]
        if rule.open_prefix and isinstance(kind, str) and kind.startswith(rule.open_prefix):
            continue
        if kind not in rule.schemas:
            problems.append(f"{where}.type: unknown type {kind!r}; {_nearest(str(kind), list(rule.schemas))}")
            continue
        fields = {k: v for k, v in item.items() if k != "type"}
        _check_section(fields, rule.schemas[kind], where + ".", problems)


def _check_torch_class(cfg: Any, rule: TorchClass, section: str, problems: list[str]) -> None:
    """``optimizer_cfg`` / ``scheduler_cfg``: the other keys are kwargs of the named class."""
    if not isinstance(cfg, dict):
        problems.append(f"{section}: expected a mapping, got {_describe(cfg)}")
        return
    name = cfg.get(rule.name_key)
    if not isinstance(name, str):
        problems.append(f"{section}.{rule.name_key}: required key is missing or not a string")
        return
    cls = getattr(rule.module, name, None)
    if not inspect.isclass(cls):
        valid = [n for n, obj in vars(rule.module).items() if inspect.isclass(obj) and not n.startswith("_")]
        problems.append(f"{section}.{rule.name_key}: {name!r} is not in {rule.module.__name__}; {_nearest(name, valid)}")
        return
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "params", "optimizer")]
    for key, value in cfg.items():
        if key == rule.name_key:
            continue
        if key not in accepted:
            problems.append(f"{section}.{key}: {name} takes no argument {key!r}; {_nearest(key, accepted)}")
        elif isinstance(value, str) and _looks_numeric(value):
            problems.append(
                f"{section}.{key}: expected a number, got the string {value!r} {numeric_string_hint(value)}"
            )


def _check_samplers(cfg: dict) -> list[str]:
    """The P x K sampler needs ``batch_size: [P, K]``; the inference sampler an int."""
    problems = []
    for phase in ("trainer_cfg", "evaluator_cfg"):
        sampler = cfg.get(phase, {}).get("sampler") if isinstance(cfg.get(phase), dict) else None
        if not isinstance(sampler, dict) or "batch_size" not in sampler:
            continue
        size, kind = sampler["batch_size"], sampler.get("type")
        where = f"{phase}.sampler.batch_size"
        if kind == "TripletSampler":
            if not (isinstance(size, list) and len(size) == 2 and all(_is_instance(v, INT) and v > 0 for v in size)):
                problems.append(f"{where}: TripletSampler needs [P, K] (P subjects x K sequences), got {size!r}")
        elif kind == "InferenceSampler" and not (_is_instance(size, INT) and size > 0):
            problems.append(f"{where}: InferenceSampler needs a positive int, got {size!r}")
    return problems


def _leaves(cfg: Any, schema: Any, prefix: str) -> Iterator[tuple[str, Key]]:
    if isinstance(schema, dict) and isinstance(cfg, dict):
        for name, value in cfg.items():
            if name in schema:
                yield from _leaves(value, schema[name], f"{prefix}{name}.")
    elif isinstance(schema, Key):
        yield prefix.rstrip("."), schema


def _is_instance(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
