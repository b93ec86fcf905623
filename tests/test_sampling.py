"""Samplers and collate: pure functions of (seed, iteration), OpenGait's clip rules."""
import itertools
import json

import numpy as np
import pytest
import torch

from hstl_core.data.dataset import GaitDataset
from hstl_core.data.io import save_sequence
from hstl_core.data.sampling import CollateFn, InferenceSampler, TripletSampler, build_loader, select_frames
from hstl_core.data.transforms import BaseSilCuttingTransform, build_transform


@pytest.fixture()
def cfgs(tmp_path):
    root = tmp_path / "ds"
    for n in range(6):
        for t in ("nm-01", "nm-02", "bg-01"):
            for v in ("000", "090"):
                frames = np.random.default_rng(n).integers(0, 255, size=(10 + n, 32, 32), dtype=np.uint8)
                save_sequence(root / f"{n + 1:03d}" / t / v / f"{v}.npy", frames)
    partition = tmp_path / "p.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001", "002", "003", "004"], "TEST_SET": ["005", "006"]}))
    data_cfg = {"dataset_root": str(root), "dataset_partition": str(partition), "num_workers": 0}
    train_cfg = {"sampler": {"batch_size": [2, 4], "sample_type": "fixed_ordered", "frames_num_fixed": 12,
                             "batch_shuffle": True}, "transform": {"type": "BaseSilCuttingTransform", "img_w": 32}}
    return data_cfg, train_cfg


def test_global_batch_is_a_pure_function_of_seed_and_iteration(cfgs):
    data_cfg, _ = cfgs
    ds = GaitDataset.from_data_cfg(data_cfg, train=True)
    first = list(itertools.islice(TripletSampler(ds, (2, 4), seed=1), 5))
    resumed = list(itertools.islice(TripletSampler(ds, (2, 4), seed=1, start_iteration=3), 2))
    assert resumed == first[3:]
    ranks = [next(iter(TripletSampler(ds, (2, 4), seed=1, rank=r, world_size=2))) for r in (0, 1)]
    assert ranks[0] == first[0][0::2] and ranks[1] == first[0][1::2]
    ids = {ds.label_list[i] for i, _ in first[0]}
    assert len(ids) == 2 and all(sum(ds.label_list[i] == s for i, _ in first[0]) == 4 for s in ids)
    assert next(iter(TripletSampler(ds, (2, 4), seed=2))) != first[0]


def test_loader_batches_do_not_depend_on_workers(cfgs):
    data_cfg, train_cfg = cfgs
    batches = []
    for workers in (0, 2):
        loader = build_loader(data_cfg | {"num_workers": workers}, train_cfg, train=True, seed=5)
        batches.append(list(itertools.islice(loader, 2)))
    for a, b in zip(*batches):
        assert torch.equal(a["sils"], b["sils"]) and a["ids"] == b["ids"]
    batch = batches[0][0]
    assert batch["sils"].shape == (8, 12, 32, 22) and batch["sils"].dtype == torch.float32
    assert batch["seqL"] is None and batch["labels"].tolist() == [int(s) - 1 for s in batch["ids"]]


def test_clip_rules():
    rng = np.random.default_rng(0)
    cfg = {"sample_type": "fixed_ordered", "frames_num_fixed": 30, "frames_skip_num": 0}
    clip = select_frames(50, cfg, rng)
    assert len(clip) == 30 and np.all(np.diff(clip) == 1)
    short = select_frames(12, cfg, rng)  # tiled 0..11 three times, then a window of 30
    assert len(short) == 30 and np.all((np.diff(short) == 1) | (np.diff(short) == -11))
    skip = select_frames(50, cfg | {"frames_skip_num": 4}, rng)
    assert len(skip) == 30 and skip[-1] - skip[0] <= 33 and np.all(np.diff(skip) > 0)
    unordered = select_frames(10, {"sample_type": "fixed_unordered", "frames_num_fixed": 30}, rng)
    assert len(unordered) == 30 and unordered.max() < 10
    assert select_frames(40, {"sample_type": "all_ordered", "frames_all_limit": 25}, rng).tolist() == list(range(25))
    with pytest.raises(ValueError, match="not supported"):
        select_frames(40, {"sample_type": "unfixed_ordered"}, rng)


def test_inference_sampler_pads_and_splits(cfgs):
    data_cfg, _ = cfgs
    ds = GaitDataset.from_data_cfg(data_cfg, train=False)  # 12 sequences
    parts = [list(InferenceSampler(ds, batch_size=5, rank=r, world_size=1)) for r in (0,)]
    assert [len(b) for b in parts[0]] == [5, 5, 5] and parts[0][-1][-3:] == [(0, 0), (1, 1), (2, 2)]
    r0, r1 = (list(InferenceSampler(ds, batch_size=2, rank=r, world_size=2)) for r in (0, 1))
    assert [b[0][0] for b in r0] == list(range(0, 12, 2)) and [b[0][0] for b in r1] == list(range(1, 12, 2))
    with pytest.raises(ValueError, match="divisible"):
        InferenceSampler(ds, batch_size=3, world_size=2)


def test_packed_inference_batch(cfgs):
    data_cfg, train_cfg = cfgs
    eval_cfg = {"sampler": {"batch_size": 4, "sample_type": "all_ordered"}, "transform": train_cfg["transform"]}
    batch = next(iter(build_loader(data_cfg, eval_cfg, train=False)))
    assert batch["sils"].shape == (1, 4 * 14, 32, 22) and batch["seqL"].tolist() == [14, 14, 14, 14]
    assert batch["labels"].tolist() == [0, 0, 0, 0] and batch["views"] == ["000", "090", "000", "090"]


def test_transforms():
    sils = np.full((3, 64, 64), 255, np.uint8)
    assert BaseSilCuttingTransform()(sils).shape == (3, 64, 44)
    assert BaseSilCuttingTransform(img_w=32).cutting == 5
    out = build_transform([{"type": "BaseSilCuttingTransform", "img_w": 64, "disvor": 255.0},
                           {"type": "torchvision.RandomHorizontalFlip", "p": 1.0}])(sils)
    assert out.shape == (3, 64, 44) and out.max() == 1.0
    with pytest.raises(ValueError, match="img_w"):
        BaseSilCuttingTransform(img_w=64)(np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="unknown transform"):
        build_transform({"type": "Nope"})


def test_collate_without_seed_and_unknown_label():
    collate = CollateFn(["001"], {"sample_type": "fixed_ordered", "frames_num_fixed": 4}, BaseSilCuttingTransform(img_w=32))
    batch = collate([(np.zeros((6, 32, 32), np.uint8), "001", "nm-01", "090")])
    assert batch["sils"].shape == (1, 4, 32, 22)
    with pytest.raises(KeyError, match="002"):
        collate([(np.zeros((6, 32, 32), np.uint8), "002", "nm-01", "090")])
