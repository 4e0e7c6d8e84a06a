"""`keras-vit train` and `keras-vit evaluate` end to end on real CIFAR-10 images; config files."""

import json
import os

import pytest

from keras_vit.cli import main
from keras_vit.training import cli_train
from keras_vit.training.config import TrainConfig, load_config_file
from test_training_distributed import cifar_tree

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "training", "configs")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, cifar10_train_root, cifar10_test_root):
    return cifar_tree(tmp_path_factory.mktemp("cifar"), cifar10_train_root, cifar10_test_root,
                      train_per_class=20, test_per_class=10)


@pytest.mark.slow
def test_train_smoke_config_then_evaluate(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "cifar10_vit_small", "--smoke", "--data", data_root,
                 "--output-dir", str(out), "--set", "num_layers=1", "--threads", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Summary:" in printed and "epoch 2:" in printed
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert summary["steps"] == 8 and summary["eval_accuracy"] is not None
    with open(out / "config.json") as f:
        config = json.load(f)
    assert config["model_overrides"]["num_layers"] == 1 and config["model_overrides"]["patch_size"] == 8
    for name in ("best.keras", "model.keras", "history.csv"):
        assert (out / name).is_file()
    import keras_vit
    from keras_vit.datasets import CIFAR10_LABELS

    trained = keras_vit.load_model(out / "best.keras")  # the data's class names travel inside the model
    assert trained.class_names == list(CIFAR10_LABELS) and trained.preprocessing.mean == (0.5, 0.5, 0.5)

    result = tmp_path / "eval.json"
    assert main(["evaluate", str(out / "model.keras"), "--data", data_root, "--batch-size", "32",
                 "--output", str(result)]) == 0
    assert "100 images" in capsys.readouterr().out
    with open(result) as f:
        evaluated = json.load(f)
    # The final model evaluated by the CLI reproduces the run's own last evaluation.
    assert evaluated["examples"] == 100
    assert evaluated["accuracy"] == pytest.approx(summary["eval_accuracy"], abs=1e-6)
    assert evaluated["loss"] == pytest.approx(summary["eval_loss"], rel=1e-4)


def test_every_bundled_config_loads_and_documents_itself():
    names = [f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and not f.startswith("_")]
    assert names
    for name in names:
        for runlocal in (False, True):
            config = TrainConfig().update(load_config_file(name, runlocal=runlocal))
            assert config.epochs >= 1
        with open(os.path.join(CONFIG_DIR, f"{name}.py")) as f:
            doc = f.read().split('"""')[1]
        for word in ("keras-vit train", "Hardware", "Time", "ccuracy"):
            assert word in doc, f"{name}.py docstring lacks {word!r}"
        assert TrainConfig().update(load_config_file(name, runlocal=True)).steps_per_epoch <= 10


def test_flags_override_config_and_errors_are_clear(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    args = parser.parse_args(["--config", "cifar10_vit_small", "--epochs", "3", "--set", "hidden_dim=64",
                              "--no-jit"])
    config = cli_train.build_config(args)
    assert config.epochs == 3 and config.model_overrides["hidden_dim"] == 64 and config.jit_compile is False
    assert config.batch_size == 128  # from the config file
    with pytest.raises(FileNotFoundError, match="Bundled configs"):
        load_config_file("no_such_config")
    with pytest.raises(ValueError, match="Unknown training option"):
        TrainConfig().update({"epoch": 3})
    with pytest.raises(ValueError, match="--set expects MODEL_ARG=VALUE"):
        cli_train.build_config(parser.parse_args(["--set", "hidden_dim"]))


def test_unknown_data_and_missing_model_fail_clearly(tmp_path, capsys):
    assert main(["train", "--model", "vit_test", "--data", "nope", "--output-dir", str(tmp_path)]) == 2
    assert "error: Unknown data 'nope'" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "error: Model file not found" in capsys.readouterr().err


def test_augmentation_lives_in_one_augment_and_old_run_folders_still_load():
    import argparse
    import dataclasses

    from keras_vit.training.data import Augment

    assert TrainConfig().augment == Augment()  # the defaults are Augment's, not copies
    digits = TrainConfig().update(load_config_file("digits_vit"))
    assert digits.augment == Augment(crop="pad", padding=1, flip=False)
    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    flagged = cli_train.build_config(parser.parse_args(["--config", "digits_vit", "--crop", "none",
                                                        "--mixup-alpha", "0.2"]))
    assert flagged.augment == Augment(crop="none", padding=1, flip=False, mixup_alpha=0.2)  # flags change only theirs
    assert TrainConfig.from_json(flagged.to_json()) == flagged
    assert json.loads(flagged.to_json())["augment"]["mixup_alpha"] == 0.2
    # config.json of a run folder written when TrainConfig had flat augmentation fields:
    old = {**{k: v for k, v in json.loads(TrainConfig().to_json()).items() if k != "augment"},
           **dataclasses.asdict(Augment(crop="resized", rand_augment_ops=2)), "epochs": 7}
    restored = TrainConfig.from_json(json.dumps(old))
    assert restored.augment == Augment(crop="resized", rand_augment_ops=2) and restored.epochs == 7
    with pytest.raises(ValueError, match=r"Unknown training option\(s\) \['croop'\]"):
        TrainConfig().update({"augment": {"croop": "pad"}})
    with pytest.raises(ValueError, match="crop must be one of"):
        TrainConfig().update({"crop": "center"})
