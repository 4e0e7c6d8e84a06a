"""Hostile files: every reader refuses a mutated file with a clear error, and no process dies by a signal.

Small valid files are made once (a ``vit_test`` model saved as ``.keras``, exported to ``.tflite`` with
its JSON contract, its weights as timm ``.safetensors``, an original-ViT ``.npz`` and a ``torch.save``
``.pth``; real CIFAR-10 JPEGs and a PIL PNG). Each is mutated with a seeded NumPy RNG: byte flips (biased
to the bytes that are structure rather than weights) and truncations. Child processes read the mutants
in batches through the library and through ``keras-vit predict / verify / evaluate`` and report each
outcome as one JSON line; a child killed by a signal names the file it was reading (the last one it
started), which becomes a regression case in ``REGRESSIONS``.

The rule checked for every mutant: it loads, or it is refused with a ``ValueError`` /
``FileNotFoundError`` (the project's error classes derive from them) whose message names the file; a
command exits non-zero with one ``error:`` line and no traceback. Image decoding inside the training
pipeline skips and counts a bad file instead of ending the epoch. The figures are in
benchmarks/RESULTS.md, "Hostile files"; ``KERAS_VIT_FUZZ_SCALE=10`` multiplies the mutation counts.
"""

import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from conftest import run_python

SEED = 13
SCALE = int(os.environ.get("KERAS_VIT_FUZZ_SCALE", "1"))
# File type -> (byte-flip mutants, truncation mutants). Sized so the whole module takes about a minute.
PLAN = {
    "tflite": (60, 20), "json": (30, 10), "keras": (16, 8), "npz": (16, 8), "safetensors": (24, 8),
    "pth": (16, 8), "jpeg": (24, 8), "png": (16, 8),
}
CHILD_TIMEOUT = 300
# Mutants that once killed a reader or escaped as an undocumented error: (file type, kind, offset, value).
# A flip (kind "flip") writes ``value`` at ``offset``; a cut (kind "cut") keeps the first ``offset`` bytes.
REGRESSIONS = []

MAKE_FILES = r"""
import json, os, sys, numpy as np, keras_vit
from keras_vit.tflite.convert import export_tflite
from keras_vit.weights import export_timm, read_checkpoint
out = sys.argv[1]
model = keras_vit.create_model("vit_test")
model.save(os.path.join(out, "model.keras"))
export_tflite(model, os.path.join(out, "model.tflite"), mode="float32")
export_timm(model, os.path.join(out, "timm"))
sd = read_checkpoint(os.path.join(out, "timm", "model.safetensors"))
dim, heads = sd["cls_token"].shape[-1], model.num_heads
npz = {"embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0), "cls": sd["cls_token"],
       "embedding/bias": sd["patch_embed.proj.bias"], "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
       "Transformer/encoder_norm/scale": sd["norm.weight"], "Transformer/encoder_norm/bias": sd["norm.bias"],
       "head/kernel": sd["head.weight"].T, "head/bias": sd["head.bias"]}
for i in range(model.num_layers):
    b, t = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
    for ours, theirs in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
        npz[t + ours + "/scale"], npz[t + ours + "/bias"] = sd[b + theirs + ".weight"], sd[b + theirs + ".bias"]
    qkv_w, qkv_b = np.split(sd[b + "attn.qkv.weight"], 3), np.split(sd[b + "attn.qkv.bias"], 3)
    for name, w, bias in zip(("query", "key", "value"), qkv_w, qkv_b):
        npz[t + f"MultiHeadDotProductAttention_1/{name}/kernel"] = w.T.reshape(dim, heads, -1)
        npz[t + f"MultiHeadDotProductAttention_1/{name}/bias"] = bias.reshape(heads, -1)
    npz[t + "MultiHeadDotProductAttention_1/out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, -1, dim)
    npz[t + "MultiHeadDotProductAttention_1/out/bias"] = sd[b + "attn.proj.bias"]
    for j, fc in enumerate(("fc1", "fc2")):
        npz[t + f"MlpBlock_3/Dense_{j}/kernel"] = sd[b + f"mlp.{fc}.weight"].T
        npz[t + f"MlpBlock_3/Dense_{j}/bias"] = sd[b + f"mlp.{fc}.bias"]
np.savez(os.path.join(out, "model.npz"), **{k: np.ascontiguousarray(v) for k, v in npz.items()})
import torch
torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, os.path.join(out, "model.pth"))
"""

# The child: reads a job list [{"reader", "path"}], prints {"i": n} before each file and the outcome after.
CHILD = r"""
import contextlib, io, json, os, sys, traceback
jobs = json.load(open(sys.argv[1]))
context = json.load(open(sys.argv[2]))
cache = {}

def tflite_inspect(path):
    from keras_vit.tflite.inspection import inspect_file
    inspect_file(path)

def tflite_runtime(path):
    from keras_vit.tflite.runtime import LiteRTModel
    LiteRTModel(path, num_threads=1).classify(context["png"], top_k=1)

def contract(path):
    from keras_vit.tflite.contract import read_contract
    from keras_vit.tflite.runtime import LiteRTModel
    read_contract(path)
    LiteRTModel(context["tflite"], num_threads=1, contract=path).classify(context["png"], top_k=1)

def image(path):
    from keras_vit.images import load_image
    load_image(path, 32)

def keras_file(path):
    import keras_vit
    keras_vit.load_model(path)

def checkpoint(path):
    import keras_vit
    from keras_vit.weights import detect_format, load_weights, read_checkpoint
    if "model" not in cache:
        cache["model"] = keras_vit.create_model("vit_test")
    read_checkpoint(path, detect_format(path))
    load_weights(cache["model"], path)

def pipeline_decode(path):
    import tensorflow as tf
    from keras_vit.training.data import decode
    decode(tf.io.read_file(path), 3).numpy()

def pipeline_epoch(root):
    from keras_vit.preprocessing import Preprocessing
    from keras_vit.training import data, sources
    source = sources.load_source(root, "test")
    seen = sum(int(w.numpy().sum()) for _, _, w in data.eval_dataset(source, Preprocessing(32), batch_size=8))
    steps = source.num_examples // 4
    ds = data.train_dataset(source, Preprocessing(32), batch_size=4, steps_per_epoch=steps, seed=0)
    return {"listed": source.num_examples, "skipped": len(source.skipped), "seen": seen,
            "steps": sum(1 for _ in ds.take(2 * steps))}

def cli(path, argv):
    from keras_vit.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([a.replace("{}", path) for a in argv])
        except SystemExit as exit:
            rc = exit.code
        except BaseException:
            traceback.print_exc(file=err)
            rc = "traceback"
    return {"rc": rc, "stderr": err.getvalue()[-2000:], "stdout": out.getvalue()[-300:]}

READERS = {name: fn for name, fn in globals().items() if callable(fn) and not name.startswith("_")}
for i, job in enumerate(jobs):
    print(json.dumps({"i": i}), flush=True)
    if "argv" in job:
        record = {"i": i, "outcome": "cli", **cli(job["path"], job["argv"])}
    else:
        try:
            record = {"i": i, "outcome": "ok", "figures": READERS[job["reader"]](job["path"])}
        except BaseException as error:
            record = {"i": i, "outcome": "error", "types": [c.__name__ for c in type(error).__mro__],
                      "message": str(error)[:2000]}
    print(json.dumps(record), flush=True)
"""


def structure_offsets(kind, data):
    """Byte offsets that are structure (headers, tables, zip directories), not weight values."""
    n = len(data)
    if kind == "tflite":
        from ai_edge_litert import schema_py_generated as schema

        model = schema.Model.GetRootAs(data, 0)
        is_weight = np.zeros(n, bool)
        for i in range(model.BuffersLength()):
            buffer = model.Buffers(i)
            if buffer.DataLength():
                start = buffer._tab.Vector(buffer._tab.Offset(4))
                is_weight[start:start + buffer.DataLength()] = True
        return np.flatnonzero(~is_weight)
    if kind == "safetensors":
        return np.arange(min(n, 8 + int.from_bytes(data[:8], "little")))
    return np.unique(np.concatenate([np.arange(min(n, 1024)), np.arange(max(0, n - 1024), n)]))


def mutants(kind, data, rng):
    """``[(name, kind, offset, value, bytes)]``: seeded flips (mostly of structure bytes) and truncations."""
    flips, cuts = (count * SCALE for count in PLAN[kind])
    hot, out = structure_offsets(kind, data), []
    for j in range(flips):
        offset = int(rng.choice(hot) if rng.random() < 0.8 else rng.integers(len(data)))
        value = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]) if rng.random() < 0.5 else data[offset] ^ rng.integers(1, 256))
        out.append((f"flip{j}", "flip", offset, value))
    lengths = [0, 1, 8, len(data) // 2, len(data) - 1] + [int(x) for x in rng.integers(1, len(data), cuts)]
    out += [(f"cut{j}", "cut", length, None) for j, length in enumerate(lengths[:cuts])]
    return [(name, how, offset, value, mutate(data, how, offset, value)) for name, how, offset, value in out]


def contract_mutants(data):
    """Valid JSON with one field of the contract replaced by a value of the wrong type or range."""
    contract, out = json.loads(data), []
    fields = [(key,) for key in contract] + [("preprocessing", key) for key in contract["preprocessing"]]
    for field in fields:
        for j, value in enumerate((None, "x", -1, 0, [], {}, [1e309])):
            changed = json.loads(data)
            parent = changed if len(field) == 1 else changed[field[0]]
            parent[field[-1]] = value
            out.append((f"field-{'.'.join(field)}-{j}", "field", ".".join(field), repr(value),
                        json.dumps(changed).encode()))
    return out


def png_bomb(data):
    """The PNG with its header claiming 100,000 x 100,000 pixels (CRC fixed): PIL's decompression-bomb error."""
    import struct
    import zlib

    changed = bytearray(data)
    changed[16:24] = struct.pack(">II", 100_000, 100_000)
    changed[29:33] = struct.pack(">I", zlib.crc32(bytes(changed[12:29])))
    return [("bomb", "header", 16, "100000x100000", bytes(changed))]


def mutate(data, how, offset, value):
    if how == "cut":
        return data[:offset]
    changed = bytearray(data)
    changed[offset] = value
    return bytes(changed)


def run_children(jobs, context, folder):
    """Runs ``jobs`` in child processes; a child that dies is restarted after the file it was reading."""
    results, remaining = {}, list(range(len(jobs)))
    context_file = os.path.join(folder, "context.json")
    with open(context_file, "w") as handle:
        json.dump(context, handle)
    while remaining:
        job_file = os.path.join(folder, "jobs.json")
        with open(job_file, "w") as handle:
            json.dump([jobs[i] for i in remaining], handle)
        try:
            done = subprocess.run([sys.executable, "-c", CHILD, job_file, context_file], capture_output=True,
                                  text=True, timeout=CHILD_TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            stdout, rc = done.stdout, done.returncode
        except subprocess.TimeoutExpired as timeout:
            stdout, rc = (timeout.stdout or b"").decode(), "timeout"
        started = None
        for line in stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if "outcome" in record:
                    results[remaining[record["i"]]] = record
                    started = None
                else:
                    started = record["i"]
        if rc == 0 and started is None:
            break
        if started is None:
            raise AssertionError(f"the fuzz child failed before any file (rc {rc}):\n{done.stderr[-3000:]}")
        results[remaining[started]] = {"outcome": "died", "rc": rc}
        remaining = remaining[started + 1:]
    return [results[i] for i in range(len(jobs))]


def violations(jobs, results):
    """The jobs whose outcome breaks the rule, as readable lines."""
    found = []
    for job, result in zip(jobs, results):
        where = f"{job.get('reader') or ' '.join(job['argv'])} on {job['mutant']}"
        name = os.path.basename(job["path"])
        if result["outcome"] == "died":
            found.append(f"{where}: the child died ({result['rc']})")
        elif result["outcome"] == "error":
            documented = {"ValueError", "FileNotFoundError"} | set(job.get("also", ()))
            if not documented & set(result["types"]):
                found.append(f"{where}: undocumented {result['types'][0]}: {result['message'][:300]}")
            elif name not in result["message"] and not job.get("also"):
                found.append(f"{where}: the message does not name the file: {result['message'][:300]}")
        elif result["outcome"] == "cli":
            errors = [line for line in result["stderr"].splitlines() if line.startswith("error:")]
            if result["rc"] == "traceback" or "Traceback" in result["stderr"]:
                found.append(f"{where}: traceback\n{result['stderr'][-1500:]}")
            elif result["rc"] not in (0, 1, 2):
                found.append(f"{where}: exit code {result['rc']!r}")
            elif result["rc"] and not (len(errors) == 1 and name in errors[0]) and "verdict" not in result["stdout"]:
                found.append(f"{where}: exit {result['rc']} without one error line naming the file: {result['stderr']}")
    return found


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory, cifar10_test_root):
    """The valid files every mutant starts from: ``{file type: path}``."""
    from PIL import Image

    out = tmp_path_factory.mktemp("valid")
    run_python(MAKE_FILES.replace("sys.argv[1]", repr(str(out))))
    cat = os.path.join(cifar10_test_root, "cat")
    jpeg = os.path.join(cat, sorted(os.listdir(cat))[0])
    with Image.open(jpeg) as picture:
        picture.convert("RGB").resize((40, 28)).save(out / "image.png")
    return {"tflite": str(out / "model.tflite"), "json": str(out / "model.json"), "keras": str(out / "model.keras"),
            "npz": str(out / "model.npz"), "safetensors": str(out / "timm" / "model.safetensors"),
            "pth": str(out / "model.pth"), "jpeg": jpeg, "png": str(out / "image.png")}


def write_mutants(kinds, valid_files, folder):
    """Writes every mutant of ``kinds`` (plus the regression cases) under ``folder``; ``{kind: [(name, path)]}``."""
    written = {}
    for kind in kinds:
        with open(valid_files[kind], "rb") as handle:
            data = handle.read()
        rng = np.random.default_rng([SEED, list(PLAN).index(kind)])
        cases = mutants(kind, data, rng) + {"json": contract_mutants, "png": png_bomb}.get(kind, lambda _: [])(data)
        cases += [(f"regression{j}", how, offset, value, mutate(data, how, offset, value))
                  for j, (k, how, offset, value) in enumerate(REGRESSIONS) if k == kind]
        extension = {"jpeg": "jpg"}.get(kind, kind)
        os.makedirs(folder / kind, exist_ok=True)
        written[kind] = []
        for name, how, offset, value, mutated in cases:
            path = folder / kind / f"{name}.{extension}"
            path.write_bytes(mutated)
            written[kind].append((f"{kind}/{name} ({how} {offset}{'' if value is None else f'={value}'})", str(path)))
    return written


def jobs_for(written, readers, **extra):
    return [{"reader": reader, "path": path, "mutant": mutant, **extra}
            for kind, reader in readers for mutant, path in written[kind]]


def cli_jobs(written, kind, argv, every=1):
    return [{"argv": argv, "path": path, "mutant": mutant} for mutant, path in written[kind][::every]]


def check(jobs, results, figures_name, seconds):
    bad = violations(jobs, results)
    refused = sum(r["outcome"] == "error" or (r["outcome"] == "cli" and r["rc"] != 0) for r in results)
    print(f"{figures_name}: {len(jobs)} reads, {refused} refused, {len(bad)} violations, {seconds:.1f} s")
    for line in bad:
        print("VIOLATION", line.replace("\n", "\n    "))
    assert not bad, f"{len(bad)} of {len(jobs)} reads broke the rule (printed above); the first:\n{bad[0]}"


@pytest.mark.slow
def test_tflite_contract_and_image_readers(valid_files, tmp_path):
    """No TensorFlow here: inspection, LiteRT, the contract, PIL images, `keras-vit predict` and `verify`."""
    import time

    start = time.time()
    written = write_mutants(("tflite", "json", "jpeg", "png"), valid_files, tmp_path)
    jobs = jobs_for(written, [("tflite", "tflite_inspect"), ("tflite", "tflite_runtime"), ("json", "contract"),
                              ("jpeg", "image"), ("png", "image")])
    jobs += cli_jobs(written, "tflite", ["predict", "{}", valid_files["png"]], every=2)
    jobs += cli_jobs(written, "jpeg", ["predict", valid_files["tflite"], "{}"], every=4)
    results = run_children(jobs, {"png": valid_files["png"], "tflite": valid_files["tflite"]}, tmp_path)
    check(jobs, results, "tflite/json/images", time.time() - start)


@pytest.mark.slow
def test_keras_vit_verify_refuses_damaged_files(valid_files, tmp_path):
    written = write_mutants(("tflite",), valid_files, tmp_path)
    jobs = cli_jobs(written, "tflite", ["verify", "{}"], every=4)
    check(jobs, run_children(jobs, {}, tmp_path), "keras-vit verify", 0.0)


@pytest.mark.slow
def test_commands_print_one_error_line(valid_files, tmp_path):
    """The real ``keras-vit predict`` process (``evaluate`` runs in the fuzz child through ``cli.main``)."""
    data = valid_files["tflite"]
    damaged = {"tflite": tmp_path / "damaged.tflite", "jpeg": tmp_path / "damaged.jpg"}
    damaged["tflite"].write_bytes(open(data, "rb").read()[:5000])
    damaged["jpeg"].write_bytes(open(valid_files["jpeg"], "rb").read()[:300])
    for argv, name in ((["predict", str(damaged["tflite"]), valid_files["png"]], "damaged.tflite"),
                       (["predict", data, str(damaged["jpeg"])], "damaged.jpg")):
        done = subprocess.run([sys.executable, "-m", "keras_vit.cli", *argv], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode in (1, 2) and "Traceback" not in done.stderr, (argv, done.stderr[-2000:])
        assert len(errors) == 1 and name in errors[0], (argv, done.stderr[-2000:])


@pytest.mark.slow
def test_keras_and_checkpoint_readers(valid_files, tmp_path):
    """``keras_vit.load_model``, the weight readers and ``load_weights``, and the training pipeline's decoder."""
    import time

    start = time.time()
    written = write_mutants(("keras", "npz", "safetensors", "pth", "jpeg", "png"), valid_files, tmp_path)
    jobs = jobs_for(written, [("keras", "keras_file"), ("npz", "checkpoint"), ("safetensors", "checkpoint"),
                              ("pth", "checkpoint")])
    # tf.io decoders report a bad image as InvalidArgumentError; the pipeline drops (and counts) it.
    jobs += jobs_for(written, [("jpeg", "pipeline_decode"), ("png", "pipeline_decode")],
                     also=("InvalidArgumentError",))
    data = tmp_path / "data"
    for mutant, path in written["keras"][:: max(1, len(written["keras"]) // 3)]:
        jobs.append({"argv": ["evaluate", "{}", "--data", f"folder:{data}", "--batch-size", "8", "--strategy",
                              "one_device"], "path": path, "mutant": mutant})
    jobs += cli_jobs(written, "keras", ["predict", "{}", valid_files["png"]], every=8)
    _class_tree(data, written, valid_files)
    # Two epochs of the training pipeline over a folder of the mutated images: every file read or skipped.
    jobs.append({"reader": "pipeline_epoch", "path": str(data), "mutant": "a folder of every image mutant"})
    results = run_children(jobs, {}, tmp_path)
    check(jobs, results, "keras/checkpoints/decoding", time.time() - start)
    figures, total = results[-1]["figures"], 10 + sum(len(written[kind]) for kind in ("jpeg", "png"))
    print("pipeline", figures, "of", total, "files")
    assert figures["listed"] + figures["skipped"] == total
    assert 10 <= figures["seen"] <= figures["listed"]  # the decoder drops what listing let through
    assert figures["steps"] == 2 * (figures["listed"] // 4)


def _class_tree(root, written, valid_files):
    """``root/<class>/`` for the ten CIFAR-10 classes: one good JPEG each; the cat folder also holds the mutants."""
    import shutil

    from keras_vit.datasets import CIFAR10_LABELS

    for name in CIFAR10_LABELS:
        os.makedirs(root / name)
        shutil.copy(valid_files["jpeg"], root / name / "good.jpg")
    for kind in ("jpeg", "png"):
        for j, (_, path) in enumerate(written[kind]):
            shutil.copy(path, root / "cat" / f"{kind}{j}{os.path.splitext(path)[1]}")


def _hostile_tar(path, member):
    """A CIFAR-10-shaped archive with one good member and ``member`` ((name, type, linkname))."""
    name, kind, link = member
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("test/cat/0.jpg")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"abc"))
        hostile = tarfile.TarInfo(name)
        hostile.type = kind
        hostile.linkname = link
        payload = b"" if kind != tarfile.REGTYPE else b"owned"
        hostile.size = len(payload)
        tar.addfile(hostile, io.BytesIO(payload))


@pytest.mark.parametrize("member, refused", [
    (("/tmp/keras_vit_fuzz_absolute", tarfile.REGTYPE, ""), False),  # not under test/: skipped
    (("test/../../escaped.txt", tarfile.REGTYPE, ""), True),
    (("test/cat/link", tarfile.SYMTYPE, "../../../outside"), True),
    (("test/cat/hard", tarfile.LNKTYPE, "/etc/passwd"), True),
], ids=["absolute", "dotdot", "symlink", "hardlink"])
def test_hostile_archive_extracts_nothing_outside(tmp_path, monkeypatch, member, refused):
    from keras_vit import datasets

    data, cache = tmp_path / "data", tmp_path / "cache"
    os.makedirs(data / "cifar10")
    _hostile_tar(data / "cifar10" / "cifar10-test.tar.gz", member)
    monkeypatch.setenv("KERAS_VIT_DATA", str(data))
    if refused:
        with pytest.raises(ValueError, match="cifar10-test.tar.gz") as error:
            datasets.cifar10_dir("test", cache_dir=str(cache))
        # names the member (without its test/ folder, as the filter sees it) and why: outside, absolute link
        assert repr(member[0].split("/", 1)[1]) in str(error.value)
        assert os.listdir(cache / "cifar10") == []  # no partial tree that could pass for a finished one
    else:
        root = datasets.cifar10_dir("test", cache_dir=str(cache))
        assert os.listdir(root) == ["cat"] and os.listdir(cache / "cifar10") == ["test"]
    assert not os.path.exists("/tmp/keras_vit_fuzz_absolute")
    assert sorted(os.listdir(tmp_path)) == ["cache", "data"]
