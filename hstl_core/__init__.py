"""hstl_core: the package behind the HSTL seminar notebooks.

HSTL is *Hierarchical Spatio-Temporal Representation Learning for Gait Recognition*
(Wang et al., ICCV 2023). This package holds everything the notebooks run: the
SynGait benchmark, silhouette preprocessing, the HSTL model, losses, the training
engine and the evaluation protocols.
"""
from hstl_core.seed import seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "seed_everything"]


def build_model(model_cfg: dict):
    """Build the HSTL variant named by ``model_cfg['model']`` (see ``hstl_core.model``)."""
    from hstl_core.model import build_model as _build_model

    return _build_model(model_cfg)
