"""Original ViT ``.npz`` checkpoints -> keras_vit, proven against timm's own ``.npz`` reader.

No original checkpoint can be downloaded here, so a subprocess writes one: it
builds a random timm ViT and saves its weights under the original names and
shapes (the mapping is ``TO_NPZ`` below, from google-research/vision_transformer
``vit_jax/models_vit.py``: flax ``Dense`` kernels are (in, out), attention
kernels (D, heads, D/heads), the patch kernel (P, P, C, D)). timm's reader
(``model.load_pretrained(path)`` -> ``_load_weights``) loads that file into a
fresh timm model, whose logits on CIFAR-10 are the reference; keras_vit loads
the same file with its own converter.
"""

import importlib.util
import json

import numpy as np
import pytest

from conftest import run_python

if importlib.util.find_spec("timm") is None:
    pytest.skip("timm is in the test extra: pip install -e '.[test]'", allow_module_level=True)

import keras_vit  # noqa: E402
from keras_vit.preprocessing import Preprocessing  # noqa: E402
from keras_vit.weights import WeightMismatchError, load_weights  # noqa: E402

# The reference subprocess (torch + the source library) takes 15-30 s: every test here waits on it.
pytestmark = pytest.mark.slow

TO_NPZ = """
import json, os, numpy as np, torch, timm

def to_npz(model, prefix="", pre_logits=None):
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    dim, heads = sd["cls_token"].shape[-1], model.blocks[0].attn.num_heads
    out = {"embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
           "embedding/bias": sd["patch_embed.proj.bias"], "cls": sd["cls_token"],
           "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
           "Transformer/encoder_norm/scale": sd["norm.weight"], "Transformer/encoder_norm/bias": sd["norm.bias"]}
    if "head.weight" in sd:
        out["head/kernel"], out["head/bias"] = sd["head.weight"].T, sd["head.bias"]
    if pre_logits is not None:  # an i21k-style head: pre_logits (Dense + tanh in vit_jax) then head
        out["pre_logits/kernel"], out["pre_logits/bias"], out["head/kernel"], out["head/bias"] = pre_logits
    for i in range(len(model.blocks)):
        b, t = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        out[t + "LayerNorm_0/scale"], out[t + "LayerNorm_0/bias"] = sd[b + "norm1.weight"], sd[b + "norm1.bias"]
        out[t + "LayerNorm_2/scale"], out[t + "LayerNorm_2/bias"] = sd[b + "norm2.weight"], sd[b + "norm2.bias"]
        for j, name in enumerate(("query", "key", "value")):
            w = sd[b + "attn.qkv.weight"][j * dim:(j + 1) * dim]
            out[t + f"MultiHeadDotProductAttention_1/{name}/kernel"] = w.T.reshape(dim, heads, dim // heads)
            out[t + f"MultiHeadDotProductAttention_1/{name}/bias"] = (
                sd[b + "attn.qkv.bias"][j * dim:(j + 1) * dim].reshape(heads, dim // heads))
        out[t + "MultiHeadDotProductAttention_1/out/kernel"] = (
            sd[b + "attn.proj.weight"].T.reshape(heads, dim // heads, dim))
        out[t + "MultiHeadDotProductAttention_1/out/bias"] = sd[b + "attn.proj.bias"]
        for j, fc in enumerate(("fc1", "fc2")):
            out[t + f"MlpBlock_3/Dense_{j}/kernel"] = sd[b + f"mlp.{fc}.weight"].T
            out[t + f"MlpBlock_3/Dense_{j}/bias"] = sd[b + f"mlp.{fc}.bias"]
    return {prefix + k: np.ascontiguousarray(v) for k, v in out.items()}

for job in json.load(open(os.environ["JOBS"])):
    torch.manual_seed(job["seed"])
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, **job["args"]).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    dim = source.embed_dim
    pre_logits = None
    if job.get("pre_logits"):
        rng = np.random.default_rng(0)
        pre_logits = tuple(rng.normal(size=shape).astype("float32") for shape in ((dim, dim), (dim,), (dim, 10), (10,)))
    np.savez(job["save"], **to_npz(source, job.get("prefix", ""), pre_logits))
    # timm's own .npz reader builds the reference, from the file alone.
    reader = timm.create_model("vit_tiny_patch16_224", pretrained=False, **job["reader_args"]).eval()
    reader.load_pretrained(job["save"])
    x = torch.from_numpy(np.load(job["inputs"])).permute(0, 3, 1, 2)
    with torch.no_grad():
        np.save(job["out"], reader(x).numpy())
"""

TEST_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cifar10_sample):
    root = tmp_path_factory.mktemp("npz")
    images, _ = cifar10_sample
    np.save(root / "x32.npy", Preprocessing(32).normalize(images[:64]))  # Google checkpoints: inputs in [-1, 1]
    np.save(root / "x64.npy", Preprocessing(64).normalize(np.repeat(np.repeat(images[:16], 2, 1), 2, 2)))
    r = str(root)

    def job(name, args, seed, x="x32", reader_args=None, **extra):
        return {"save": f"{r}/{name}.npz", "out": f"{r}/{name}.npy", "inputs": f"{r}/{x}.npy", "seed": seed,
                "args": args, "reader_args": reader_args or args, **extra}

    features = {**TEST_ARGS, "num_classes": 0}
    jobs = [
        job("test", TEST_ARGS, 0),
        job("ti16", dict(img_size=32, num_classes=10), 1),  # ViT-Ti/16 at 32x32 (a 2x2 grid)
        job("ti32", dict(img_size=64, patch_size=32, num_classes=10), 2, x="x64"),  # ViT-Ti/32
        job("target", TEST_ARGS, 3, prefix="opt/target/"),  # vit_jax train.py's checkpoint layout
        job("prelogits", features, 4, pre_logits=True),  # i21k style: pre_logits present
        job("at64", TEST_ARGS, 5, x="x64", reader_args={**TEST_ARGS, "img_size": 64}),
    ]
    (root / "jobs.json").write_text(json.dumps(jobs))
    run_python(TO_NPZ, env={"JOBS": str(root / "jobs.json")})
    return root


def max_diff(model, reference, name, x="x32"):
    return float(np.abs(np.asarray(model(np.load(reference / f"{x}.npy"))) - np.load(reference / f"{name}.npy")).max())


@pytest.mark.parametrize("name, variant, overrides, x", [
    ("test", "vit_test", {}, "x32"),
    ("ti16", "Ti/16", dict(image_size=32, num_classes=10), "x32"),
    ("ti32", "Ti/32", dict(image_size=64, num_classes=10), "x64"),
    ("target", "vit_test", {}, "x32"),
])
def test_npz_logits_match_timms_npz_reader(reference, name, variant, overrides, x):
    model = keras_vit.create_model(variant, **overrides)
    report = load_weights(model, str(reference / f"{name}.npz"))
    assert report.source == "npz" and not report.missing and not report.unexpected
    assert report.preprocessing.mean == (0.5, 0.5, 0.5) and report.preprocessing.std == (0.5, 0.5, 0.5)
    assert max_diff(model, reference, name, x) <= 1e-4


def test_npz_at_a_larger_image_matches_timm(reference):
    """timm's .npz reader resamples bilinearly without antialiasing; load_weights does the same for .npz."""
    model = keras_vit.create_model("vit_test", image_size=64)
    assert load_weights(model, str(reference / "at64.npz")).resampled == ((4, 4), (8, 8))
    assert max_diff(model, reference, "at64", "x64") <= 1e-4


def test_pre_logits_npz_features_match_and_the_tanh_gap_is_refused(reference):
    path = str(reference / "prelogits.npz")
    # The paper's transfer recipe drops pre-logits and head: the encoder features are exact.
    features = keras_vit.create_model("vit_test", num_classes=0)
    report = load_weights(features, path, skip_head=True)
    assert report.skipped == ["head/head/bias", "head/head/kernel", "head/pre_logits/bias", "head/pre_logits/kernel"]
    assert max_diff(features, reference, "prelogits") <= 1e-4
    # Loading pre_logits into a GELU head would change the logits silently: refused, nothing written.
    model = keras_vit.create_model("vit_test", num_classes=10, representation_size=32)
    before = [v.numpy().copy() for v in model.weights]
    with pytest.raises(WeightMismatchError, match="tanh"):
        load_weights(model, path)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


def test_pre_logits_with_a_tanh_head_gives_the_original_logits(reference):
    """vit_jax's head: logits = tanh(features @ W_pre + b_pre) @ W_head + b_head, on timm's exact features."""
    import inspect

    if "representation_activation" not in inspect.signature(keras_vit.VisionTransformer).parameters:
        pytest.skip("needs VisionTransformer(representation_activation='tanh'): the head change in the weights report")
    arrays = np.load(reference / "prelogits.npz")
    features = np.load(reference / "prelogits.npy").astype("float64")
    hidden = np.tanh(features @ arrays["pre_logits/kernel"] + arrays["pre_logits/bias"])
    expected = hidden @ arrays["head/kernel"] + arrays["head/bias"]
    model = keras_vit.create_model("vit_test", representation_size=32, representation_activation="tanh")
    report = load_weights(model, str(reference / "prelogits.npz"))
    assert not report.missing and not report.unexpected
    assert np.abs(np.asarray(model(np.load(reference / "x32.npy"))) - expected).max() <= 1e-4


def test_npz_with_other_num_heads_is_refused(reference):
    model = keras_vit.create_model("vit_test", num_heads=4)  # same shapes, different function
    with pytest.raises(WeightMismatchError, match="num_heads"):
        load_weights(model, str(reference / "test.npz"))


# The original format's shapes for every paper size (Table 1): all map onto our layout. One block each,
# so ViT-L stays small; the names and shapes per block are the same at every depth.
@pytest.mark.parametrize("variant, pre_logits", [("Ti/16", False), ("Ti/32", True), ("S/16", True), ("S/32", False),
                                                 ("B/16", False), ("B/32", True), ("L/16", True), ("L/32", False)])
def test_every_paper_variant_layout_loads(tmp_path, variant, pre_logits):
    from keras_vit.registry import variant_config

    config = variant_config(variant)
    dim, heads, mlp, patch = config["hidden_dim"], config["num_heads"], config["mlp_dim"], config["patch_size"]
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.normal(size=shape).astype("float32")

    t = "Transformer/encoderblock_0/"
    arrays = {"embedding/kernel": r(patch, patch, 3, dim), "embedding/bias": r(dim), "cls": r(1, 1, dim),
              "Transformer/posembed_input/pos_embedding": r(1, 5, dim), "Transformer/encoder_norm/scale": r(dim),
              "Transformer/encoder_norm/bias": r(dim), "head/kernel": r(dim, 1000), "head/bias": r(1000),
              t + "LayerNorm_0/scale": r(dim), t + "LayerNorm_0/bias": r(dim), t + "LayerNorm_2/scale": r(dim),
              t + "LayerNorm_2/bias": r(dim), t + "MlpBlock_3/Dense_0/kernel": r(dim, mlp),
              t + "MlpBlock_3/Dense_0/bias": r(mlp), t + "MlpBlock_3/Dense_1/kernel": r(mlp, dim),
              t + "MlpBlock_3/Dense_1/bias": r(dim), t + "MultiHeadDotProductAttention_1/out/kernel":
              r(heads, dim // heads, dim), t + "MultiHeadDotProductAttention_1/out/bias": r(dim)}
    for name in ("query", "key", "value"):
        arrays[t + f"MultiHeadDotProductAttention_1/{name}/kernel"] = r(dim, heads, dim // heads)
        arrays[t + f"MultiHeadDotProductAttention_1/{name}/bias"] = r(heads, dim // heads)
    if pre_logits:
        arrays["pre_logits/kernel"], arrays["pre_logits/bias"] = r(dim, dim), r(dim)
    np.savez(tmp_path / "w.npz", **arrays)
    model = keras_vit.create_model(variant, num_layers=1, image_size=2 * patch)
    report = load_weights(model, str(tmp_path / "w.npz"), skip_head=pre_logits)
    assert not report.missing and not report.unexpected
    qkv = model.get_layer("block_0").attention.qkv.kernel.numpy()
    np.testing.assert_array_equal(qkv[:, dim:2 * dim], arrays[t + "MultiHeadDotProductAttention_1/key/kernel"]
                                  .reshape(dim, dim))
