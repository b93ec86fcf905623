"""Seeding of every random number generator the seminar touches."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and CUDA).

    With ``deterministic`` the cuDNN autotuner is switched off and cuDNN is asked for
    deterministic kernels, as the original HSTL code does (slower 3D convolutions on
    GPUs, identical results between runs).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
