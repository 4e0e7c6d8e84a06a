"""A quick CIFAR-10 ViT for the int8 accuracy study when no trained model exists yet.

The training helper's model (/work/runs/cifar10/best.keras) is preferred; until it exists this
trains ``vit_cifar_patch4_32`` with ``model.fit`` on the first N real CIFAR-10 training JPEGs for a
few epochs (random horizontal flips), so the quantization study has a model with real, peaked
logits. It is not a good CIFAR model (tens of percent, not ninety); retention is what is measured.

Command (2 CPU cores, nice'd; ~2-3 min an epoch at 10k images):
    nice -n 10 python benchmarks/tflite_reference_model.py --images 10000 --epochs 3 \
        --output /work/runs/tflite/cifar10_reference.keras
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="vit_cifar_patch4_32")
    parser.add_argument("--output", default="/work/runs/tflite/cifar10_reference.keras")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    import keras_vit
    from keras_vit.datasets import CIFAR10_LABELS, cifar10_dir
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.atomic import atomic_path, atomic_write
    from keras_vit.images import read_image_folder

    train_root, test_root = cifar10_dir("train"), cifar10_dir("test")
    if train_root is None:
        print("CIFAR-10 archives not found (set KERAS_VIT_DATA)", file=sys.stderr)
        return 2
    x, y, classes = read_image_folder(train_root, 32, limit=args.images, seed=0)
    assert tuple(classes) == CIFAR10_LABELS, classes
    xt, yt, _ = read_image_folder(test_root, 32, limit=2000, seed=0)
    keras.utils.set_random_seed(0)
    model = keras_vit.create_model(args.model)
    p = Preprocessing.for_model(model)
    x, xt = p.normalize(x), p.normalize(xt)
    steps = args.epochs * (len(x) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=1e-3, warmup_steps=steps // 10)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    def flips(epoch_seed):
        rng = np.random.default_rng(epoch_seed)
        flip = rng.random(len(x)) < 0.5
        return np.where(flip[:, None, None, None], x[:, :, ::-1], x)

    start = time.time()
    for epoch in range(args.epochs):
        model.fit(flips(epoch), y, batch_size=args.batch_size, epochs=1, verbose=2)
    _, accuracy = model.evaluate(xt, yt, batch_size=256, verbose=0)
    print(f"trained {args.model} on {len(x)} images x {args.epochs} epochs in {time.time() - start:.0f} s; "
          f"top-1 on 2,000 test images: {accuracy:.4f}")
    with atomic_path(args.output) as temporary:
        model.save(temporary)
    atomic_write(os.path.splitext(args.output)[0] + ".txt", f"{args.model} {len(x)} images {args.epochs} epochs "
                 f"test2000 top1 {accuracy:.4f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
