"""``keras-vit models [PATTERN] [--pretrained]``: the registered variants with their sizes, or the known checkpoints."""

from keras_vit.pretrained import SOURCE, close_names, list_pretrained
from keras_vit.registry import list_models, notation_of, variant_config


def add_arguments(parser):
    parser.add_argument("pattern", nargs="?", default=None, help="glob over names, e.g. 'vit_tiny_*'")
    parser.add_argument("--pretrained", action="store_true",
                        help="list the known checkpoints (create_model(NAME, pretrained=True)) with ImageNet top-1")


def _pretrained(pattern) -> int:
    entries = list_pretrained(pattern)
    if not entries:
        close = close_names(pattern or "")
        print(f"No known checkpoint matches {pattern!r}." + (f" Closest: {', '.join(close)}" if close else ""))
        return 1
    width = max(len(e.name) for e in entries)
    print(f"{'name':<{width}} {'variant':<22} {'image':>5} {'classes':>7} {'pretrain':<11} {'top1':>6} {'crop':>4}")
    for e in entries:
        top1 = f"{e.top1:6.2f}" if e.top1 is not None else "     -"
        crop = f"{e.crop_pct:4.2f}" if e.crop_pct is not None else "   -"
        print(f"{e.name:<{width}} {e.variant:<22} {e.image_size:>5} {e.num_classes:>7} {e.pretrain:<11} {top1} {crop}")
    print(f"top1: ImageNet-1k validation accuracy (%) from {SOURCE}.")
    return 0


def run(args) -> int:
    if args.pretrained:
        return _pretrained(args.pattern)
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
