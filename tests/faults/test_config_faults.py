"""Class 7: config holes are errors naming the key, before any work starts."""
from __future__ import annotations

import copy

import pytest
import torch
import torch._inductor.config

from hstl_core import build_model, config
from hstl_core.engine import Trainer, extract_embeddings, run_dir
from hstl_core.engine.distributed import init_distributed
from hstl_core.data.sampling import build_loader

DATA = "data_cfg: {dataset_name: SynGait, dataset_root: data/x, dataset_partition: data/p.json}\n"
MODEL = "model_cfg: {model: HSTL, channels: [8, 16, 32], class_num: 4}\n"


def load(tmp_path, text: str) -> dict:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return config.load(path)


def test_a_missing_model_cfg_is_reported(tmp_path):
    with pytest.raises(config.ConfigError, match="model_cfg: required section is missing"):
        load(tmp_path, DATA)


@pytest.mark.parametrize("key, value", [
    ("total_iter", 0), ("total_iter", -5), ("log_iter", 0), ("save_iter", 0), ("sampler", {"frames_num_fixed": 0}),
])
def test_counts_below_one_are_refused(tmp_path, key, value):
    text = DATA + MODEL + "trainer_cfg: " + str({key: value}).replace("'", "") + "\n"
    with pytest.raises(config.ConfigError, match=r"must be at least 1, got"):
        load(tmp_path, text)


@pytest.mark.parametrize("extra", [
    "trainer_cfg: {save_name: /tmp/elsewhere}\n",
    "evaluator_cfg: {save_name: ../../elsewhere}\n",
])
def test_names_that_would_leave_output_root_are_refused(tmp_path, extra):
    with pytest.raises(config.ConfigError, match="names one folder under output_root"):
        load(tmp_path, DATA + MODEL + extra)


def test_a_dataset_name_with_dotdot_is_refused_by_config_and_run_dir(tmp_path):
    text = DATA.replace("SynGait,", "../../etc,") + MODEL
    with pytest.raises(config.ConfigError, match=r"data_cfg.dataset_name: '../../etc' holds a path separator"):
        load(tmp_path, text)
    cfg = load(tmp_path, DATA + MODEL)
    cfg["data_cfg"]["dataset_name"] = ".."
    with pytest.raises(ValueError, match=r"data_cfg.dataset_name '..' is empty, '.' or '..'"):
        run_dir(cfg, "train", tmp_path)


@pytest.mark.parametrize("written, hint", [
    ("5e-4", r"PyYAML reads 5e-4 without a dot as a string: write 5.0e-4"),
    ("'0.1'", r"a quoted number is a string: write 0.1 without quotes"),
])
def test_the_numeric_string_hint_quotes_the_value_written(tmp_path, written, hint):
    with pytest.raises(config.ConfigError, match=hint):
        load(tmp_path, DATA + MODEL + f"optimizer_cfg: {{lr: {written}}}\n")
    with pytest.raises(config.ConfigError, match=hint):
        load(tmp_path, DATA + MODEL + f"trainer_cfg: {{clip_grad_norm: {written}}}\n")


def test_class_num_below_the_training_ids_is_refused_before_training(tiny_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["model_cfg"]["class_num"] = 3
    with pytest.raises(ValueError, match=r"class_num is 3 but the training set has \d+ ids"):
        Trainer(cfg, init_distributed(), tmp_path)


def test_k_far_above_the_sequences_per_id_is_refused(tiny_cfg):
    engine = copy.deepcopy(tiny_cfg["trainer_cfg"])
    engine["sampler"]["batch_size"] = [4, 10_000]
    with pytest.raises(ValueError, match=r"K=10000 sequences per id, but no id .* more than \d+"):
        build_loader(tiny_cfg["data_cfg"], engine, train=True)


@pytest.mark.slow
@pytest.mark.parametrize("section", ["trainer_cfg", "evaluator_cfg"])
def test_a_compile_that_fails_names_the_option_and_the_way_back(tiny_cfg, tmp_path, monkeypatch, section):
    torch._dynamo.reset()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    no_compiler = torch._inductor.config.patch({"cpp.cxx": (str(tmp_path / "no-such-compiler"),)})
    cfg = copy.deepcopy(tiny_cfg)
    cfg[section]["compile"] = True
    cfg["evaluator_cfg"]["sampler"]["batch_size"] = 16
    expected = rf"(?s){section}.compile: torch.compile failed on the first .*No working C\+\+ compiler.*set {section}.compile: false"
    with no_compiler, pytest.raises(RuntimeError, match=expected):
        if section == "trainer_cfg":
            trainer = Trainer(cfg, init_distributed(), tmp_path)
            trainer.step(next(iter(trainer.loader)))
        else:
            extract_embeddings(cfg, build_model(cfg["model_cfg"]), init_distributed())
