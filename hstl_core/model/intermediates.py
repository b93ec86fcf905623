"""Recording every intermediate tensor of an HSTL forward pass with forward hooks.

The model's forward is not changed for inspection: hooks on its submodules copy
(detached) outputs into an ordered dict, in the order the forward computes them.
Names, for CASIA-B (OU-MVLP / Gait3D add ``MaxPool0``, ``arme4.*``, ``astp4``):

=========================== ====================================================
``arme1``                   ``[n, c0, s, h, w]`` after the first 3D conv(s)
``astp1``                   ``[n, c, 1]`` level-1 part feature
``arme2.0``, ``arme2.1``    each ARME conv of level 2 (``arme2`` = the last one)
``astp2``                   ``[n, c, 2]`` level-2 part features
``fta.region{i}.branch3``   FP_3 output of region i ``[n, c1, T', h_i, w]``
``fta.region{i}.branch5``   FP_5 output of region i
``fta.region{i}.weights``   softmax branch weights ``[2, n, c1, T', 1, 1]`` (3, 5)
``fta``                     ``[n, c1, T', h, w]`` after FTA
``astp2_fta``               ``[n, c, 2]``
``arme3.0``, ``arme3.1``    level-3 ARME convs (``arme3`` = the last one)
``astp3``                   ``[n, c, 4]``
``TP``                      ``[n, c, h, w]`` temporal max of the last level
``HPP``                     ``[n, c, h]`` one GeM part per row
``parts``                   ``[n, c, p]`` all parts concatenated (Head0's input)
``Head0``, ``Bn``, ``Head1`` ``[n, c, p]``, ``[n, c, p]``, ``[n, class_num, p]``
=========================== ====================================================

Recording runs the plain path (``hstl_core.model.hstl.set_fast_path``): the fast
path pools FTA's branches once over all regions, so per-region hooks would not see
them. The fast flags are restored on exit.

With a packed (``seqL``) input the 5D tensors are the padded ``[B, ..., s_max, ...]``
batch; frames past a sequence's end hold padding, not features.
"""
from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

_FTA_BRANCH = re.compile(r"^fta\.mma\.(\d+)\.(FP_3|FP_5|softmax)$")
_FTA_NAMES = {"FP_3": "branch3", "FP_5": "branch5", "softmax": "weights"}


def _recorded_name(name: str) -> str | None:
    """The intermediate's name for a module path, or None if it is not recorded."""
    if "." not in name:
        return name
    fta = _FTA_BRANCH.match(name)
    if fta:
        return f"fta.region{fta.group(1)}.{_FTA_NAMES[fta.group(2)]}"
    if re.match(r"^arme[2-9]\.\d+$", name):
        return name
    return None


@contextlib.contextmanager
def record_intermediates(model: nn.Module, detach: bool = True) -> Iterator[OrderedDict[str, torch.Tensor]]:
    """Within the ``with`` block, every forward of ``model`` fills the yielded dict.

    ``detach=False`` keeps the tensors in the autograd graph (e.g. to take gradients
    of an intermediate with respect to the input). The hooks are removed on exit,
    also after an exception.
    """

    def keep_tensor(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach() if detach else tensor

    recorded: OrderedDict[str, torch.Tensor] = OrderedDict()
    handles = []
    fast_modules = [module for module in model.modules() if getattr(module, "fast", False)]

    def keep(key: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            recorded[key] = keep_tensor(output)

        return hook

    def keep_parts(_module: nn.Module, inputs: tuple) -> None:
        recorded["parts"] = keep_tensor(inputs[0])

    try:
        for module in fast_modules:
            module.fast = False
        for name, module in model.named_modules():
            key = _recorded_name(name) if name else None
            if key is None:
                continue
            if key == "Head0":
                handles.append(module.register_forward_pre_hook(keep_parts))
            handles.append(module.register_forward_hook(keep(key)))
        yield recorded
    finally:
        for handle in handles:
            handle.remove()
        for module in fast_modules:
            module.fast = True
