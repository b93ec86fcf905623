"""Training and evaluation engine: trainer, checkpoints, distributed launch.

* ``run(cfg, phase)`` - what one process of ``python -m hstl_core`` does;
* ``launch(cfg, nproc=..., phase=...)`` - torchrun from a notebook cell;
* ``Trainer`` - the training loop; ``evaluate_model`` - the test protocol;
* ``run_dir`` / ``checkpoint_path`` - OpenGait's output layout.
"""
from hstl_core.engine.checkpoints import checkpoint_path, read_scalars, restore, run_dir
from hstl_core.engine.evaluator import evaluate_features, evaluate_model, extract_embeddings
from hstl_core.engine.launch import LaunchError, choose_plan, ensure_trained, launch
from hstl_core.engine.main import run
from hstl_core.engine.trainer import Trainer

__all__ = [
    "LaunchError",
    "Trainer",
    "checkpoint_path",
    "choose_plan",
    "ensure_trained",
    "evaluate_features",
    "evaluate_model",
    "extract_embeddings",
    "launch",
    "read_scalars",
    "restore",
    "run",
    "run_dir",
]
