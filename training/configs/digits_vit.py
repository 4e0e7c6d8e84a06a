"""vit_digits_patch2_8 (8x8 grayscale, patch 2, D64, 4 layers) on scikit-learn's bundled digits.

Command:
    keras-vit train --config digits_vit --output-dir runs/digits

Hardware: a shared 2-core x86 CPU, no GPU.
Time and accuracy: see benchmarks/RESULTS_training.md (measured, with the command).
Quick check: ``--smoke`` (2 epochs x 4 steps, seconds).
"""


def get_config(runlocal: bool = False) -> dict:
    config = dict(
        model="vit_digits_patch2_8",
        data="digits",
        epochs=30,
        batch_size=64,
        learning_rate=2e-3,
        base_batch_size=64,
        warmup_epochs=2.0,
        weight_decay=0.05,
        label_smoothing=0.1,
        drop_path_rate=0.1,
        crop="pad",
        padding=1,
        flip=False,  # digits are not mirror-symmetric
        checkpoint_every=1000,
    )
    if runlocal:
        config.update(epochs=2, steps_per_epoch=4, max_train_examples=512, max_eval_examples=256)
    return config
