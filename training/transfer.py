"""Fine-tuning's model and optimizer: a checkpoint's encoder with a zero head, and the paper's SGD.

``keras-vit finetune`` is a ``keras-vit train`` run whose ``TrainConfig.weights`` names a checkpoint;
``run.train`` builds its model here (not in the command's module, which imports ``run``).

Example:
    >>> from keras_vit.training.transfer import transfer_optimizer
    >>> type(transfer_optimizer(steps=100, warmup_steps=10, learning_rate=0.01)).__name__
    'SGD'
"""


def transfer_model(name, weights, class_names, image_size=None, source=None, **overrides):
    """The checkpoint's encoder and contract with a fresh zero-initialised head for ``class_names``.

    Returns:
        ``(model, report)``; ``model.preprocessing`` is the checkpoint's input contract.
    """
    from keras_vit.factory import create_model, load_pretrained, resolve
    from keras_vit.weights import load_weights

    if image_size:
        overrides["image_size"] = image_size
    if resolve(weights).kind == "checkpoint":  # fetched, cached and verified by keras_vit.weights.hub
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
