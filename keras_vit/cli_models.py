"""``keras-vit models [PATTERN]``: the registered variants with their sizes."""


def add_arguments(parser):
    parser.add_argument("pattern", nargs="?", default=None, help="glob over canonical names, e.g. 'vit_tiny_*'")


def run(args) -> int:
    from keras_vit.registry import list_models, notation_of, variant_config

    names = list_models(args.pattern)
    if not names:
        print(f"No variant matches {args.pattern!r}.")
        return 1
    print(f"{'name':<24} {'notation':<10} {'image':>5} {'patch':>5} {'D':>5} {'L':>3} {'heads':>5} {'MLP':>5}")
    for name in names:
        c = variant_config(name)
        print(
            f"{name:<24} {notation_of(name) or '-':<10} {c['image_size']:>5} {c['patch_size']:>5} "
            f"{c['hidden_dim']:>5} {c['num_layers']:>3} {c['num_heads']:>5} {c['mlp_dim']:>5}"
        )
    return 0
