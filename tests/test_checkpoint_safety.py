"""Checkpoints are untrusted input: every malformed or hostile file is refused with one short
line and exit 1, in bounded memory, before any model is built or any large array inflated.

The hostile files are built here: a zip bomb (a few MB that inflate to more than the memory
cap), metadata describing a gigantic network, deep or mistyped JSON, and damaged zips. The
memory-bound tests run the real console script under ``RLIMIT_AS`` (1 GiB of address space).
"""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.lib import format as npy

import tinygrad_bn as tg
from tinygrad_bn.checkpoint import CheckpointError, load_with_metadata
from tinygrad_bn.cli import main
from tinygrad_bn.placement import FORMAT, load_model

resource = pytest.importorskip("resource")  # POSIX: the memory cap

CAP = 1 << 30  # the address space the bomb tests allow the whole process


def console_script() -> list:
    """The installed ``tinygrad-bn`` beside this interpreter (``python -m`` if there is none)."""
    script = Path(sys.executable).with_name("tinygrad-bn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tinygrad_bn"]


def run_capped(*args: str) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run(console_script() + list(args), capture_output=True, text=True,
                          preexec_fn=limit, env=env, timeout=120)


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "MemoryError" not in stderr
    return lines[0]


def metadata(**changes) -> dict:
    base = {"format": FORMAT, "features": ["cgpa", "iq"], "hidden": [16, 16], "batch_norm": True,
            "test_accuracy": 0.9, "options": {"lr": 0.1}}
    base.update(changes)
    return base


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_zip(path: Path, entries: list) -> None:
    """Write a zip by hand from (name, deflated bytes, crc32, uncompressed size, method, flags):
    this is how a hostile file can declare sizes that nothing was compressed to."""
    local, central = b"", b""
    for name, data, crc, size, method, flags in entries:
        encoded = name.encode()
        offset = len(local)
        fields = (20, flags, method, 0, 0, crc, len(data), size, len(encoded), 0)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0,
                               offset) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                      len(local), 0)
    path.write_bytes(local + central + end)


def member(name: str, content: bytes, method: int = zipfile.ZIP_DEFLATED, flags: int = 0):
    data = zlib.compress(content, 9)[2:-4] if method == zipfile.ZIP_DEFLATED else content
    return (name, data, zlib.crc32(content), len(content), method, flags)


def metadata_member(meta) -> tuple:
    return member("__metadata__.npy", npy_bytes(np.array(json.dumps(meta))))


def zero_bomb(name: str, shape: tuple, dtype: str = "<f4") -> tuple:
    """A member whose header declares ``shape`` and whose data really are that many zero
    bytes, deflated block by block: about 1 KB per MiB."""
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False,
                                        "shape": shape})
    header = header.getvalue()
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    chunk = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)  # the same each time
    blocks, crc = size >> 20, zlib.crc32(header)
    for _ in range(blocks):
        crc = zlib.crc32(chunk, crc)
    data = start + block * blocks + compressor.flush()
    return (name, data, crc, len(header) + size, zipfile.ZIP_DEFLATED, 0)


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.npz"
    result = CliRunner().invoke(main, ["train", "--epochs", "2", "--quiet", "--save", str(path)])
    assert result.exit_code == 0, result.output
    return path


def good_members(path: Path) -> dict:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def rewrite(path: Path, arrays: dict, meta=None, extra: tuple = ()) -> Path:
    entries = [member(f"{key}.npy", npy_bytes(value)) for key, value in arrays.items()
               if key != "__metadata__"]
    if meta is not None:
        entries.append(metadata_member(meta))
    write_zip(path, entries + list(extra))
    return path


# --- denial of service: bounded memory, checked before inflating --------------------------------

def test_a_zip_bomb_for_a_weight_is_refused_without_inflating_it(good_model, tmp_path):
    arrays = good_members(good_model)
    del arrays["model.0.weight"]
    bomb = rewrite(tmp_path / "bomb.npz", arrays, metadata(),
                   extra=(zero_bomb("model.0.weight.npy", (5 << 18, 256)),))  # 1.25 GiB
    assert bomb.stat().st_size < 4 << 20
    for args in (["info", str(bomb)], ["predict", "--model", str(bomb), "--row", "cgpa=7,iq=99"]):
        done = run_capped(*args)
        assert done.returncode == 1, done.stderr
        line = one_line_error(done.stderr)
        assert "model.0.weight" in line and "(16, 2)" in line


def test_generic_load_bounds_the_inflated_total(tmp_path):
    bomb = tmp_path / "bomb.npz"
    write_zip(bomb, [zero_bomb("weight.npy", (5 << 28,), "|u1")])  # 1.25 GiB of bytes
    with pytest.raises(CheckpointError, match="more than 268435456 bytes"):
        tg.load(bomb)
    done = run_capped("info", str(bomb))
    assert done.returncode == 1 and "more than" not in done.stderr  # refused earlier: no model
    one_line_error(done.stderr)


def test_metadata_describing_a_gigantic_network_is_refused_before_building_it(tmp_path):
    path = rewrite(tmp_path / "huge.npz", {}, metadata(hidden=[20000, 20000]))
    done = run_capped("info", str(path))
    assert done.returncode == 1
    assert "parameters" in one_line_error(done.stderr)


def test_deeply_nested_metadata_is_refused_without_a_recursion_error(tmp_path):
    meta = metadata()
    text = json.dumps(meta)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "deep.npz"
    write_zip(path, [member("__metadata__.npy", npy_bytes(np.array(text)))])
    done = run_capped("info", str(path))
    assert done.returncode == 1 and "nested" in one_line_error(done.stderr)


# --- every malformed file: exit 1, one short line -------------------------------------------------

def malformed(good: Path, tmp: Path) -> dict:
    arrays = good_members(good)
    files = {}
    files["plain.npy"] = tmp / "plain.npy"
    np.save(files["plain.npy"], np.ones(3))
    files["text.npz"] = tmp / "text.npz"
    files["text.npz"].write_text("cgpa,iq,placed\n7,100,1\n")
    files["truncated.npz"] = tmp / "truncated.npz"
    files["truncated.npz"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for name, meta in [("types.npz", metadata(hidden="16,16")),
                       ("features.npz", metadata(features=[1, 2])),
                       ("layers.npz", metadata(hidden=[1] * 100)),
                       ("bool-size.npz", metadata(hidden=[True, 16])),
                       ("list-meta.npz", [1, 2]),
                       ("accuracy.npz", metadata(test_accuracy="high"))]:
        files[name] = rewrite(tmp / name, arrays, meta)
    files["json.npz"] = tmp / "json.npz"
    write_zip(files["json.npz"], [member("__metadata__.npy", npy_bytes(np.array("{bad")))])
    weight = npy_bytes(arrays["model.0.weight"])
    others = {k: v for k, v in arrays.items() if k != "model.0.weight"}
    files["encrypted.npz"] = rewrite(tmp / "encrypted.npz", others, metadata(),
                                     extra=(member("model.0.weight.npy", weight, flags=1),))
    files["bzip2.npz"] = rewrite(tmp / "bzip2.npz", others, metadata(),
                                 extra=(member("model.0.weight.npy", weight, method=12),))
    files["not-array.npz"] = rewrite(tmp / "not-array.npz", arrays, metadata(),
                                     extra=(member("notes.txt", b"hello"),))
    files["junk-member.npz"] = rewrite(tmp / "junk-member.npz", others, metadata(),
                                       extra=(member("model.0.weight.npy", b"junk" * 40),))
    wide = np.ones((16, 3), np.float32)
    files["shape.npz"] = rewrite(tmp / "shape.npz", {**arrays, "model.0.weight": wide},
                                 metadata())
    files["unexpected.npz"] = rewrite(tmp / "unexpected.npz",
                                      {**arrays, "model.9.weight": np.ones(2, np.float32)},
                                      metadata())
    files["missing.npz"] = rewrite(tmp / "missing.npz", others, metadata())
    files["object.npz"] = tmp / "object.npz"
    np.savez(files["object.npz"], **{**arrays, "model.0.bias": np.array([object()] * 16)})
    for key, bad in [("model.0.weight", np.nan), ("model.1.running_mean", np.inf),
                     ("standardizer.mean", np.nan)]:
        changed = arrays[key].copy()
        changed.flat[0] = bad
        name = f"nonfinite-{key}.npz"
        files[name] = rewrite(tmp / name, {**arrays, key: changed},
                              json.loads(str(arrays["__metadata__"])))
    std = arrays["standardizer.std"].copy()
    std[0] = 0.0
    files["std.npz"] = rewrite(tmp / "std.npz", {**arrays, "standardizer.std": std},
                               json.loads(str(arrays["__metadata__"])))
    return files


EXPECTED = {
    "plain.npy": "single .npy array", "text.npz": "not a zip archive",
    "truncated.npz": "truncated or damaged", "types.npz": "'hidden'",
    "features.npz": "feature name", "layers.npz": "'hidden'", "bool-size.npz": "hidden size",
    "list-meta.npz": "not a JSON object", "accuracy.npz": "'test_accuracy'",
    "json.npz": "not valid JSON", "encrypted.npz": "encrypted", "bzip2.npz": "compression",
    "not-array.npz": "not an array", "junk-member.npz": "not a valid .npy",
    "shape.npz": "(16, 3)", "unexpected.npz": "unexpected array 'model.9.weight'",
    "missing.npz": "'model.0.weight' is missing", "object.npz": "pickled",
    "nonfinite-model.0.weight.npz": "model.0.weight holds non-finite",
    "nonfinite-model.1.running_mean.npz": "model.1.running_mean holds non-finite",
    "nonfinite-standardizer.mean.npz": "standardizer.mean holds non-finite",
    "std.npz": "standardizer.std must be > 0",
}


def test_every_malformed_file_exits_1_with_one_short_line(good_model, tmp_path):
    files = malformed(good_model, tmp_path)
    assert set(files) == set(EXPECTED)
    runner = CliRunner()
    for name, path in files.items():
        for args in (["info", str(path)], ["predict", "--model", str(path), "--row",
                                           "cgpa=7,iq=99"]):
            result = runner.invoke(main, args)
            assert result.exit_code == 1, (name, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and len(lines[0]) < 300, (name, result.output)
            assert EXPECTED[name] in lines[0] and str(path) in lines[0], (name, lines[0])


def test_a_text_file_is_not_called_pickled(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("just some text\n")
    with pytest.raises(ValueError, match="not a zip archive") as info:
        tg.load(text)
    assert "pickle" not in str(info.value)


def test_malformed_files_through_the_console_script(good_model, tmp_path):
    files = malformed(good_model, tmp_path)
    for name in ("truncated.npz", "object.npz", "shape.npz"):
        done = run_capped("info", str(files[name]))
        assert done.returncode == 1 and EXPECTED[name] in one_line_error(done.stderr)


def test_the_good_model_still_loads_and_library_errors_are_value_errors(good_model, tmp_path):
    model, scaler, meta = load_model(good_model)
    assert meta["hidden"] == [16, 16] and np.all(scaler.std > 0)
    arrays, meta = load_with_metadata(good_model)
    assert meta["format"] == FORMAT and "model.0.weight" in arrays
    for name, path in malformed(good_model, tmp_path).items():
        with pytest.raises(ValueError):
            load_model(path)


def test_info_escapes_control_characters_in_feature_names(good_model, tmp_path):
    arrays = good_members(good_model)
    meta = json.loads(str(arrays["__metadata__"]))
    meta["features"] = ["cgpa\x1b[2J\x1b[31m", "iq\rEVIL"]
    meta["options"]["target"] = "placed\x07"
    path = rewrite(tmp_path / "escape.npz", arrays, meta)
    done = run_capped("info", str(path))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\r" not in done.stdout and "\x07" not in done.stdout
    assert "cgpa\\x1b[2J\\x1b[31m, iq\\rEVIL" in done.stdout
