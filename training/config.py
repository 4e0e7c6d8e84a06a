"""The training configuration: one dataclass, filled from defaults, a config file, then flags.

A config file is a Python file (see ``keras_vit/training/configs/``) whose
docstring states the command, hardware, time and accuracy, and which defines
``get_config(runlocal: bool = False) -> dict``. ``runlocal=True`` (``--smoke``)
shrinks any config to a run of seconds.
"""

import dataclasses
import importlib.util
import json
import os

CROPS = ("pad", "resized", "none")
ON_NAN = ("stop", "skip")
OPTIMIZERS = ("adamw", "sgd")


@dataclasses.dataclass(frozen=True)
class Augment:
    """Train-time augmentation switches (``TrainConfig.augment``; flags ``--crop``, ``--mixup-alpha`` ...).

    Args:
        crop: ``"pad"`` (reflect-pad by ``padding`` and crop back; CIFAR),
            ``"resized"`` (random resized crop; ImageNet) or ``"none"``.
        padding: pixels of padding for ``crop="pad"``.
        flip: random horizontal flips.
        rand_augment_ops: N of RandAugment (0 disables it).
        rand_augment_magnitude: M of RandAugment (0-10).
        mixup_alpha / cutmix_alpha: Beta parameters; 0 disables.
    """

    crop: str = "pad"
    padding: int = 4
    flip: bool = True
    rand_augment_ops: int = 0
    rand_augment_magnitude: float = 9.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}; received crop={self.crop!r}.")


AUGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Augment))


@dataclasses.dataclass
class TrainConfig:
    """Every knob of ``keras-vit train`` (see ``keras-vit train --help``)."""

    model: str = "vit_cifar_patch4_32"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    data: str = "cifar10"
    data_dir: str = None
    eval_data: str = None  # default: the test split of ``data``
    output_dir: str = "runs/train"
    epochs: int = 10
    batch_size: int = 128  # global, over all replicas
    steps_per_epoch: int = None  # default: train examples // batch_size
    max_train_examples: int = None  # use only the first N (sorted) training examples
    max_eval_examples: int = None
    eval_every: int = 1  # epochs
    # optimizer
    learning_rate: float = 1e-3  # at base_batch_size; scaled by lr_scaling
    base_batch_size: int = 512
    lr_scaling: str = "linear"
    warmup_epochs: float = 1.0
    min_learning_rate: float = 1e-6
    weight_decay: float = 0.05
    beta_2: float = 0.999
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    # model regularization
    dropout_rate: float = 0.0
    drop_path_rate: float = 0.1
    augment: Augment = dataclasses.field(default_factory=Augment)  # set as augment={...} or flat (crop=...)
    # execution
    strategy: str = "auto"
    tpu: str = ""
    logical_cpus: int = 0  # split the CPU into N logical devices (MirroredStrategy on one CPU)
    threads: int = 0  # TensorFlow intra-op threads (0 = all cores)
    precision: str = "float32"
    jit_compile: bool = True
    seed: int = 0
    checkpoint_every: int = 500  # steps (also at every epoch end)
    keep_checkpoints: int = 3
    log_every: int = 50  # steps, TensorBoard scalars (and a stdout line without the progress bar)
    progress: bool = True
    # wall-clock budget (training/budget.py): minutes, 0 = off; the schedule is fitted after calibration_steps
    time_budget: float = 0.0
    calibration_steps: int = 20
    on_nan: str = "stop"  # a non-finite loss or gradient: "stop" the run, or "skip" the step
    # transfer (keras-vit finetune): start from a checkpoint's encoder with a new zero head
    weights: str = None  # a checkpoint file or name (keras-vit models --pretrained); None: from scratch
    weights_source: str = None  # npz | timm | huggingface (default: told by the file)
    optimizer: str = "adamw"  # "adamw" (the from-scratch recipe) or "sgd" (momentum, no decay: the transfer recipe)
    momentum: float = 0.9  # SGD's
    mean: tuple = None  # override the checkpoint's input normalization
    std: tuple = None

    def update(self, values: dict) -> "TrainConfig":
        """Sets fields from ``values``; unknown keys raise with the list of valid ones.

        Augmentation settings may come nested (``augment={"crop": "none"}``, as :meth:`to_json` writes
        them) or flat (``crop="none"``, as flags, config files and run folders written before
        ``augment`` existed give them); either form changes only the settings it names.
        """
        values = dict(values)
        augment = values.pop("augment", None) or {}
        augment = dataclasses.asdict(augment) if isinstance(augment, Augment) else dict(augment)
        augment.update({key: values.pop(key) for key in AUGMENT_FIELDS if key in values})
        known = [f.name for f in dataclasses.fields(self)] + list(AUGMENT_FIELDS)
        unknown = sorted((set(values) - set(known)) | (set(augment) - set(AUGMENT_FIELDS)))
        if unknown:
            raise ValueError(f"Unknown training option(s) {unknown}; valid options: {sorted(known)}.")
        for key, value in values.items():
            setattr(self, key, value)
        if augment:
            self.augment = dataclasses.replace(self.augment, **augment)
        if self.on_nan not in ON_NAN:
            raise ValueError(f"on_nan must be one of {ON_NAN}; received on_nan={self.on_nan!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; received optimizer={self.optimizer!r}.")
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """The config a run folder's ``config.json`` holds (nested or, from older runs, flat augmentation)."""
        return cls().update(json.loads(text))


def load_config_file(path: str, runlocal: bool = False) -> dict:
    """Runs a config file's ``get_config(runlocal)``; ``path`` may name a bundled config (``cifar10_vit_small``)."""
    if not os.path.isfile(path):
        bundled = os.path.join(os.path.dirname(__file__), "configs", f"{path.removesuffix('.py')}.py")
        if not os.path.isfile(bundled):
            names = sorted(f[:-3] for f in os.listdir(os.path.dirname(bundled)) if f.endswith(".py") and
                           not f.startswith("_"))
            raise FileNotFoundError(f"Config file not found: config={path!r}. Bundled configs: {names}.")
        path = bundled
    spec = importlib.util.spec_from_file_location("keras_vit_train_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"Config file {path!r} must define get_config(runlocal: bool = False) -> dict.")
    return dict(module.get_config(runlocal=runlocal))


def smoke(config: TrainConfig) -> TrainConfig:
    """Shrinks any config to seconds: 2 epochs of 4 steps on a few hundred examples."""
    return config.update({
        "epochs": 2, "steps_per_epoch": 4, "batch_size": min(config.batch_size, 32),
        "max_train_examples": 512, "max_eval_examples": 256, "checkpoint_every": 4, "log_every": 2,
        "calibration_steps": min(config.calibration_steps, 3),
    })
