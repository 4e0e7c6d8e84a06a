"""vit_digits_patch2_8 (8x8 grayscale, patch 2, D64, 4 layers) on scikit-learn's bundled digits.

Command:
    keras-vit train --config digits_vit --output-dir runs/digits

Hardware: a 2-core AMD EPYC shared with other jobs, no GPU.
Time: 2 min 43 s wall for 30 epochs x 22 steps (~2-3 s an epoch, ~500-700 img/s).
Accuracy reached: 90.3% top-1 on the 360 held-out digits (keras_vit.datasets.load_digits split),
train accuracy 91.8% (with augmentation and label smoothing); measured 2026-11-28.
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
        augment=dict(crop="pad", padding=1, flip=False),  # digits are not mirror-symmetric
        checkpoint_every=1000,
    )
    if runlocal:
        config.update(epochs=2, steps_per_epoch=4, max_train_examples=512, max_eval_examples=256)
    return config
