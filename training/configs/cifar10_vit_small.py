"""A small ViT (patch 8, D128, 4 layers, 558k parameters) trained from scratch on CIFAR-10 on one CPU core.

Command:
    nice keras-vit train --config cifar10_vit_small --output-dir /work/runs/cifar10

Hardware: one core (--threads 1) of a 2-core AMD EPYC shared with other jobs (load 4-8), no GPU.
Time: ~13-16 min per epoch there (~60 img/s); 4 epochs took ~71 min of wall time.
Accuracy reached: 52.9% top-1 on the 10,000 CIFAR-10 test images after 4 epochs (38.7%, 44.5%,
51.3% after epochs 1-3). That run began with an 8-epoch schedule, was stopped at step ~800 and
resumed with ``--epochs 4`` (see benchmarks/RESULTS.md); this file now says 4 epochs.
Quick check: ``--smoke`` (2 epochs x 4 steps, seconds).
"""


def get_config(runlocal: bool = False) -> dict:
    config = dict(
        model="vit_cifar_patch4_32",
        model_overrides=dict(name="vit_cifar_small_patch8_32", patch_size=8, hidden_dim=128, num_layers=4,
                             num_heads=4, mlp_dim=256),
        data="cifar10",
        epochs=4,
        batch_size=128,
        learning_rate=1e-3,
        base_batch_size=128,
        warmup_epochs=1.0,
        weight_decay=0.05,
        label_smoothing=0.1,
        drop_path_rate=0.0,
        augment=dict(crop="pad"),
        threads=1,
        checkpoint_every=200,
    )
    if runlocal:
        config.update(epochs=2, steps_per_epoch=4, max_train_examples=512, max_eval_examples=256)
    return config
