"""A small ViT (patch 8, D128, 4 layers) trained from scratch on CIFAR-10 in ~20 minutes of one CPU core.

Command:
    nice keras-vit train --config cifar10_vit_small --output-dir /work/runs/cifar10

Hardware: one core of a shared 2-core x86 CPU (--threads 1), no GPU.
Time and accuracy: see benchmarks/RESULTS_training.md (measured, with the command).
Quick check: ``--smoke`` (2 epochs x 4 steps, seconds).
"""


def get_config(runlocal: bool = False) -> dict:
    config = dict(
        model="vit_cifar_patch4_32",
        model_overrides=dict(name="vit_cifar_small_patch8_32", patch_size=8, hidden_dim=128, num_layers=4,
                             num_heads=4, mlp_dim=256),
        data="cifar10",
        epochs=8,
        batch_size=128,
        learning_rate=1e-3,
        base_batch_size=128,
        warmup_epochs=1.0,
        weight_decay=0.05,
        label_smoothing=0.1,
        drop_path_rate=0.0,
        crop="pad",
        threads=1,
        checkpoint_every=200,
    )
    if runlocal:
        config.update(epochs=2, steps_per_epoch=4, max_train_examples=512, max_eval_examples=256)
    return config
