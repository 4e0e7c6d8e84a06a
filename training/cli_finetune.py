"""``keras-vit finetune``: pretrained weights -> a new task, with the paper's transfer recipe.

The recipe of Dosovitskiy et al. 2021 (Sec. 3.2 and App. B.1.1) and their
vit_jax code: the pre-trained head (and pre-logits layer) is replaced by one
zero-initialised ``Dense`` for the new classes; SGD with momentum 0.9, no
weight decay, gradients clipped to global norm 1.0, a linear warmup then cosine
decay; fine-tuning at a higher resolution than pre-training is fine because
the position embeddings are interpolated (``load_weights`` does it).

Inputs are normalized by the checkpoint's contract (``load_weights`` sets it on
the model: ``[-1, 1]`` for Google ``.npz`` checkpoints; the config file's
mean/std for timm / Hugging Face folders; ``--mean``/``--std`` override it). The
saved model carries that contract and the data's class names, so ``keras-vit
export`` and ``evaluate`` need no preprocessing or label flags.

Example (runs in about a minute on 2 CPU cores):
    keras-vit finetune --model vit_test --weights timm_vit_test/model.safetensors \\
        --data cifar10 --steps 50 --batch-size 32 --output runs/finetune
"""

import argparse
import json
import math
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="variant, e.g. Ti/16 (default with a checkpoint name: its own)")
    parser.add_argument("--weights", required=True, help="checkpoint: original .npz, timm/HF .safetensors or .pth, "
                                                         "or a name (keras-vit models --pretrained)")
    parser.add_argument("--source", choices=("npz", "timm", "huggingface"), default=None,
                        help="checkpoint layout (default: told by the file)")
    parser.add_argument("--data", required=True, help="digits, cifar10, folder:PATH (PATH/train/<class>/...)")
    parser.add_argument("--image-size", type=int, default=None, help="fine-tuning resolution (default: the model's)")
    parser.add_argument("--steps", type=int, default=500, help="training steps (batches)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of --steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.01, help="peak SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clip")
    parser.add_argument("--eval-examples", type=int, default=1000, help="test examples to score (0: none)")
    parser.add_argument("--mean", type=float, nargs="+", default=None, help="override the checkpoint's mean")
    parser.add_argument("--std", type=float, nargs="+", default=None, help="override the checkpoint's std")
    parser.add_argument("--layer-norm-epsilon", type=float, default=None,
                        help="the checkpoint's LayerNorm epsilon (Hugging Face configs: 1e-12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="folder for model.keras and finetune.json")


def _validate(args):
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1; received {getattr(args, name)}.")
    if args.warmup_steps is not None and not 0 <= args.warmup_steps < args.steps:
        raise SystemExit(f"--warmup-steps must be in [0, --steps); received {args.warmup_steps}.")
    if args.learning_rate <= 0 or args.clip_norm <= 0:
        raise SystemExit("--learning-rate and --clip-norm must be > 0.")
    from keras_vit.weights.hub import is_checkpoint_name

    if not os.path.isfile(args.weights) and not is_checkpoint_name(args.weights):
        raise SystemExit(f"--weights {args.weights!r} does not exist and is not a checkpoint name "
                         f"(keras-vit models --pretrained lists them).")
    if args.model is None and not is_checkpoint_name(args.weights):
        raise SystemExit("--model is required with a checkpoint file.")


def transfer_model(name, weights, class_names, image_size=None, source=None, **overrides):
    """The checkpoint's encoder and contract with a fresh zero-initialised head for ``class_names``.

    Returns:
        ``(model, report)``; ``model.preprocessing`` is the checkpoint's input contract.
    """
    from keras_vit.registry import create_model
    from keras_vit.weights import load_weights

    if image_size:
        overrides["image_size"] = image_size
    if not os.path.isfile(weights):  # a checkpoint name: fetched, cached and verified by keras_vit.weights.hub
        from keras_vit.weights.hub import load_pretrained

        pretrained, report = load_pretrained(weights, name, skip_head=True, representation_size=None, **overrides)
        return pretrained.reset_classifier(len(class_names), list(class_names)), report
    pretrained = create_model(name, representation_size=None, **overrides)
    report = load_weights(pretrained, weights, source, skip_head=True)
    return pretrained.reset_classifier(len(class_names), list(class_names)), report


def transfer_optimizer(steps, warmup_steps, learning_rate, momentum=0.9, clip_norm=1.0):
    """SGD with momentum, global-norm clipping, warmup then cosine decay, no weight decay."""
    import keras

    from keras_vit.training.recipe import warmup_cosine

    schedule = warmup_cosine(learning_rate, warmup_steps, steps)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=momentum, global_clipnorm=clip_norm)


def _accuracy(model, source, contract, batch_size):
    from keras_vit.training import data

    correct = total = 0.0
    for images, labels, weights in data.eval_dataset(source, contract, batch_size=batch_size):
        predicted = model(images, training=False).numpy().argmax(-1)
        correct += float(((predicted == labels.numpy()) * weights.numpy()).sum())
        total += float(weights.numpy().sum())
    return correct / max(total, 1.0)


def _save(model, summary, output):
    from keras_vit.atomic import atomic_path, atomic_write

    with atomic_path(os.path.join(output, "model.keras")) as temporary:
        model.save(temporary)
    atomic_write(os.path.join(output, "finetune.json"), json.dumps(summary, indent=2))


def run(args) -> int:
    import dataclasses

    import keras

    from keras_vit.training import data, sources

    _validate(args)
    keras.utils.set_random_seed(args.seed)
    train = sources.load_source(args.data, "train")
    overrides = {} if args.layer_norm_epsilon is None else {"layer_norm_epsilon": args.layer_norm_epsilon}
    model, report = transfer_model(args.model, args.weights, train.class_names, args.image_size,
                                   args.source, **overrides)
    print(report.summary())
    contract = model.preprocessing
    if args.mean is not None or args.std is not None:
        contract = dataclasses.replace(contract, mean=tuple(args.mean or contract.mean),
                                       std=tuple(args.std or contract.std))
        model.set_contract(contract)
    print(f"Preprocessing contract: mean={contract.mean} std={contract.std} size={contract.image_size}")
    most_per_epoch = min(args.steps, train.num_examples // args.batch_size)
    if most_per_epoch < 1:
        raise SystemExit(f"--batch-size {args.batch_size} exceeds the {train.num_examples} training examples.")
    # Epochs of equal length covering --steps (at most epochs - 1 more); the schedule spans exactly those steps.
    epochs = math.ceil(args.steps / most_per_epoch)
    steps_per_epoch = math.ceil(args.steps / epochs)
    total = steps_per_epoch * epochs
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 20)
    model.compile(optimizer=transfer_optimizer(total, warmup, args.learning_rate, args.momentum, args.clip_norm),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    stream = data.train_dataset(train, contract, batch_size=args.batch_size,
                                steps_per_epoch=steps_per_epoch, seed=args.seed,
                                augment=data.Augment(crop="none", flip=True))
    history = model.fit(stream, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=2, shuffle=False)
    summary = {"model": args.model, "weights": os.path.abspath(args.weights) if os.path.isfile(args.weights) else args.weights, "source": report.source,
               "data": args.data, "steps": total, "warmup_steps": warmup,
               "learning_rate": args.learning_rate, "batch_size": args.batch_size,
               "final_loss": float(history.history["loss"][-1]), "load_report": report.summary()}
    if args.eval_examples:
        test = sources.subset(sources.load_source(args.data, "test", class_names=train.class_names),
                              args.eval_examples, args.seed)
        summary["test_accuracy"] = _accuracy(model, test, contract, args.batch_size)
        summary["test_examples"] = test.num_examples
        print(f"Test accuracy on {test.num_examples} examples: {summary['test_accuracy']:.4f}")
    _save(model, summary, args.output)
    print(f"Saved {os.path.join(args.output, 'model.keras')} (with its input contract and class names)")
    return 0
