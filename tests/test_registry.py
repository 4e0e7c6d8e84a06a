"""The variant registry: both notations, close-name suggestions, pinned parameter counts."""

import pytest

import keras_vit
from keras_vit.registry import notation_of, resolve_name, variant_config

# With their default heads (1000 classes at 224/384, 10 for 32x32 and test variants).
# Ti/16, S/16, B/16, L/16 are the original implementation's counts (google-research/vision_transformer).
PINNED_PARAMS = {
    "vit_tiny_patch16_224": 5_717_416,
    "vit_small_patch16_224": 22_050_664,
    "vit_base_patch16_224": 86_567_656,
    "vit_large_patch16_224": 304_326_632,
    "vit_tiny_patch16_384": 5_790_376,
    "vit_tiny_patch32_224": 6_131_560,
    "vit_tiny_patch32_384": 6_149_800,
    "vit_small_patch16_384": 22_196_584,
    "vit_small_patch32_224": 22_878_952,
    "vit_small_patch32_384": 22_915_432,
    "vit_base_patch16_384": 86_859_496,
    "vit_base_patch32_224": 88_224_232,
    "vit_base_patch32_384": 88_297_192,
    "vit_large_patch16_384": 304_715_752,
    "vit_large_patch32_224": 306_535_400,
    "vit_large_patch32_384": 306_632_680,
    "vit_huge_patch14_224": 632_045_800,
    "vit_tiny_patch4_32": 5_362_762,
    "vit_small_patch4_32": 21_342_346,
    "vit_base_patch4_32": 85_152_010,
    "vit_cifar_patch4_32": 2_693_578,
    "vit_digits_patch2_8": 202_186,
    "vit_test": 32_554,
    # The hybrid (conv stem + 1x1 patches); vit_hybrid_cifar_conv3x1_32 is CCT-7/3x1's size (CCT: 3.760M,
    # with a sequence-pooling head and no projection after its tokenizer).
    "vit_hybrid_cifar_conv3x1_32": 3_831_818,
    "vit_hybrid_cifar_conv3x2_32": 632_074,
    "vit_hybrid_tiny_conv16_224": 5_825_560,
    "vit_hybrid_test": 21_530,
}
LARGE = 50_000_000


def test_every_registered_variant_has_a_pinned_count():
    assert sorted(PINNED_PARAMS) == keras_vit.list_models()


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if PINNED_PARAMS.get(n, 0) > LARGE else n
        for n in keras_vit.list_models()
    ],
)
def test_parameter_count_is_pinned(name):
    assert keras_vit.create_model(name).count_params() == PINNED_PARAMS[name]


def test_the_paper_counts_with_a_1000_class_head_at_224():
    counts = {n: keras_vit.create_model(n).count_params() for n in ("Ti/16", "S/16")}
    assert counts == {"Ti/16": 5_717_416, "S/16": 22_050_664}


@pytest.mark.parametrize(
    "notation,name",
    [("Ti/16", "vit_tiny_patch16_224"), ("B/32", "vit_base_patch32_224"), ("L/16@384", "vit_large_patch16_384"),
     ("H/14", "vit_huge_patch14_224"), ("S/4", "vit_small_patch4_32")],
)
def test_paper_notation_resolves(notation, name):
    assert resolve_name(notation) == name
    assert notation_of(name) == notation


def test_paper_dimensions():
    assert {k: variant_config("B/16")[k] for k in ("hidden_dim", "num_layers", "num_heads", "mlp_dim")} == {
        "hidden_dim": 768, "num_layers": 12, "num_heads": 12, "mlp_dim": 3072
    }
    for name in keras_vit.list_models("vit_*_patch*"):
        config = variant_config(name)
        assert config["mlp_dim"] == 4 * config["hidden_dim"], name


def test_overrides_win_and_name_defaults_to_the_variant():
    model = keras_vit.create_model("Ti/16", num_classes=10, image_size=64)
    assert model.name == "vit_tiny_patch16_224"
    assert model.output_shape == (None, 10)
    assert model.input_shape == (None, 64, 64, 3)


def test_list_models_filters_by_glob():
    assert keras_vit.list_models("vit_huge*") == ["vit_huge_patch14_224"]
    assert "vit_test" in keras_vit.list_models()


@pytest.mark.parametrize("bad,suggestion", [("vit_tiny_patch16", "vit_tiny_patch16_224"), ("B/17", "B/16")])
def test_unknown_names_suggest_the_closest(bad, suggestion):
    with pytest.raises(ValueError, match=f"Unknown ViT variant '{bad}'.*Did you mean.*'{suggestion}'"):
        keras_vit.create_model(bad)


def test_cli_lists_models(capsys):
    from keras_vit.cli import main

    assert main(["models", "vit_tiny_patch16_*"]) == 0
    out = capsys.readouterr().out
    assert "vit_tiny_patch16_224" in out and "Ti/16" in out and "vit_small" not in out
