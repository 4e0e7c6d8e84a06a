"""``keras-vit evaluate``: loss and top-1 accuracy of a saved ``.keras`` model on a data split.

The input contract and class names are the model's own (``model.preprocessing``,
``model.class_names``); a folder's classes are matched to the model's by name.

Example:
    keras-vit evaluate /work/runs/cifar10/best.keras --data cifar10 --split test
"""

import argparse
import json
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a .keras file saved by keras-vit train")
    parser.add_argument("--data", default="cifar10",
                        help="digits | cifar10 | folder:PATH | PATH | tfds:NAME | tfds-folder:PATH")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--split", default="test", help="train | test (default: test)")
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size")
    parser.add_argument("--max-examples", type=int, default=None, help="evaluate a seeded subset of N examples")
    parser.add_argument("--strategy", default="auto", help="auto | one_device | mirrored | multi_worker | tpu")
    parser.add_argument("--output", default=None, help="also write the summary to this JSON file")


def evaluate(model_path: str, data: str = "cifar10", split: str = "test", batch_size: int = 256,
             data_dir=None, max_examples=None, strategy_name: str = "auto", progress: bool = True) -> dict:
    """Evaluates a ``.keras`` model; returns ``{"loss", "accuracy", "examples", "seconds", ...}``."""
    import time

    from tqdm import tqdm

    from keras_vit.preprocessing import Preprocessing
    from keras_vit.serialization import load_model
    from keras_vit.training import data as data_lib
    from keras_vit.training import sources
    from keras_vit.training.loop import Trainer
    from keras_vit.training.strategy import get_strategy, split_batch

    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"Model file not found: model={model_path!r}. Pass a .keras file from keras-vit train.")
    strategy = get_strategy(strategy_name)
    split_batch(batch_size, strategy)
    with strategy.scope():
        model = load_model(model_path)
    contract = Preprocessing.for_model(model)
    class_names = getattr(model, "class_names", None)
    source = sources.subset(sources.load_source(data, split, data_dir, class_names=class_names), max_examples)
    classes = model.output_shape[-1]
    if len(source.class_names) != classes:
        raise ValueError(f"The model has {classes} classes but data={data!r} has {len(source.class_names)}.")
    dataset = strategy.distribute_datasets_from_function(lambda ctx: data_lib.eval_dataset(
        source, contract, batch_size=ctx.get_per_replica_batch_size(batch_size), global_batch_size=batch_size,
        num_pipelines=ctx.num_input_pipelines, pipeline_id=ctx.input_pipeline_id))
    trainer = Trainer(model, None, strategy, global_batch_size=batch_size)
    start = time.time()
    steps = -(-source.num_examples // batch_size)
    with tqdm(total=steps, desc="evaluate", disable=not progress) as bar:
        result = trainer.evaluate(dataset, progress=bar, steps=steps)
    seconds = time.time() - start
    return {"model": model_path, "data": data, "split": split, **result, "seconds": round(seconds, 2),
            "images_per_s": round(result["examples"] / max(seconds, 1e-9), 1),
            "skipped_files": len(getattr(source, "skipped", []))}


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    summary = evaluate(args.model, args.data, args.split, args.batch_size, args.data_dir, args.max_examples,
                       args.strategy)
    print(f"{summary['examples']} images of {args.data!r} ({args.split}): top-1 accuracy "
          f"{summary['accuracy']:.4f}, loss {summary['loss']:.4f} ({summary['seconds']} s)")
    if args.output:
        from keras_vit.atomic import atomic_write

        atomic_write(args.output, json.dumps(summary, indent=2))
    return 0
