"""The HSTL model (ICCV 2023) and its tools.

* ``build_model(model_cfg)`` - ``HSTL`` / ``HSTL_OU`` / ``HSTL_Gait3D`` from OpenGait's
  ``model_cfg`` (``model``, ``channels``, ``class_num``, ``input_height``); GaitBase
  (``model: Baseline``) and ``DeepGaitV2`` from OpenGait's own ``model_cfg`` for them;
  ``HSTLPP`` (HSTL++) with the switches ``HSTLPP_SWITCHES``.
* ``load_checkpoint(model, path, strict=True)`` / ``save_checkpoint`` - OpenGait
  checkpoint dicts, state-dict keys as in the official code.
* ``summary(model, input_shape)`` - parameters and FLOPs per module.
* ``record_intermediates(model)`` - every intermediate tensor of a forward, by name
  (also ``model(sils, return_intermediates=True)``).
"""
from hstl_core.model.build import MODELS, build_model
from hstl_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hstl_core.model.deepgaitv2 import DeepGaitV2
from hstl_core.model.gaitbase import GaitBase
from hstl_core.model.hstl import ASTP, FTA, HSTL, ARMEConv, FTABlock, HSTL_Gait3D, HSTL_OU
from hstl_core.model.hstl_pp import SWITCHES as HSTLPP_SWITCHES
from hstl_core.model.hstl_pp import HSTLPP
from hstl_core.model.intermediates import record_intermediates
from hstl_core.model.layers import (
    BasicBlock2D,
    BasicBlock3D,
    BasicBlockP3D,
    GeMHPP,
    HorizontalPoolingPyramid,
    SeparateBNNecks,
    SeparateFCs,
    SetBlockWrapper,
)
from hstl_core.model.summary import ModelSummary, summary

__all__ = [
    "ARMEConv",
    "ASTP",
    "BasicBlock2D",
    "BasicBlock3D",
    "BasicBlockP3D",
    "CheckpointError",
    "DeepGaitV2",
    "FTA",
    "FTABlock",
    "GaitBase",
    "GeMHPP",
    "HSTL",
    "HSTL_Gait3D",
    "HSTL_OU",
    "HSTLPP",
    "HSTLPP_SWITCHES",
    "HorizontalPoolingPyramid",
    "MODELS",
    "ModelSummary",
    "SeparateBNNecks",
    "SeparateFCs",
    "SetBlockWrapper",
    "build_model",
    "load_checkpoint",
    "record_intermediates",
    "save_checkpoint",
    "summary",
]
