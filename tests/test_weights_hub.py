"""Checkpoints by name, with no internet: a stand-in Hub and bucket on 127.0.0.1 serve random-weight repositories.

The stand-in answers what ``hf_hub_download`` (huggingface_hub 2.4) asks: ``HEAD``/``GET
/<org>/<repo>/resolve/<revision>/<file>`` with ``X-Repo-Commit``, ``ETag`` (the sha256 of weights, as Git
LFS files have; the git blob id of small files) and ``Content-Length``; ``404`` with ``X-Error-Code:
EntryNotFound`` for files a repository lacks. ``keras.utils.get_file`` fetches ``.npz`` files from
``/vit_models/<path>.npz`` (``KERAS_VIT_NPZ_URL`` points there). The repositories are tiny (vit_test sizes),
written by ``export_timm`` / ``export_huggingface`` and registered under test names.
"""

import hashlib
import http.server
import importlib.util
import json
import os
import socket
import threading
import urllib.parse
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import run_python

import keras_vit  # noqa: E402
from keras_vit.datasets import CIFAR10_LABELS  # noqa: E402
from keras_vit.preprocessing import Preprocessing  # noqa: E402
from keras_vit.weights import (  # noqa: E402
    CorruptCheckpointError, DownloadError, Pretrained, export_huggingface, export_timm, layout, model_weights,
    register_pretrained,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
TIMM_NAME, TIMM_REPO = "vit_test.standin_timm", "standin/vit_test.standin_timm"
HF_REPO, NPZ_PATH = "standin/vit-test-hf", "standin/vit_test"


class StandIn(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> (bytes, ETag)); counts requests. Stops itself after ``lifetime`` s."""

    daemon_threads = True

    def __init__(self, lifetime=600):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.requests = {}, 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.timer = threading.Timer(lifetime, self.shutdown)
        self.timer.daemon = True
        self.timer.start()

    def add_repo(self, repo_id, folder, revision="main", served=None):
        """Every file of ``folder``; ``served`` maps a file name to other bytes sent under the true ETag."""
        for name in os.listdir(folder):
            data = open(os.path.join(folder, name), "rb").read()
            lfs = not name.endswith(".json")
            etag = (hashlib.sha256(data).hexdigest() if lfs
                    else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
            body = (served or {}).get(name, data)
            self.files[f"/{repo_id}/resolve/{revision}/{name}"] = (body, etag)

    def close(self):
        self.timer.cancel()
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, with_body):
        self.server.requests += 1
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        found = self.server.files.get(path)
        if found is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, etag = found
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self._answer(False)

    def do_GET(self):  # noqa: N802
        self._answer(True)


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_model(seed, **overrides):
    model = keras_vit.create_model("vit_test", **overrides)
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(v.numpy() + rng.normal(scale=0.05, size=v.shape).astype("float32"))
    return model


def to_npz(weights, heads):
    """Our weights -> the original ViT .npz names and shapes (the inverse of keras_vit.weights.convert_npz)."""
    kernel = weights[layout.PATCH_KERNEL]
    dim = kernel.shape[1]
    patch = int(round((kernel.shape[0] // 3) ** 0.5))
    out = {"embedding/kernel": kernel.reshape(patch, patch, 3, dim), "embedding/bias": weights[layout.PATCH_BIAS],
           "cls": weights[layout.CLASS_TOKEN], "Transformer/posembed_input/pos_embedding": weights[layout.POSITION_EMBEDDINGS],
           "Transformer/encoder_norm/scale": weights["head/norm/gamma"],
           "Transformer/encoder_norm/bias": weights["head/norm/beta"],
           "head/kernel": weights["head/head/kernel"], "head/bias": weights["head/head/bias"]}
    for i in range(layout.count_blocks(weights, "block_{}/norm1/gamma")):
        t, b = f"Transformer/encoderblock_{i}/", lambda name: weights[layout.block(i, name)]
        out.update({t + "LayerNorm_0/scale": b("norm1/gamma"), t + "LayerNorm_0/bias": b("norm1/beta"),
                    t + "LayerNorm_2/scale": b("norm2/gamma"), t + "LayerNorm_2/bias": b("norm2/beta"),
                    t + "MlpBlock_3/Dense_0/kernel": b("mlp/fc1/kernel"), t + "MlpBlock_3/Dense_0/bias": b("mlp/fc1/bias"),
                    t + "MlpBlock_3/Dense_1/kernel": b("mlp/fc2/kernel"), t + "MlpBlock_3/Dense_1/bias": b("mlp/fc2/bias"),
                    t + "MultiHeadDotProductAttention_1/out/kernel": b("attention/proj/kernel").reshape(heads, -1, dim),
                    t + "MultiHeadDotProductAttention_1/out/bias": b("attention/proj/bias")})
        for name, k, bias in zip(("query", "key", "value"), np.split(b("attention/qkv/kernel"), 3, axis=1),
                                 np.split(b("attention/qkv/bias"), 3)):
            out[t + f"MultiHeadDotProductAttention_1/{name}/kernel"] = k.reshape(dim, heads, -1)
            out[t + f"MultiHeadDotProductAttention_1/{name}/bias"] = bias.reshape(heads, -1)
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The stand-in with three checkpoints: timm layout, transformers layout, an original-layout .npz."""
    root = tmp_path_factory.mktemp("standin")
    server = StandIn()
    timm_model = random_model(0)
    export_timm(timm_model, str(root / "timm"), Preprocessing(32, mean=IMAGENET[0], std=IMAGENET[1],
                                                              interpolation="bicubic"))
    server.add_repo(TIMM_REPO, root / "timm")
    hf_model = random_model(1, layer_norm_epsilon=1e-12)
    export_huggingface(hf_model, str(root / "hf"), labels=CIFAR10_LABELS)
    server.add_repo(HF_REPO, root / "hf")
    npz_model = random_model(2)
    np.savez(root / "vit_test.npz", **to_npz(model_weights(npz_model), npz_model.num_heads))
    npz_bytes = (root / "vit_test.npz").read_bytes()
    server.files[f"/vit_models/{NPZ_PATH}.npz"] = (npz_bytes, "npz")
    server.files["/vit_models/standin/tampered.npz"] = (npz_bytes[:1000] + bytes([npz_bytes[1000] ^ 1]) + npz_bytes[1001:], "npz")
    for entry in (Pretrained(TIMM_NAME, "vit_test", 32, 10, "in1k", repo=TIMM_REPO),
                  Pretrained("npz:" + NPZ_PATH, "vit_test", 32, 10, "in1k",
                             sha256=hashlib.sha256(npz_bytes).hexdigest()),
                  Pretrained("npz:standin/tampered", "vit_test", 32, 10, "in1k",
                             sha256=hashlib.sha256(npz_bytes).hexdigest())):
        if keras_vit.weights.find_pretrained(entry.name) is None:
            register_pretrained(entry)
    yield SimpleNamespace(server=server, root=root, timm=timm_model, hf=hf_model, npz=npz_model)
    server.close()


@pytest.fixture
def online(hub, tmp_path, monkeypatch):
    """A fresh, empty cache for each test, and the stand-in as Hub and bucket."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", hub.server.url)
    monkeypatch.setenv("KERAS_VIT_NPZ_URL", hub.server.url + "/vit_models/")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return monkeypatch


def same_weights(a, b):
    first, second = model_weights(a), model_weights(b)
    return first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def go_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dead = f"http://127.0.0.1:{unused_port()}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setenv("KERAS_VIT_NPZ_URL", dead + "/vit_models/")


def test_timm_name_is_fetched_exactly_with_its_contract_then_loads_offline(hub, online):
    model = keras_vit.create_model(TIMM_NAME, pretrained=True)
    assert same_weights(model, hub.timm)
    assert (model.mean, model.std, model.interpolation) == (IMAGENET[0], IMAGENET[1], "bicubic")
    assert model.class_names is None and model.num_classes == 10
    served = hub.server.requests
    go_offline(online)
    again = keras_vit.create_model(TIMM_NAME, pretrained=True)
    assert same_weights(again, hub.timm) and hub.server.requests == served
    # A variant named beside the checkpoint keeps its own size: position embeddings are resampled.
    online.delenv("HF_HUB_OFFLINE")
    online.setenv("HF_ENDPOINT", hub.server.url)
    bigger = keras_vit.create_model("vit_test", image_size=64, weights="hf-hub:" + TIMM_REPO)
    assert bigger.input_shape[1:3] == (64, 64)


def test_hf_repo_gives_class_names_and_epsilon_from_its_config(hub, online):
    model = keras_vit.create_model("hf-hub:" + HF_REPO)
    assert same_weights(model, hub.hf)
    assert model.class_names == list(CIFAR10_LABELS) and model.layer_norm_epsilon == 1e-12
    head = keras_vit.create_model("hf-hub:" + HF_REPO, num_classes=3)  # another head: the encoder loads
    assert head.num_classes == 3 and head.class_names is None


def test_npz_from_the_bucket_is_pinned_cached_and_refused_when_tampered(hub, online, tmp_path):
    model = keras_vit.create_model("npz:" + NPZ_PATH)
    assert same_weights(model, hub.npz) and model.mean == (0.5, 0.5, 0.5)
    go_offline(online)
    assert same_weights(keras_vit.create_model("npz:" + NPZ_PATH), hub.npz)  # from the cache, hash checked
    online.setenv("KERAS_VIT_NPZ_URL", hub.server.url + "/vit_models/")
    with pytest.raises(CorruptCheckpointError, match="hash"):
        keras_vit.create_model("npz:standin/tampered")
    assert not os.path.exists(tmp_path / "keras_home" / "keras_vit" / "standin--tampered.npz")


@pytest.mark.parametrize("etag", ["true", "no-hash"])
def test_truncated_or_altered_download_is_refused_and_not_cached(hub, online, etag):
    weights = (hub.root / "timm" / "model.safetensors").read_bytes()
    repo = f"standin/broken-{etag}"
    hub.server.add_repo(repo, hub.root / "timm", served={"model.safetensors": weights[: len(weights) // 2]})
    if etag == "no-hash":  # a server whose ETag is no content hash: the reader must catch the truncation
        key = f"/{repo}/resolve/main/model.safetensors"
        hub.server.files[key] = (hub.server.files[key][0], "W-not-a-hash")
    with pytest.raises(CorruptCheckpointError, match="removed from the cache"):
        keras_vit.create_model("hf-hub:" + repo)
    online.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        keras_vit.create_model("hf-hub:" + repo)


def test_no_network_names_the_url_and_how_to_work_offline(online):
    dead = f"http://127.0.0.1:{unused_port()}"
    online.setenv("HF_ENDPOINT", dead)
    with pytest.raises(DownloadError) as caught:
        keras_vit.create_model(TIMM_NAME, pretrained=True)
    message = str(caught.value)
    assert f"{dead}/{TIMM_REPO}/resolve/main/config.json" in message and "HF_HUB_OFFLINE=1" in message
    online.setenv("KERAS_VIT_NPZ_URL", dead + "/vit_models/")
    with pytest.raises(DownloadError, match=f"{dead}/vit_models/{NPZ_PATH}.npz"):
        keras_vit.create_model("npz:" + NPZ_PATH)


def test_unknown_names_get_the_closest_known_ones():
    with pytest.raises(ValueError, match="vit_base_patch16_224.augreg_in21k_ft_in1k"):
        keras_vit.create_model("vit_base_patch16_224.augreg_in21k_ft_in1", pretrained=True)
    with pytest.raises(ValueError, match="No known checkpoint"):
        keras_vit.create_model("vit_cifar_patch4_32", pretrained=True)
    # Without pretrained=True a timm name builds its architecture with random weights, as timm does.
    model = keras_vit.create_model("vit_tiny_patch16_224.augreg_in21k")
    assert model.num_classes == 21843 and model.input_shape[1:3] == (224, 224)


def test_known_table_and_models_cli(capsys):
    from keras_vit import cli

    table = {e.name: e for e in keras_vit.weights.list_pretrained()}
    assert table["vit_large_patch16_384.augreg_in21k_ft_in1k"].top1 == 87.096
    assert keras_vit.weights.find_pretrained("vit_base_patch16_224").name.endswith("augreg2_in21k_ft_in1k")
    assert len(keras_vit.pretrained.imagenet1k_classes()) == 1000
    for entry in table.values():  # every row names a registered variant
        assert keras_vit.registry.resolve_name(entry.variant) == entry.variant
    assert cli.main(["models", "--pretrained", "vit_small_patch16_*"]) == 0
    out = capsys.readouterr().out
    assert "vit_small_patch16_384.augreg_in21k_ft_in1k" in out and "83.81" in out


def test_predict_prints_labels_for_a_name_and_a_keras_file(hub, online, tmp_path, capsys, cifar10_sample):
    from PIL import Image

    from keras_vit import cli

    images, labels = cifar10_sample
    Image.fromarray(images[0]).save(tmp_path / "image.png")
    assert cli.main(["predict", "hf-hub:" + HF_REPO, str(tmp_path / "image.png"), "--top-k", "3"]) == 0
    by_name = capsys.readouterr().out
    assert sum(name in by_name for name in CIFAR10_LABELS) == 3
    keras_vit.create_model("hf-hub:" + HF_REPO).save(tmp_path / "m.keras")
    assert cli.main(["predict", str(tmp_path / "m.keras"), str(tmp_path / "image.png"), "--top-k", "3"]) == 0
    assert capsys.readouterr().out.split("\n", 1)[1] == by_name.split("\n", 1)[1]


REFERENCE = """
import json, os, numpy as np, torch, timm
from transformers import ViTForImageClassification
job = json.load(open(os.environ["JOB"]))
args = json.load(open(os.path.join(job["timm"], "config.json")))["model_args"]
timm_model = timm.create_model("vit_base_patch16_224", pretrained=True, pretrained_cfg_overlay=dict(
    file=os.path.join(job["timm"], "model.safetensors"), num_classes=args["num_classes"]), **args).eval()
hf_model = ViTForImageClassification.from_pretrained(job["hf"]).eval()
with torch.no_grad():
    for model, x, out in ((timm_model, job["x_timm"], job["y_timm"]), (hf_model, job["x_hf"], job["y_hf"])):
        y = model(torch.from_numpy(np.load(x)).permute(0, 3, 1, 2))
        np.save(out, (y.logits if hasattr(y, "logits") else y).numpy())
"""


@pytest.mark.slow  # the torch reference subprocess takes 15-30 s
@pytest.mark.skipif(importlib.util.find_spec("timm") is None or importlib.util.find_spec("transformers") is None,
                    reason="timm and transformers are in the test extra: pip install -e '.[test]'")
def test_models_loaded_by_name_equal_timm_and_transformers_on_cifar(hub, online, tmp_path, cifar10_sample):
    images, _ = cifar10_sample
    timm_model = keras_vit.create_model(TIMM_NAME, pretrained=True)
    hf_model = keras_vit.create_model("hf-hub:" + HF_REPO)
    job = {"timm": str(hub.root / "timm"), "hf": str(hub.root / "hf")}
    for key, model in (("timm", timm_model), ("hf", hf_model)):
        job[f"x_{key}"], job[f"y_{key}"] = str(tmp_path / f"x_{key}.npy"), str(tmp_path / f"y_{key}.npy")
        np.save(job[f"x_{key}"], model.preprocessing.normalize(images[:64]))  # each checkpoint's own contract
    (tmp_path / "job.json").write_text(json.dumps(job))
    run_python(REFERENCE, env={"JOB": str(tmp_path / "job.json")})
    for key, model in (("timm", timm_model), ("hf", hf_model)):
        ours = np.asarray(model(np.load(job[f"x_{key}"])))
        assert np.abs(ours - np.load(job[f"y_{key}"])).max() <= 1e-4, key


def test_finetune_takes_a_checkpoint_name(hub, online):
    from keras_vit.training.cli_finetune import transfer_model

    model, report = transfer_model(None, TIMM_NAME, ["cat", "dog"], image_size=64)
    assert model.num_classes == 2 and model.class_names == ["cat", "dog"] and report.resampled == ((4, 4), (8, 8))
    ours, source = model_weights(model), model_weights(hub.timm)
    assert all(np.array_equal(ours[k], source[k]) for k in ours if k.startswith("block_"))
    assert model.mean == IMAGENET[0]
