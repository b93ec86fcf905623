"""Evaluation protocols: CASIA-B (and SynGait), OU-MVLP and Gait3D.

Features are the model's ``embeddings`` ``[N, parts, c]`` (numpy or torch), with
three sequences of N strings: subject labels (``"075"``), types (``"nm-05"``) and
views (``"090"``). Distances are per-part Euclidean distances averaged over parts
(HSTL's ``cuda_dist`` in ``lib/utils/evaluation.py``). All accuracies are percentages.

* ``evaluate_casia_b``: HSTL's ``identification`` (``lib/utils/evaluation.py``): gallery nm-01..04,
  probe sets NM / BG / CL, one 11 x 11 grid of (probe view, gallery view) rank-1
  accuracies per set, each cell rounded to 2 decimals; the headline figure
  excludes the identical view. Also OpenGait's cross-view-gallery variant.
* ``evaluate_oumvlp``: the same scheme with probe ``00`` and gallery ``01``.
* ``evaluate_gait3d``: rank-1/5/10, mAP and mINP against the whole gallery (OpenGait's ``evaluate_Gait3D``);
  SynGait-Wild uses it too (its partition's ``PROBE_SET``: one query per test id).

``evaluate(eval_func, dataset_name, ...)`` dispatches by OpenGait's ``eval_func``
name and dataset name, as ``evaluator_cfg`` / ``data_cfg`` give them.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Callable, Collection, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hstl_core.atomic import atomic_write_text

__all__ = [
    "EVALUATORS",
    "evaluate",
    "evaluate_casia_b",
    "evaluate_gait3d",
    "evaluate_oumvlp",
    "format_casia_b_table",
    "pairwise_distance",
    "save_results",
]

ArrayLike = np.ndarray | torch.Tensor

CASIA_B_GALLERY = ("nm-01", "nm-02", "nm-03", "nm-04")
CASIA_B_PROBES = {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")}
CASIA_B_CROSS_VIEW_GALLERY = ("nm-02", "bg-02", "cl-02")
CASIA_B_CROSS_VIEW_PROBES = {"NM": ("nm-01",), "BG": ("bg-01",), "CL": ("cl-01",)}
OUMVLP_GALLERY = ("01",)
OUMVLP_PROBES = {"NM": ("00",)}

_CHUNK_BUDGET = 1 << 25  # elements of one [parts, rows, M] block, 128 MiB in float32


def _as_tensor(x: ArrayLike) -> torch.Tensor:
    """A float32 torch view of ``x`` (torch tensors keep their device)."""
    if isinstance(x, torch.Tensor):
        return x.detach().float()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def pairwise_distance(probe: ArrayLike, gallery: ArrayLike, metric: str = "euc", chunk_size: int | None = None) -> np.ndarray:
    """Distances between probe ``[N, p, c]`` and gallery ``[M, p, c]``: numpy float32 ``[N, M]``.

    HSTL's ``cuda_dist``. ``"euc"``: for each part the Euclidean distance
    ``sqrt(relu(|x|^2 + |y|^2 - 2 x.y))``, averaged over the p parts (not squared,
    not the distance of the concatenated vectors). ``"cos"``: 1 - the mean over
    parts of the cosine similarity of the part vectors.

    Inputs may be numpy arrays or torch tensors; torch tensors are computed on
    their own device (a GPU if they live there). The result is always numpy.
    ``chunk_size`` probe rows are done at a time; by default as many as keep one
    ``[p, rows, M]`` block under 2**25 elements, so a large gallery fits in memory.
    """
    if metric not in ("euc", "cos"):
        raise ValueError(f"unknown metric {metric!r}; use 'euc' or 'cos'")
    x, y = _as_tensor(probe), _as_tensor(gallery)
    if x.dim() != 3 or y.dim() != 3 or x.shape[1:] != y.shape[1:]:
        raise ValueError(f"expected probe [N, p, c] and gallery [M, p, c], got {tuple(x.shape)} and {tuple(y.shape)}")
    y = y.to(x.device)
    n, parts, _ = x.shape
    m = y.shape[0]
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_BUDGET // max(1, parts * m))
    if metric == "cos":
        x, y = F.normalize(x, dim=2), F.normalize(y, dim=2)
    y_parts = y.permute(1, 2, 0)  # [p, c, M]
    y_sq = y.pow(2).sum(2).t().unsqueeze(1)  # [p, 1, M]
    out = np.empty((n, m), dtype=np.float32)
    for start in range(0, n, chunk_size):
        xb = x[start:start + chunk_size].permute(1, 0, 2)  # [p, b, c]
        inner = torch.bmm(xb, y_parts)  # [p, b, M]
        if metric == "cos":
            block = 1.0 - inner.mean(0)
        else:
            x_sq = xb.pow(2).sum(2).unsqueeze(2)  # [p, b, 1]
            block = F.relu(x_sq + y_sq - 2 * inner).sqrt().mean(0)
        out[start:start + chunk_size] = block.cpu().numpy()
    return out


def _as_strings(values: Sequence[Any], name: str, n: int) -> np.ndarray:
    arr = np.asarray([str(v) for v in values])
    if arr.shape != (n,):
        raise ValueError(f"{name} must hold one entry per embedding ({n}), got {arr.shape[0]}")
    return arr


def _check_inputs(embeddings: ArrayLike, labels, types, views) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if embeddings.ndim != 3:
        raise ValueError(f"embeddings must be [N, parts, c], got shape {tuple(embeddings.shape)}")
    n = embeddings.shape[0]
    return _as_strings(labels, "labels", n), _as_strings(types, "types", n), _as_strings(views, "views", n)


def _take(embeddings: ArrayLike, index: np.ndarray) -> ArrayLike:
    if isinstance(embeddings, torch.Tensor):
        return embeddings[torch.as_tensor(index, dtype=torch.long, device=embeddings.device)]
    return np.asarray(embeddings)[index]


def _rank1(dist: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Whether each probe's nearest gallery item has its label: bool ``[N]`` (False if the gallery is empty)."""
    if dist.shape[1] == 0:
        return np.zeros(dist.shape[0], dtype=bool)
    return gallery_labels[dist.argmin(1)] == probe_labels


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _check_gallery(labels: np.ndarray, types: np.ndarray, gallery_types: Sequence[str]) -> None:
    """Refuse a test set without gallery sequences; warn when it has a single subject."""
    if not np.isin(types, list(gallery_types)).any():
        raise ValueError(
            f"the test set has no gallery sequence (types {', '.join(gallery_types)}; found types "
            f"{', '.join(sorted(set(types.tolist()))[:10])}): nothing to match probes against"
        )
    if len(set(labels.tolist())) < 2:
        warnings.warn(
            f"the test set holds a single subject ({labels[0]}): every probe matches it, rank-1 is 100 % by construction",
            stacklevel=3,
        )


def _single_view_gallery(
    embeddings: ArrayLike,
    labels: np.ndarray,
    types: np.ndarray,
    views: np.ndarray,
    probe_sets: dict[str, Sequence[str]],
    gallery_types: Sequence[str],
    metric: str,
    remove_no_gallery: bool,
) -> dict[str, Any]:
    """HSTL's ``identification`` grid for any view list and type sets."""
    _check_gallery(labels, types, gallery_types)
    view_list = sorted(set(views.tolist()))
    probe_mask = np.isin(types, [t for ts in probe_sets.values() for t in ts])
    gallery_mask = np.isin(types, list(gallery_types))
    probe_idx, gallery_idx = np.flatnonzero(probe_mask), np.flatnonzero(gallery_mask)
    dist = pairwise_distance(_take(embeddings, probe_idx), _take(embeddings, gallery_idx), metric)
    p_lab, p_type, p_view = labels[probe_idx], types[probe_idx], views[probe_idx]
    g_lab, g_view = labels[gallery_idx], views[gallery_idx]

    result: dict[str, Any] = {}
    num_views = len(view_list)
    for condition, condition_types in probe_sets.items():
        grid = np.full((num_views, num_views), np.nan)
        for i, probe_view in enumerate(view_list):
            rows = np.flatnonzero(np.isin(p_type, list(condition_types)) & (p_view == probe_view))
            for j, gallery_view in enumerate(view_list):
                cols = np.flatnonzero(g_view == gallery_view)
                if cols.size == 0:
                    continue  # no gallery at this view: the cell is NaN and left out of the means
                kept = rows
                if remove_no_gallery:
                    kept = rows[np.isin(p_lab[rows], g_lab[cols])]
                if kept.size == 0:
                    continue
                hits = _rank1(dist[np.ix_(kept, cols)], p_lab[kept], g_lab[cols])
                grid[i, j] = round(float(hits.mean()) * 100, 2)
        off_diagonal = np.where(np.eye(num_views, dtype=bool), np.nan, grid)
        per_view = [_nanmean(row) for row in off_diagonal]
        result[condition] = {
            "per_view": per_view,
            "mean": _nanmean(np.asarray(per_view)),
            "matrix": grid.tolist(),
            "mean_including_identical": _nanmean(grid),
        }
    result["views"] = view_list
    return result


def _cross_view_gallery(
    embeddings: ArrayLike,
    labels: np.ndarray,
    types: np.ndarray,
    views: np.ndarray,
    probe_sets: dict[str, Sequence[str]],
    gallery_types: Sequence[str],
    metric: str,
) -> dict[str, Any]:
    """OpenGait's cross-view-gallery protocol (``evaluate_indoor_dataset`` with ``cross_view_gallery``).

    Per probe, the gallery is every gallery-type sequence of every view, minus the
    probe subject's sequences at the probe's own view. Per probe view: rank-1
    (probes without a correct match left count as failures) and mAP (over probes
    that have one), each rounded to 2 decimals; the set's figures are their means.
    """
    _check_gallery(labels, types, gallery_types)
    view_list = sorted(set(views.tolist()))
    gallery_idx = np.flatnonzero(np.isin(types, list(gallery_types)))
    g_lab, g_view = labels[gallery_idx], views[gallery_idx]
    result: dict[str, Any] = {}
    for condition, condition_types in probe_sets.items():
        rank1, mean_ap = [], []
        for probe_view in view_list:
            probe_idx = np.flatnonzero(np.isin(types, list(condition_types)) & (views == probe_view))
            if probe_idx.size == 0:
                rank1.append(math.nan)
                mean_ap.append(math.nan)
                continue
            dist = pairwise_distance(_take(embeddings, probe_idx), _take(embeddings, gallery_idx), metric)
            p_lab = labels[probe_idx]
            excluded = (g_lab[None, :] == p_lab[:, None]) & (g_view[None, :] == probe_view)
            dist = np.where(excluded, np.inf, dist)
            order = np.argsort(dist, axis=1, kind="stable")
            matches = (g_lab[order] == p_lab[:, None]) & ~np.take_along_axis(excluded, order, axis=1)
            rank1.append(round(float(matches[:, 0].mean()) * 100, 2) if matches.shape[1] else 0.0)
            ap = _average_precision(matches)
            mean_ap.append(round(float(ap[~np.isnan(ap)].mean()) * 100, 2) if np.any(~np.isnan(ap)) else math.nan)
        result[condition] = {
            "per_view": rank1,
            "mean": _nanmean(np.asarray(rank1)),
            "mAP_per_view": mean_ap,
            "mAP": _nanmean(np.asarray(mean_ap)),
        }
    result["views"] = view_list
    return result


def _average_precision(matches: np.ndarray) -> np.ndarray:
    """AP per row of a ranked boolean match matrix ``[Q, G]``; NaN where a row has no match."""
    hits = matches.cumsum(1)
    precision = hits / np.arange(1, matches.shape[1] + 1)
    num_rel = matches.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(num_rel > 0, (precision * matches).sum(1) / num_rel, np.nan)


def evaluate_casia_b(
    embeddings: ArrayLike,
    labels: Sequence[str],
    types: Sequence[str],
    views: Sequence[str],
    metric: str = "euc",
    cross_view_gallery: bool = False,
    remove_no_gallery: bool = False,
) -> dict[str, Any]:
    """CASIA-B protocol (the paper's Sec. 4.1, HSTL's ``identification``); SynGait test sets use it unchanged.

    ``embeddings [N, parts, c]``; ``labels``, ``types``, ``views`` N strings each.
    Gallery: nm-01..04; probe sets NM (nm-05/06), BG (bg-01/02), CL (cl-01/02).
    For each probe view and gallery view, rank-1 of that view's probes against that
    view's gallery only, in percent rounded to 2 decimals. Returns::

        {"NM": {"per_view": [V floats],     # per probe view, mean over the other gallery views
                "mean": float,              # mean of per_view: the paper's figure
                "matrix": V x V list,       # [probe view][gallery view] rank-1
                "mean_including_identical": float},
         "BG": ..., "CL": ...,
         "views": [V view strings]}         # the views present in the data, sorted

    Cells with no probe, or no gallery sequence at the gallery view, are NaN and left
    out of the means (a table shows ``-``). A test set without any gallery sequence is
    a ``ValueError``; a single test subject gives a warning. A probe whose subject
    has no gallery item at the gallery view counts as a failure, as in HSTL; with
    ``remove_no_gallery`` such probes are dropped from that cell instead (the config key
    of that name exists in HSTL's and OpenGait's configs, but no code of theirs reads it).

    ``cross_view_gallery``: OpenGait's variant instead (probes nm-01, bg-01, cl-01;
    gallery nm-02, bg-02, cl-02 of all views; the probe subject's same-view gallery
    items removed); each set then holds ``per_view``, ``mean``, ``mAP_per_view``, ``mAP``.
    """
    labels_, types_, views_ = _check_inputs(embeddings, labels, types, views)
    if cross_view_gallery:
        return _cross_view_gallery(
            embeddings, labels_, types_, views_, CASIA_B_CROSS_VIEW_PROBES, CASIA_B_CROSS_VIEW_GALLERY, metric
        )
    return _single_view_gallery(
        embeddings, labels_, types_, views_, CASIA_B_PROBES, CASIA_B_GALLERY, metric, remove_no_gallery
    )


def evaluate_oumvlp(
    embeddings: ArrayLike,
    labels: Sequence[str],
    types: Sequence[str],
    views: Sequence[str],
    metric: str = "euc",
    remove_no_gallery: bool = False,
) -> dict[str, Any]:
    """OU-MVLP protocol (HSTL's ``identification``): probe sequence ``00``, gallery ``01``, per view.

    Same scheme and result layout as ``evaluate_casia_b`` with the single set
    ``"NM"``: with 14 views each probe view's figure is the mean over the 13 other
    gallery views. Probes without a gallery item of their subject count as failures
    unless ``remove_no_gallery``.
    """
    labels_, types_, views_ = _check_inputs(embeddings, labels, types, views)
    return _single_view_gallery(
        embeddings, labels_, types_, views_, OUMVLP_PROBES, OUMVLP_GALLERY, metric, remove_no_gallery
    )


def evaluate_gait3d(
    embeddings: ArrayLike,
    labels: Sequence[str],
    types: Sequence[str],
    views: Sequence[str],
    probe_set: Collection[str],
    metric: str = "euc",
) -> dict[str, Any]:
    """Gait3D protocol (OpenGait's ``evaluate_Gait3D``): probes against the whole remaining gallery.

    A sequence is a probe when ``f"{label}-{type}-{view}"`` is in ``probe_set``
    (the partition's ``PROBE_SET``); every other sequence is gallery. Per probe the
    gallery is ranked by distance; probes with no correct match are skipped.
    Returns percentages ``{"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}`` plus
    ``num_probes`` and ``num_valid_probes``. Rank-k is the share of probes with a
    correct match among the first k (the whole gallery when it has fewer than k
    items); AP is the mean precision at the correct matches' positions; INP is the
    number of correct matches over the 1-based rank of the last one.
    """
    labels_, types_, views_ = _check_inputs(embeddings, labels, types, views)
    probe_set = set(probe_set)
    keys = np.asarray([f"{l}-{t}-{v}" for l, t, v in zip(labels_, types_, views_)])
    is_probe = np.isin(keys, list(probe_set))
    probe_idx, gallery_idx = np.flatnonzero(is_probe), np.flatnonzero(~is_probe)
    if probe_idx.size == 0 or gallery_idx.size == 0:
        raise ValueError(f"Gait3D evaluation needs probes and gallery; got {probe_idx.size} probes, {gallery_idx.size} gallery")
    dist = pairwise_distance(_take(embeddings, probe_idx), _take(embeddings, gallery_idx), metric)
    order = np.argsort(dist, axis=1, kind="stable")
    matches = labels_[gallery_idx][order] == labels_[probe_idx][:, None]
    matches = matches[matches.any(1)]
    counts = {"num_probes": int(probe_idx.size), "num_valid_probes": int(matches.shape[0])}
    if matches.shape[0] == 0:
        return {"Rank-1": math.nan, "Rank-5": math.nan, "Rank-10": math.nan, "mAP": math.nan, "mINP": math.nan, **counts}
    cmc = np.minimum(matches.cumsum(1), 1)
    result = {f"Rank-{k}": float(cmc[:, min(k, cmc.shape[1]) - 1].mean()) * 100 for k in (1, 5, 10)}
    result["mAP"] = float(_average_precision(matches).mean()) * 100
    last_hit = matches.shape[1] - np.argmax(matches[:, ::-1], axis=1)
    result["mINP"] = float((matches.sum(1) / last_hit).mean()) * 100
    return {**result, **counts}


def format_casia_b_table(result: dict[str, Any]) -> str:
    """A printable table of a CASIA-B (or OU-MVLP) result: one row per probe set.

    Columns are the probe views and the mean, identical views excluded, in percent
    with 2 decimals; ``-`` marks an empty cell. Works for cross-view-gallery results
    too (then the rows are their per-view rank-1).
    """
    view_list = result["views"]
    conditions = [key for key in result if key != "views"]
    width = max(7, *(len(v) + 1 for v in view_list))

    def fmt(x: float | None) -> str:
        text = "-" if x is None or math.isnan(x) else f"{x:.2f}"
        return f"{text:>{width}}"

    lines = [
        "Rank-1 accuracy (%), identical views excluded",
        f"{'probe':<6}" + "".join(f"{v:>{width}}" for v in view_list) + f"{'mean':>{width + 2}}",
    ]
    for condition in conditions:
        row = result[condition]
        lines.append(f"{condition:<6}" + "".join(fmt(x) for x in row["per_view"]) + "  " + fmt(row["mean"]))
    if all("mean_including_identical" in result[c] for c in conditions):
        lines.append(
            "including identical views: "
            + ", ".join(f"{c} {result[c]['mean_including_identical']:.2f}" for c in conditions)
        )
    if all("mAP" in result[c] for c in conditions):
        lines.append("mAP: " + ", ".join(f"{c} {result[c]['mAP']:.2f}" for c in conditions))
    return "\n".join(lines)


def _json_ready(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``null``."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def save_results(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``result`` as indented JSON to ``path`` atomically (NaN written as ``null``)."""
    atomic_write_text(path, json.dumps(_json_ready(result), indent=2, allow_nan=False) + "\n")


def _is_casia_b_like(dataset_name: str) -> bool:
    """CASIA-B and the CASIA-B-shaped SynGait presets; SynGait-Wild follows Gait3D instead."""
    return dataset_name == "CASIA-B" or (dataset_name.startswith("SynGait") and not dataset_name.startswith("SynGait-Wild"))


def _identification(dataset_name: str, embeddings, labels, types, views, metric: str = "euc", **kw) -> dict[str, Any]:
    """HSTL's ``identification`` / OpenGait's ``evaluate_indoor_dataset``: CASIA-B-like or OU-MVLP."""
    if _is_casia_b_like(dataset_name):
        return evaluate_casia_b(embeddings, labels, types, views, metric=metric, **kw)
    if dataset_name == "OUMVLP":
        if kw.pop("cross_view_gallery", False):
            raise ValueError("the cross-view-gallery protocol is defined for CASIA-B only, not for OUMVLP")
        return evaluate_oumvlp(embeddings, labels, types, views, metric=metric, **kw)
    raise ValueError(
        f"dataset {dataset_name!r} is not supported by the identification protocol; "
        "use CASIA-B, SynGait* or OUMVLP (Gait3D and SynGait-Wild have eval_func evaluate_Gait3D)"
    )


def _gait3d(dataset_name: str, embeddings, labels, types, views, metric: str = "euc", **kw) -> dict[str, Any]:
    """OpenGait's ``evaluate_Gait3D``; needs ``probe_set``. Like OpenGait, the dataset name is not checked."""
    if "probe_set" not in kw:
        raise ValueError("Gait3D evaluation needs probe_set (the partition's PROBE_SET)")
    return evaluate_gait3d(embeddings, labels, types, views, metric=metric, **kw)


EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "identification": _identification,
    "evaluate_indoor_dataset": _identification,
    "evaluate_Gait3D": _gait3d,
    # HSTL's config/hstl_gait3d.yaml asks for this name, which HSTL's code never defines.
    "evaluation_Gait3D": _gait3d,
}


def evaluate(
    eval_func: str,
    dataset_name: str,
    embeddings: ArrayLike,
    labels: Sequence[str],
    types: Sequence[str],
    views: Sequence[str],
    metric: str = "euc",
    **kw: Any,
) -> dict[str, Any]:
    """Run ``evaluator_cfg.eval_func`` on ``dataset_name``, as OpenGait's test phase does.

    ``identification`` and ``evaluate_indoor_dataset``: CASIA-B and SynGait* use
    ``evaluate_casia_b`` (``kw``: ``cross_view_gallery``, ``remove_no_gallery``),
    OUMVLP uses ``evaluate_oumvlp``. ``evaluate_Gait3D`` (alias
    ``evaluation_Gait3D``) uses ``evaluate_gait3d`` and needs ``probe_set``.
    """
    if eval_func not in EVALUATORS:
        raise ValueError(f"unknown eval_func {eval_func!r}; valid: {sorted(EVALUATORS)}")
    return EVALUATORS[eval_func](dataset_name, embeddings, labels, types, views, metric=metric, **kw)
