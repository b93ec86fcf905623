"""``build_model``: an HSTL variant, GaitBase or DeepGaitV2 from OpenGait's ``model_cfg``."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from hstl_core.config import reject_unknown_keys
from hstl_core.model.deepgaitv2 import DeepGaitV2
from hstl_core.model.gaitbase import GaitBase
from hstl_core.model.hstl import HSTL, PAPER_HEIGHT, HSTL_Gait3D, HSTL_OU
from hstl_core.model.hstl_pp import build_hstlpp

MODELS: dict[str, type[HSTL]] = {"HSTL": HSTL, "HSTL_OU": HSTL_OU, "HSTL_Gait3D": HSTL_Gait3D}
"""Model names as OpenGait's registry knows them."""

MODEL_CFG_KEYS = ("model", "channels", "class_num", "input_height")


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


OPENGAIT_MODELS: dict[str, Callable[[Mapping], nn.Module]] = {"Baseline": GaitBase, "DeepGaitV2": DeepGaitV2}
"""Models built from OpenGait's own ``model_cfg`` sections (``backbone_cfg`` /
``Backbone``, ``SeparateFCs``, ``SeparateBNNecks``, ``bin_num``): each checks its keys."""

BUILDERS: dict[str, Callable[[Mapping], nn.Module]] = {**OPENGAIT_MODELS, "HSTLPP": build_hstlpp}
"""Every model built by a function of its whole ``model_cfg`` (HSTL++: ``hstl_core.model.hstl_pp``)."""


def build_model(model_cfg: Mapping) -> nn.Module:
    """Build the model ``model_cfg`` names.

    ``Baseline`` (GaitBase) and ``DeepGaitV2`` take OpenGait's ``model_cfg`` for them
    unchanged (see ``hstl_core.model.gaitbase`` / ``deepgaitv2``); ``HSTLPP`` takes HSTL's
    keys plus its switches (``hstl_core.model.hstl_pp.SWITCHES``). For the HSTL family:

    Keys: ``model`` (``HSTL`` | ``HSTL_OU`` | ``HSTL_Gait3D``), ``channels`` (3 widths
    for HSTL, 4 for the others), ``class_num`` (training identities) and
    ``input_height`` (silhouette rows, default 64; region splits scale with it).
    ``{"model": "HSTL", "channels": [32, 64, 128], "class_num": 74}`` is the paper's
    CASIA-B model. Raises ValueError naming the offending key.
    """
    name = model_cfg.get("model")
    if name in BUILDERS:
        return BUILDERS[name](model_cfg)
    reject_unknown_keys(model_cfg, MODEL_CFG_KEYS, "model_cfg")
    if name not in MODELS:
        raise ValueError(f"model_cfg.model: {name!r} is not one of {sorted([*MODELS, *BUILDERS])}")
    channels = model_cfg.get("channels")
    expected = len(MODELS[name].LEVEL_SPLITS) + 1
    if not isinstance(channels, (list, tuple)) or len(channels) != expected or not all(map(_positive_int, channels)):
        raise ValueError(f"model_cfg.channels: {name} needs a list of {expected} positive ints, got {channels!r}")
    class_num = model_cfg.get("class_num")
    if not _positive_int(class_num):
        raise ValueError(f"model_cfg.class_num: a positive int is needed, got {class_num!r}")
    input_height = model_cfg.get("input_height", PAPER_HEIGHT)
    if not _positive_int(input_height):
        raise ValueError(f"model_cfg.input_height: a positive int is needed, got {input_height!r}")
    return MODELS[name](channels=list(channels), class_num=class_num, input_height=input_height)
