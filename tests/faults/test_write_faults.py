"""Classes 3 and 4: interrupted writes, orphaned workers, resumed preprocessing, file modes."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch

from hstl_core.atomic import atomic_write_text
from hstl_core.data.dataset import GaitDataset
from hstl_core.data.io import save_sequence
from hstl_core.data.preprocess import REPORT_NAME, preprocess_dataset
from hstl_core.model import build_model, load_checkpoint, save_checkpoint

from faultkit import wait_until

SMALL = {"model": "HSTL", "channels": [8, 16, 32], "class_num": 16, "input_height": 32}

KILLED_SAVE = textwrap.dedent("""
    import os, sys, time
    import torch
    from hstl_core.model import build_model, save_checkpoint
    torch.manual_seed(1)
    model = build_model({small!r})
    real_fsync = os.fsync
    def fsync_then_hang(fd):
        real_fsync(fd)
        print("inside the write", flush=True)
        time.sleep(60)
    os.fsync = fsync_then_hang
    save_checkpoint(model, sys.argv[1], iteration=99)
""")


def test_kill_inside_a_checkpoint_write_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "checkpoints" / "HSTL-00003.pt"
    save_checkpoint(build_model(SMALL), path, iteration=3)
    writer = subprocess.Popen([sys.executable, "-c", KILLED_SAVE.format(small=SMALL), str(path)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "inside the write"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = list(path.parent.glob(".HSTL-00003.pt.*.tmp"))
    assert len(left) == 1 and left[0].stat().st_size > 10_000, "a full-size temporary is what a kill leaves"
    assert load_checkpoint(build_model(SMALL), path) == 3, "the old checkpoint is intact"
    save_checkpoint(build_model(SMALL), path.with_name("HSTL-00006.pt"), iteration=6)
    assert sorted(p.name for p in path.parent.iterdir()) == ["HSTL-00003.pt", "HSTL-00006.pt"]


def test_restore_removes_checkpoint_temporaries(tiny_cfg, tmp_path):
    from hstl_core.engine import checkpoint_path, restore

    cfg = json.loads(json.dumps(tiny_cfg))
    path = checkpoint_path(cfg, 3, output_root=tmp_path)
    model = build_model(cfg["model_cfg"])
    save_checkpoint(model, path, iteration=3)
    stale = path.parent / ".tiny-00006.pt.k1ll3d00.tmp"
    stale.write_bytes(b"half a checkpoint")
    cfg["trainer_cfg"]["restore_hint"] = 3
    assert restore(cfg, "train", model, output_root=tmp_path) == (3, path)
    assert not stale.exists()


def make_dataset(root):
    for sid in ("001", "002"):
        for view in ("000", "090"):
            save_sequence(root / sid / "nm-01" / view / f"{view}.npy", np.full((4, 8, 8), 255, np.uint8))
    partition = root.parent / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001", "002"], "TEST_SET": []}))
    return partition


def test_index_ignores_temporaries_and_os_clutter_with_a_warning(tmp_path):
    partition = make_dataset(tmp_path / "ds")
    view = tmp_path / "ds" / "001" / "nm-01" / "090"
    (view / ".090.npy.a1b2c3d4.tmp").write_bytes(b"\x93NUMPY half")
    (view / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "ds" / "002" / ".DS_Store").write_bytes(b"x")
    (view / "._090.npy").write_bytes(b"x")
    with pytest.warns(UserWarning, match=r"ignored 4 file\(s\)"):
        dataset = GaitDataset(tmp_path / "ds", partition, "train")
    assert len(dataset) == 4
    (view / "notes.txt").write_text("a real stray file is still an error")
    with pytest.raises(ValueError, match="notes.txt"):
        GaitDataset(tmp_path / "ds", partition, "train")


def raw_tree(root, sequences: int):
    """``sequences`` views of 6 frames plus one stray file (a problem the report must keep)."""
    frame = np.zeros((120, 160), np.uint8)
    frame[30:110, 70:90] = 255
    for i in range(sequences):
        folder = root / f"{i // 4 + 1:03d}" / "nm-01" / f"{(i % 4) * 18:03d}"
        folder.mkdir(parents=True)
        for j in range(6):
            cv2.imwrite(str(folder / f"{j:03d}.png"), np.roll(frame, j, axis=1))
    (root / "001" / "nm-01" / "000" / "readme.txt").write_text("stray")


SLOW_PREPROCESS = textwrap.dedent("""
    import sys, time
    from hstl_core.data import preprocess
    real = preprocess._process_sequence
    def slow(args):
        time.sleep(0.4)
        return real(args)
    preprocess._process_sequence = slow
    preprocess.REPORT_EVERY_S = 0.0
    preprocess.preprocess_dataset(sys.argv[1], sys.argv[2], img_size=32, workers=2)
""")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_preprocess_leaves_no_worker_and_resumes_with_its_problems(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw_tree(raw, 24)
    parent = subprocess.Popen([sys.executable, "-c", SLOW_PREPROCESS, str(raw), str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: len(list(out.rglob("*.npy"))) >= 3, timeout=120)
    workers = children_of(parent.pid)
    assert workers, "the pool's workers"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_until(lambda: not any(alive(pid) for pid in workers), timeout=5), "orphaned pool workers"

    interrupted = json.loads((out / REPORT_NAME).read_text())
    assert interrupted["complete"] is False and any("readme.txt" in e for e in interrupted["errors"])
    (out / "001" / "nm-01" / "018" / ".018.npy.deadbeef.tmp").parent.mkdir(parents=True, exist_ok=True)
    (out / "001" / "nm-01" / "018" / ".018.npy.deadbeef.tmp").write_bytes(b"half")

    with pytest.raises(ValueError, match=r"img_size=32 \(now 64\)"):
        preprocess_dataset(raw, out, img_size=64, workers=1)
    resumed = preprocess_dataset(raw, out, img_size=32, workers=1)
    assert resumed["complete"] is True and any("readme.txt" in e for e in resumed["errors"])
    assert len(resumed["written"]) + len(resumed["skipped_existing"]) == 24
    assert len(resumed["skipped_existing"]) >= 3
    assert not [p for p in out.rglob("*.tmp")], resumed["removed_temporaries"]


def test_an_existing_array_of_another_size_is_not_counted_as_done(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw_tree(raw, 4)
    save_sequence(out / "001" / "nm-01" / "000" / "000.npy", np.zeros((3, 64, 64), np.uint8))
    report = preprocess_dataset(raw, out, img_size=32, workers=1)
    assert report["skipped"]["001/nm-01/000"] == "skipped: existing array does not fit img_size"
    assert any("(3, 64, 64) does not fit img_size=32" in e for e in report["errors"])


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.json", "{}")
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "m-00001.pt", iteration=1)
    finally:
        os.umask(old)
    for name in ("report.json", "m-00001.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
