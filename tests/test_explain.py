"""keras_vit.explain: the numbers against independent computations, the pictures, and the commands."""

import math
import os

import numpy as np
import pytest

from conftest import run_python

keras = pytest.importorskip("keras")
pytest.importorskip("matplotlib")

import keras_vit  # noqa: E402
from keras_vit import explain  # noqa: E402
from keras_vit.cli import main  # noqa: E402
from keras_vit.explain.canvas import save_figure  # noqa: E402


def _scale_weights(model, fragment, factor):
    for variable in model.weights:
        if fragment in variable.path:
            variable.assign(variable * factor)
    return model


@pytest.fixture(scope="module")
def sharp_model():
    """vit_test (4 x 4 grid of 8-px patches, 2 blocks, 2 heads) with its qkv scaled up, so attention is far from uniform."""
    keras.utils.set_random_seed(0)
    return _scale_weights(keras_vit.create_model("vit_test"), "/qkv/", 3.0)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


def _blocks_own_weights(model, images):
    """Runs the layers by name, as the model summary lists them, and collects each block's weights."""
    x = model.preprocessing.to_inputs(images)
    x = model.get_layer("embedding_dropout")(model.get_layer("patch_encoder")(model.get_layer("patches")(x)))
    weights = []
    for i in range(model.num_layers):
        x, w = model.get_layer(f"block_{i}")(x, return_attention_scores=True)
        weights.append(keras.ops.convert_to_numpy(w).astype(np.float64))
    return weights  # layers x (batch, heads, tokens, tokens)


def test_attention_maps_are_the_blocks_own_weights(sharp_model, images):
    maps = explain.attention_maps(sharp_model, images, batch_size=2)  # two forward passes, concatenated
    assert maps.shape == (3, 2, 2, 17, 17)
    own = _blocks_own_weights(sharp_model, images)
    for layer in range(2):
        np.testing.assert_allclose(maps[:, layer], own[layer], atol=1e-5)  # float32, other batch split
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    assert maps.max() > 0.3  # the scaled qkv really makes some attention peaked


def _rollout_by_loops(weights_per_layer, image):
    tokens = weights_per_layer[0].shape[-1]
    rollout = [[float(i == j) for j in range(tokens)] for i in range(tokens)]
    for weights in weights_per_layer:
        heads = weights.shape[1]
        mixed = [[0.5 * sum(weights[image, h, i, j] for h in range(heads)) / heads + 0.5 * (i == j)
                  for j in range(tokens)] for i in range(tokens)]
        mixed = [[value / sum(row) for value in row] for row in mixed]
        rollout = [[sum(mixed[i][k] * rollout[k][j] for k in range(tokens)) for j in range(tokens)]
                   for i in range(tokens)]
    cls = rollout[0][1:]
    return np.array([value / sum(cls) for value in cls])


def test_rollout_matches_an_explicit_computation(sharp_model, images):
    rollout = explain.attention_rollout(sharp_model, images)
    assert rollout.shape == (3, 4, 4)
    np.testing.assert_allclose(rollout.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert rollout.min() >= 0
    own = _blocks_own_weights(sharp_model, images)
    for image in range(3):
        np.testing.assert_allclose(rollout[image].ravel(), _rollout_by_loops(own, image), atol=1e-6)
    assert rollout.std() > 1e-3  # not the uniform map: the test would not tell the blocks apart otherwise


def _mean_distance_by_loops(weights_per_layer, grid, patch_size):
    rows, cols = grid
    batch, heads = weights_per_layer[0].shape[:2]
    result = np.zeros((len(weights_per_layer), heads))
    for layer, weights in enumerate(weights_per_layer):
        for h in range(heads):
            total = 0.0
            for b in range(batch):
                for q in range(rows * cols):
                    keys = weights[b, h, 1 + q, 1:]
                    keys = keys / keys.sum()
                    for k in range(rows * cols):
                        dy, dx = (q // cols - k // cols) * patch_size, (q % cols - k % cols) * patch_size
                        total += keys[k] * math.sqrt(dy * dy + dx * dx)
            result[layer, h] = total / (batch * rows * cols)
    return result


def test_mean_distance_matches_an_explicit_computation(sharp_model, images):
    distance = explain.mean_attention_distance(sharp_model, images, batch_size=2)
    assert distance.shape == (2, 2)
    expected = _mean_distance_by_loops(_blocks_own_weights(sharp_model, images), (4, 4), 8)
    np.testing.assert_allclose(distance, expected, rtol=1e-6)
    assert np.all(distance > 0) and np.all(distance < math.hypot(32, 32))


def test_uniform_attention_has_the_analytic_mean_distance():
    # Zero q and k: every score is 0, so each query attends uniformly. On a 2 x 2 grid of 16-px patches a query is
    # 0 px from itself, 16 px from two neighbours and 16 * sqrt(2) px from the diagonal one: mean 4 * (2 + sqrt(2)).
    model = keras_vit.create_model("vit_test", patch_size=16)
    _scale_weights(model, "/qkv/", 0.0)
    pixels = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(explain.attention_maps(model, pixels), 1 / 5, atol=1e-6)
    np.testing.assert_allclose(explain.mean_attention_distance(model, pixels), 4 * (2 + math.sqrt(2)), rtol=1e-6)
    # By symmetry the [class] token's rollout spreads evenly over the four patches.
    np.testing.assert_allclose(explain.attention_rollout(model, pixels), 0.25, atol=1e-6)


def test_a_non_square_image_gets_its_own_grid():
    model = keras_vit.VisionTransformer(image_size=(16, 32), patch_size=8, num_classes=3, hidden_dim=16,
                                        num_layers=1, num_heads=2, mlp_dim=32)
    assert explain.patch_grid(model) == ((2, 4), (8.0, 8.0))
    pixels = np.zeros((1, 16, 32, 3), np.uint8)
    assert explain.attention_rollout(model, pixels).shape == (1, 2, 4)
    assert explain.position_embedding_similarity(model).shape == (2, 4, 2, 4)
    assert explain.mean_attention_distance(model, pixels).max() < math.hypot(16, 32)


def test_position_similarity_is_the_cosine_of_the_embeddings(sharp_model):
    similarity = explain.position_embedding_similarity(sharp_model)
    assert similarity.shape == (4, 4, 4, 4)
    flat = similarity.reshape(16, 16)
    np.testing.assert_allclose(np.diag(flat), 1.0, atol=1e-12)
    np.testing.assert_allclose(flat, flat.T, atol=1e-12)
    table = keras.ops.convert_to_numpy(sharp_model.get_layer("patch_encoder").position_embeddings)[0]
    a, b = table[1 + 1 * 4 + 2], table[1 + 3 * 4 + 0]  # patches (1, 2) and (3, 0); token 0 is [class]
    assert similarity[1, 2, 3, 0] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6)


def test_patch_components_are_the_principal_axes_of_the_filters(sharp_model):
    from sklearn.decomposition import PCA

    components = explain.patch_embedding_components(sharp_model, n=5)
    assert components.shape == (5, 8, 8, 3)
    flat = components.reshape(5, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(5), atol=1e-9)
    kernel = keras.ops.convert_to_numpy(sharp_model.get_layer("patch_encoder").projection.kernel)
    reference = PCA(n_components=5, svd_solver="full").fit(kernel.T.astype(np.float64)).components_
    np.testing.assert_allclose(np.abs(np.sum(flat * reference, axis=1)), 1.0, atol=1e-6)  # same axes up to sign


def _png(path):
    from PIL import Image

    with Image.open(path) as image:
        return image.size, np.asarray(image.convert("L"), np.float64)


@pytest.mark.parametrize("name, draw, size", [
    ("attention", lambda m, x: explain.plot_attention(x[:2], explain.attention_rollout(m, x[:2]),
                                                      explain.attention_maps(m, x[:2]), ["a", "b"]), (1000, 400)),
    ("distance", lambda m, x: explain.plot_mean_distance(explain.mean_attention_distance(m, x), (32, 32)), (450, 350)),
    ("position", lambda m, x: explain.plot_position_similarity(explain.position_embedding_similarity(m)), (450, 400)),
    ("components", lambda m, x: explain.plot_patch_components(explain.patch_embedding_components(m)), (700, 400)),
    ("tradeoff", lambda m, x: explain.plot_export_tradeoff([
        {"mode": "float32", "size_bytes": 2_400_000, "latency_ms": 4.0, "top1": 0.53},
        {"mode": "int8", "size_bytes": 700_000, "latency_ms": 1.9, "agreement": 0.97}]), (1000, 400)),
])
def test_pictures_have_their_size_and_are_not_blank(sharp_model, images, tmp_path, name, draw, size):
    path = save_figure(draw(sharp_model, images), tmp_path / f"{name}.png")
    pixel_size, grey = _png(path)
    assert pixel_size == size
    assert grey.std() > 10, f"{name}.png looks blank (grey-level std {grey.std():.1f})"


def test_export_tradeoff_says_what_a_result_lacks():
    with pytest.raises(ValueError, match="latency_ms"):
        explain.plot_export_tradeoff([{"mode": "int8", "size_bytes": 1, "top1": 0.5}])
    with pytest.raises(ValueError, match="top1 nor agreement"):
        explain.plot_export_tradeoff([{"mode": "int8", "size_bytes": 1, "latency_ms": 1.0}])


def test_attention_command_on_a_saved_model_and_real_images(sharp_model, cifar10_sample, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i, pixels in enumerate(cifar10_sample[0][::40]):  # 5 images, one of every other class
        Image.fromarray(pixels).save(folder / f"{i}.png")
    model_path = str(tmp_path / "model.keras")
    sharp_model.save(model_path)
    output, figures = tmp_path / "att.png", tmp_path / "figures"
    assert main(["attention", model_path, str(folder), "--output", str(output), "--rows", "3",
                 "--figures", str(figures)]) == 0
    printed = capsys.readouterr().out
    assert "mean attention distance over 5 image(s)" in printed and "note:" not in printed
    assert _png(output)[0] == (1000, 600)  # 3 rows x (image, masked, rollout, 2 blocks) of 200 px
    for name, size in (("mean_distance", (450, 350)), ("position_similarity", (450, 400)),
                       ("patch_components", (700, 400))):
        pixel_size, grey = _png(figures / f"{name}.png")
        assert pixel_size == size and grey.std() > 10


def test_attention_command_on_a_variant_name_says_the_weights_are_random(tmp_path, capsys):
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(image)
    assert main(["attention", "vit_test", str(image), "--output", str(tmp_path / "a.png")]) == 0
    assert "random weights" in capsys.readouterr().out
    assert _png(tmp_path / "a.png")[0] == (1000, 200)
    assert main(["attention", str(tmp_path / "missing.keras"), str(image)]) == 2
    assert "missing.keras" in capsys.readouterr().err
    assert main(["attention", "vit_test.no_such_tag", str(image)]) == 2  # a checkpoint name, refused before fetching
    assert "Unknown pretrained checkpoint" in capsys.readouterr().err


def _write_history(run_dir, epochs=3):
    from keras_vit.training.history import History

    history = History(str(run_dir))
    for epoch in range(epochs):
        history.add_epoch(epoch, {"step": 10 * (epoch + 1), "train_loss": 2.3 - 0.2 * epoch,
                                  "train_accuracy": 0.1 + 0.1 * epoch, "learning_rate": 1e-3 / (epoch + 1),
                                  "images_per_s": 100.0, "epoch_seconds": 30.0,
                                  **({"eval_loss": 2.2 - 0.2 * epoch, "eval_accuracy": 0.15 + 0.1 * epoch}
                                     if epoch != 1 else {})})


def test_plot_command_draws_the_run(tmp_path, capsys):
    _write_history(tmp_path)
    assert main(["plot", str(tmp_path)]) == 0
    assert "3 epochs, 30 steps, last eval accuracy 35.0%" in capsys.readouterr().out
    pixel_size, grey = _png(tmp_path / "curves.png")
    assert pixel_size == (1200, 650) and grey.std() > 10
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "keras-vit train" in capsys.readouterr().err


NO_MATPLOTLIB = """
import contextlib, io, sys

class HideMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, HideMatplotlib())
from keras_vit.cli import main
for argv in (["plot", RUN_DIR], ["attention", "vit_test", "x.png"]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    print(argv[0], code, err.getvalue().strip())
print("tensorflow imported:", "tensorflow" in sys.modules)
"""


def test_without_matplotlib_the_commands_say_how_to_install_it(tmp_path):
    with open(tmp_path / "history.csv", "w") as f:
        f.write("epoch,step,train_loss\n0,10,2.3\n")
    out = run_python(f"RUN_DIR = {str(tmp_path)!r}\n" + NO_MATPLOTLIB)
    hint = "pip install 'keras-vit[plot]'"
    assert f"plot 1 error: " in out and f"attention 1 error: " in out and out.count(hint) == 2, out
    assert "tensorflow imported: False" in out, out  # both stop before loading a model


def test_plot_command_does_not_import_tensorflow(tmp_path):
    with open(tmp_path / "history.csv", "w") as f:
        f.write("epoch,step,train_loss,epoch_seconds\n0,10,2.3,5\n1,20,2.1,5\n")
    out = run_python(f"import sys\nfrom keras_vit.cli import main\nprint(main(['plot', {str(tmp_path)!r}]))\n"
                     f"print('tensorflow imported:', 'tensorflow' in sys.modules)")
    assert out.splitlines()[-2:] == ["0", "tensorflow imported: False"], out
