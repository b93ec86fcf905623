"""Per-sequence transforms, built from OpenGait's ``transform`` config.

Each transform maps one sequence array ``[T, h, w]`` to another. The default,
:class:`BaseSilCuttingTransform`, cuts the empty side bands of 64 x 64 silhouettes
(64 x 64 -> 64 x 44) and scales to [0, 1]. Training augmentations are off by default;
OpenGait's ``RandomPerspective`` / ``RandomHorizontalFlip`` / ``RandomRotate`` /
``RandomErasing`` (with ``prob``) and its nested ``Compose`` (``trf_cfg``) are built
by :class:`SequenceAugmentation`, and
any ``torchvision.transforms.v2`` class can be added as a config entry
``{"type": "torchvision.RandomAffine", "degrees": 5}``: it sees the sequence as one
image with T channels, so every frame of a sequence gets the same random change.
Those draws come from torch's global generator (so they depend on DataLoader
workers), unlike the frame sampling, which is a pure function of (seed, iteration).
"""
from __future__ import annotations

import numpy as np
import torch


class BaseSilCuttingTransform:
    """Cut ``cutting`` columns from each side and divide by ``divsor``; frames must be ``img_w`` wide.

    ``cutting`` defaults to ``img_w * 10 // 64``: 10 columns for 64-wide frames (as the
    original) and 5 for 32-wide ones. The original's ``(img_w // 64) * 10`` would give 0
    for 32-wide frames, and its slice ``x[..., 0:-0]`` would then be empty.
    In: ``uint8 [T, h, img_w]``; out: ``float32 [T, h, img_w - 2 * cutting]`` in [0, 1].
    """

    def __init__(self, img_w: int = 64, divsor: float = 255.0, cutting: int | None = None):
        self.img_w = img_w
        self.divsor = float(divsor)
        self.cutting = img_w * 10 // 64 if cutting is None else int(cutting)

    def __call__(self, sils: np.ndarray) -> np.ndarray:
        if sils.shape[-1] != self.img_w:
            raise ValueError(f"frames are {sils.shape[-1]} wide but the transform has img_w={self.img_w}; set img_w in the config")
        c = self.cutting
        cut = sils[..., c : sils.shape[-1] - c]
        return cut.astype(np.float32) / self.divsor

    def __repr__(self) -> str:
        return f"BaseSilCuttingTransform(cutting={self.cutting}, divsor={self.divsor})"


class BaseSilTransform:
    """Divide by ``divsor`` only: ``uint8 [T, h, w]`` -> ``float32 [T, h, w]``."""

    def __init__(self, divsor: float = 255.0):
        self.divsor = float(divsor)

    def __call__(self, sils: np.ndarray) -> np.ndarray:
        return np.asarray(sils, dtype=np.float32) / self.divsor


class TorchvisionTransform:
    """Apply a ``torchvision.transforms.v2`` class to a whole sequence ``[T, h, w]``."""

    def __init__(self, name: str, **kwargs):
        from torchvision.transforms import v2

        if not hasattr(v2, name):
            raise ValueError(f"torchvision.transforms.v2 has no transform {name!r}")
        self.transform = getattr(v2, name)(**kwargs)

    def __call__(self, sils: np.ndarray) -> np.ndarray:
        out = self.transform(torch.from_numpy(np.ascontiguousarray(sils)))
        return out.numpy()

    def __repr__(self) -> str:
        return f"TorchvisionTransform({self.transform!r})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: list):
        self.transforms = list(transforms)

    def __call__(self, sils: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            sils = transform(sils)
        return sils

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class SequenceAugmentation:
    """OpenGait's silhouette augmentations by name, built on ``torchvision.transforms.v2``.

    One random draw per sequence: the sequence ``[T, h, w]`` is one image with T
    channels, so every frame gets the same perspective, flip, rotation or erased box
    (GaitBase's augmentation, Fan et al. CVPR 2023). ``prob`` is the chance the
    augmentation happens at all. Works on uint8 or float frames; empty pixels stay 0.

    * ``RandomPerspective(prob, distortion_scale=0.2)`` - corners moved by up to
      ``distortion_scale`` of the half size.
    * ``RandomHorizontalFlip(prob)`` - mirror left/right.
    * ``RandomRotate(prob, degree=10)`` - rotation by a uniform angle in ``[-degree, degree]``.
    * ``RandomErasing(prob, sl=0.05, sh=0.2, r1=0.3, per_frame=False)`` - a box of
      ``sl``..``sh`` of the area, aspect ``r1``..``1 / r1``, set to 0 (a simulated
      occluder); with ``per_frame`` each frame draws its own box.
    """

    def __init__(self, name: str, prob: float = 0.5, **kwargs):
        from torchvision.transforms import v2

        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"transform {name}: prob must be in [0, 1], got {prob!r}")
        self.name = name
        self.per_frame = bool(kwargs.pop("per_frame", False)) if name == "RandomErasing" else False
        if name == "RandomPerspective":
            self.transform = v2.RandomPerspective(distortion_scale=kwargs.pop("distortion_scale", 0.2), p=prob, fill=0)
        elif name == "RandomHorizontalFlip":
            self.transform = v2.RandomHorizontalFlip(p=prob)
        elif name == "RandomRotate":
            degree = kwargs.pop("degree", 10)
            self.transform = v2.RandomApply([v2.RandomRotation(degrees=degree, fill=0)], p=prob)
        elif name == "RandomErasing":
            low, high, ratio = kwargs.pop("sl", 0.05), kwargs.pop("sh", 0.2), kwargs.pop("r1", 0.3)
            self.transform = v2.RandomErasing(p=prob, scale=(low, high), ratio=(ratio, 1.0 / ratio), value=0)
        else:
            raise ValueError(f"unknown augmentation {name!r}; known: {list(AUGMENTATIONS)}")
        if kwargs:
            raise ValueError(f"transform {name}: unknown argument(s) {sorted(kwargs)}")

    def __call__(self, sils: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(np.ascontiguousarray(sils))
        if self.per_frame:
            return torch.cat([self.transform(frame[None]) for frame in frames]).numpy()
        return self.transform(frames).numpy()

    def __repr__(self) -> str:
        return f"SequenceAugmentation({self.name}: {self.transform!r}, per_frame={self.per_frame})"


AUGMENTATIONS = ("RandomPerspective", "RandomHorizontalFlip", "RandomRotate", "RandomErasing")

_BUILDERS = {"BaseSilCuttingTransform": BaseSilCuttingTransform, "BaseSilTransform": BaseSilTransform}


def _build_one(entry: dict):
    if not isinstance(entry, dict) or "type" not in entry:
        raise ValueError(f"a transform entry needs a 'type': {entry!r}")
    kwargs = {k: v for k, v in entry.items() if k != "type"}
    name = entry["type"]
    if name.startswith("torchvision."):
        return TorchvisionTransform(name.split(".", 1)[1], **kwargs)
    if name in AUGMENTATIONS:
        return SequenceAugmentation(name, **kwargs)
    if name == "Compose":  # OpenGait's nested form: {type: Compose, trf_cfg: [...]}
        return Compose([_build_one(item) for item in kwargs.get("trf_cfg", [])])
    if name not in _BUILDERS:
        raise ValueError(
            f"unknown transform {name!r}; known: {sorted(_BUILDERS) + list(AUGMENTATIONS) + ['Compose']} "
            "or 'torchvision.<Name>'"
        )
    if "disvor" in kwargs:  # the HSTL code's spelling of divsor
        kwargs["divsor"] = kwargs.pop("disvor")
    return _BUILDERS[name](**kwargs)


def build_transform(cfg: dict | list | None):
    """Build from a ``transform`` config: a dict, a list of dicts, or None (the default cut)."""
    if cfg is None:
        return BaseSilCuttingTransform()
    if isinstance(cfg, dict):
        return _build_one(cfg)
    return Compose([_build_one(entry) for entry in cfg])
