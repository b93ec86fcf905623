"""A training-free reference for a benchmark: gait energy images compared by distance.

The gait energy image (GEI; Han and Bhanu, *Individual recognition using gait energy
image*, TPAMI 2006) of a sequence is the mean of its silhouettes, one ``[h, w]`` image
in [0, 1]. Ranking the test sequences by the Euclidean distance between their GEIs,
under the benchmark's own protocol, gives what the average silhouette alone already
tells about identity. A trained model that does not beat it has learned nothing
beyond that, whatever its training loss says.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hstl_core.data.dataset import GaitDataset
from hstl_core.data.transforms import build_transform
from hstl_core.engine.evaluator import evaluate_features
from hstl_core.experiments.runner import metrics_of


def gait_energy_image(frames: np.ndarray) -> np.ndarray:
    """Frames ``[T, h, w]`` in [0, 1] (a transform's output) -> ``float32 [h, w]``, their mean."""
    return frames.astype(np.float32, copy=False).mean(axis=0)


def gei_features(cfg: dict) -> dict[str, Any]:
    """The test split of ``cfg``'s dataset as GEIs, laid out like the evaluator's features.

    Each sequence first goes through ``evaluator_cfg.transform`` (the width cut the
    models see), so the GEI is the mean of exactly the frames a model is tested on.
    Returns ``{"embeddings": float32 [N, 1, h * w'], "labels", "types", "views": N strings}``,
    sorted by (id, type, view) as :func:`hstl_core.engine.evaluator.extract_embeddings` sorts them.
    """
    data = cfg["data_cfg"]
    dataset = GaitDataset(data["dataset_root"], data["dataset_partition"], split="test",
                          data_in_use=data.get("data_in_use"))
    transform = build_transform(cfg["evaluator_cfg"].get("transform"))
    order = sorted(range(len(dataset)), key=lambda i: (dataset.label_list[i], dataset.types_list[i], dataset.views_list[i]))
    images = [gait_energy_image(transform(dataset[i][0])) for i in order]
    return {
        "embeddings": np.stack([image.reshape(1, -1) for image in images]),
        "labels": [dataset.label_list[i] for i in order],
        "types": [dataset.types_list[i] for i in order],
        "views": [dataset.views_list[i] for i in order],
    }


def gei_reference(cfg: dict) -> dict[str, float]:
    """The benchmark's metrics (as in a run file's ``metrics``) for GEIs and Euclidean distance."""
    return metrics_of(evaluate_features(cfg, gei_features(cfg)))
