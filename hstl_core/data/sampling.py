"""Batch sampling and collation, as OpenGait's, made reproducible.

* :class:`TripletSampler` (training): P ids x K sequences per global batch. The whole
  global batch, including a *frame seed* for each element (which decides its clip),
  is a pure function of ``(seed, iteration)``: every DDP rank computes the same batch
  without a broadcast, a run resumed at iteration N (``start_iteration=N``) sees the
  batches an uninterrupted run saw, and the number of DataLoader workers changes
  nothing. Rank r of W takes elements r, r+W, r+2W, ... of the global batch.
* :class:`InferenceSampler` (testing): whole sequences in dataset order, padded and
  split over ranks as OpenGait does.
* :class:`CollateFn`: frame selection (``fixed_ordered``, ``fixed_unordered``,
  ``all_ordered``), the transform, and the batch dict the model and engine read.
* :func:`build_loader`: all of it from OpenGait's ``data_cfg`` and ``trainer_cfg`` /
  ``evaluator_cfg``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.utils.data

from hstl_core.data.dataset import GaitDataset
from hstl_core.data.transforms import build_transform

SAMPLE_TYPES = ("fixed_ordered", "fixed_unordered", "all_ordered")


class TripletSampler(torch.utils.data.Sampler):
    """Infinite P x K batch sampler; yields this rank's list of ``(index, frame_seed)``.

    Per iteration (one generator seeded with ``(seed, iteration)``): P distinct ids
    in random order; K distinct sequences of each (fewer when an id has fewer, as the
    original); the list shuffled when ``batch_shuffle``; topped up to P*K by
    repeating its first entries; one 63-bit frame seed per element.
    """

    def __init__(self, dataset: GaitDataset, batch_size=(8, 8), batch_shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, start_iteration: int = 0):
        p, k = (int(v) for v in batch_size)
        if p > len(dataset.label_set):
            raise ValueError(f"batch_size P={p} but the dataset has only {len(dataset.label_set)} ids")
        most = max(len(indices) for indices in dataset.indices_dict.values())
        if k > most:
            raise ValueError(
                f"batch_size K={k} sequences per id, but no id of the training set has more than {most}: "
                f"every batch would repeat sequences to fill P*K={p * k} places; choose K <= {most}"
            )
        if (p * k) % world_size:
            raise ValueError(f"batch_size P*K={p * k} is not divisible by world_size={world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.dataset, self.p, self.k = dataset, p, k
        self.batch_shuffle, self.seed = batch_shuffle, seed
        self.rank, self.world_size, self.start_iteration = rank, world_size, start_iteration

    def global_batch(self, iteration: int) -> list[tuple[int, int]]:
        """All P*K ``(dataset index, frame seed)`` pairs of ``iteration``, over all ranks."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, iteration]))
        ids = self.dataset.label_set
        batch: list[int] = []
        for i in rng.permutation(len(ids))[: self.p]:
            indices = self.dataset.indices_dict[ids[i]]
            batch.extend(indices[j] for j in rng.permutation(len(indices))[: self.k])
        if self.batch_shuffle:
            batch = [batch[j] for j in rng.permutation(len(batch))]
        batch += batch[: self.p * self.k - len(batch)]
        seeds = rng.integers(0, 2**63 - 1, size=len(batch))
        return [(int(b), int(s)) for b, s in zip(batch, seeds)]

    def __iter__(self):
        iteration = self.start_iteration
        while True:
            yield self.global_batch(iteration)[self.rank :: self.world_size]
            iteration += 1


class InferenceSampler(torch.utils.data.Sampler):
    """Whole sequences in order, ``batch_size`` B over all W ranks (B divisible by W).

    When B > 1 the index list 0..N-1 is padded with its own first elements to a
    multiple of B; each block of B is split into W chunks of B/W and rank r takes the
    r-th. Gathering the ranks' outputs in rank order and truncating to N restores the
    dataset order. Yields lists of ``(index, index)`` (the frame seed is the index).
    """

    def __init__(self, dataset: GaitDataset, batch_size: int = 1, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"inference batch_size {batch_size} must be divisible by world_size {world_size}")
        indices = list(range(len(dataset)))
        if batch_size != 1:
            indices += indices[: math.ceil(len(indices) / batch_size) * batch_size - len(indices)]
        per_rank = batch_size // world_size
        self.batches = [
            [(i, i) for i in indices[start : start + batch_size][rank * per_rank : (rank + 1) * per_rank]]
            for start in range(0, len(indices), batch_size)
        ]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class SeededDataset(torch.utils.data.Dataset):
    """Wrap a :class:`GaitDataset` so items are fetched by ``(index, frame_seed)``
    and carry the seed: ``(uint8 [T, h, w], id, type, view, frame_seed)``."""

    def __init__(self, dataset: GaitDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        return (*self.dataset[index], seed)


def select_frames(length: int, sampler_cfg: dict, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of one sequence of ``length`` frames for the configured sample type.

    ``fixed_ordered``: a contiguous window of F+k frames at a random start (a sequence
    shorter than that is tiled end to end first), then F of them kept, sorted.
    ``fixed_unordered``: F random frames (with replacement only if length < F).
    ``all_ordered``: every frame, the first ``frames_all_limit`` if set.
    """
    if length < 1:
        raise ValueError("a sequence of 0 frames cannot be sampled (the dataset index leaves such .npy files out)")
    sample_type = sampler_cfg.get("sample_type", "fixed_ordered")
    if sample_type == "all_ordered":
        limit = sampler_cfg.get("frames_all_limit")
        return np.arange(length if limit is None else min(length, int(limit)))
    fixed = int(sampler_cfg.get("frames_num_fixed", 30))
    if sample_type == "fixed_unordered":
        return rng.choice(length, size=fixed, replace=length < fixed)
    if sample_type != "fixed_ordered":
        raise ValueError(f"sample_type {sample_type!r} is not supported; use one of {SAMPLE_TYPES}")
    window = fixed + int(sampler_cfg.get("frames_skip_num", 0))
    indices = np.arange(length)
    if length < window:
        indices = np.tile(indices, math.ceil(window / length))
    start = int(rng.integers(0, len(indices) - window + 1))
    clip = indices[start : start + window]
    if window > fixed:
        clip = clip[np.sort(rng.choice(window, size=fixed, replace=False))]
    return clip


class CollateFn:
    """Turn a list of items into the batch dict.

    Items are ``(uint8 [T, h, w], id, type, view)`` or the same plus a frame seed (from
    the samplers above; without one, frames are drawn from an unseeded generator).
    Returns ``{"sils", "labels", "types", "views", "seqL", "ids"}``: ``sils`` float32
    ``[B, F, h, w']`` for fixed sampling (``seqL`` None) or ``[1, sum T, h, w']``
    (sequences packed along time, ``seqL`` LongTensor ``[B]``) for ``all_ordered``;
    ``labels`` LongTensor ``[B]``, the position of each id in ``label_set``.
    """

    def __init__(self, label_set: list[str], sampler_cfg: dict, transform=None):
        self.class_index = {sid: i for i, sid in enumerate(label_set)}
        self.sampler_cfg = dict(sampler_cfg)
        self.packed = self.sampler_cfg.get("sample_type", "fixed_ordered").startswith("all")
        self.transform = build_transform(None) if transform is None else transform

    def __call__(self, batch: list) -> dict:
        clips, labels, types, views, ids = [], [], [], [], []
        for item in batch:
            sils, sid, seq_type, view = item[:4]
            rng = np.random.default_rng(item[4] if len(item) > 4 else None)
            clips.append(self.transform(sils[select_frames(len(sils), self.sampler_cfg, rng)]))
            if sid not in self.class_index:
                raise KeyError(f"id {sid!r} is not in the collate function's label_set")
            labels.append(self.class_index[sid])
            types.append(seq_type)
            views.append(view)
            ids.append(sid)
        if self.packed:
            sils = torch.from_numpy(np.concatenate(clips)).unsqueeze(0)
            seq_len = torch.tensor([len(c) for c in clips], dtype=torch.long)
        else:
            sils, seq_len = torch.from_numpy(np.stack(clips)), None
        return {"sils": sils.float(), "labels": torch.tensor(labels, dtype=torch.long), "types": types,
                "views": views, "seqL": seq_len, "ids": ids}


def build_loader(data_cfg: dict, engine_cfg: dict, train: bool, rank: int = 0, world_size: int = 1,
                 seed: int = 0, start_iteration: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader from OpenGait's ``data_cfg`` and ``trainer_cfg`` / ``evaluator_cfg``.

    ``engine_cfg["sampler"]`` gives ``batch_size`` ([P, K] for training, B for
    testing), ``sample_type``, ``frames_num_fixed``, ``frames_skip_num``,
    ``batch_shuffle``, ``frames_all_limit``; ``engine_cfg["transform"]`` the
    transforms. ``data_cfg["num_workers"]`` worker processes (default 2).
    """
    dataset = GaitDataset.from_data_cfg(data_cfg, train)
    sampler_cfg = engine_cfg["sampler"]
    if train:
        sampler = TripletSampler(dataset, sampler_cfg["batch_size"], bool(sampler_cfg.get("batch_shuffle", False)),
                                 seed=seed, rank=rank, world_size=world_size, start_iteration=start_iteration)
    else:
        sampler = InferenceSampler(dataset, int(sampler_cfg.get("batch_size", 1)), rank=rank, world_size=world_size)
    collate = CollateFn(dataset.label_set, sampler_cfg, build_transform(engine_cfg.get("transform")))
    workers = int(data_cfg.get("num_workers", 2))
    return torch.utils.data.DataLoader(SeededDataset(dataset), batch_sampler=sampler, collate_fn=collate,
                                       num_workers=workers)
