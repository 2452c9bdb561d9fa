"""train --save keeps the optimizer's state; train --resume continues the run exactly."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinygrad_bn import checkpoint
from tinygrad_bn.cli import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def arrays(path: Path) -> dict:
    return checkpoint.load(path)


def assert_same_arrays(first: Path, second: Path) -> None:
    a, b = arrays(first), arrays(second)
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # bit for bit


def rewrite(source: Path, target: Path, change) -> Path:
    """A copy of a model file with its arrays and metadata changed by ``change``."""
    state, metadata = checkpoint.load_with_metadata(source)
    change(state, metadata)
    checkpoint.save(state, target, metadata=metadata)
    return target


def old_format(source: Path, target: Path) -> Path:
    """The file as train --save wrote it before resuming existed: no optimizer state."""
    def drop(state, metadata):
        for key in [k for k in state if k.startswith("optimizer.")]:
            del state[key]
        del metadata["resume"]
    return rewrite(source, target, drop)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Two epochs with momentum (so the file holds momentum buffers)."""
    path = tmp_path_factory.mktemp("resume") / "two.npz"
    ok("train", "--quiet", "--epochs", "2", "--momentum", "0.9", "--save", path)
    return path


@pytest.mark.parametrize("momentum", ["0", "0.9"])
def test_resumed_run_equals_one_run_bit_for_bit(tmp_path, momentum):
    options = ["--momentum", momentum, "--batch-size", "24", "--seed", "3"]
    ok("train", "--quiet", "--epochs", "5", *options, "--save", tmp_path / "once.npz")
    ok("train", "--quiet", "--epochs", "2", *options, "--save", tmp_path / "part.npz")
    resumed = ok("train", "--json", "--resume", tmp_path / "part.npz", "--epochs", "3",
                 "--save", tmp_path / "resumed.npz")
    assert_same_arrays(tmp_path / "once.npz", tmp_path / "resumed.npz")
    has_buffers = any(k.startswith("optimizer.") for k in arrays(tmp_path / "resumed.npz"))
    assert has_buffers == (momentum != "0")  # plain SGD keeps no state
    # The epochs are numbered on, and each equals the one-run epoch of that number.
    once = json.loads(ok("train", "--json", "--epochs", "5", *options).stdout)
    history = json.loads(resumed.stdout)["history"]
    assert [r["epoch"] for r in history] == [3, 4, 5]
    assert history == once["history"][2:]
    _, metadata = checkpoint.load_with_metadata(tmp_path / "resumed.npz")
    assert metadata["resume"]["epochs_trained"] == 5 and metadata["options"]["epochs"] == 5


def test_compiled_parts_resume_like_the_eager_run(tmp_path):
    """--compile keeps the optimizer's buffers as eager SGD does: a run compiled in two
    parts saves the arrays of the eager run in one part."""
    options = ["--momentum", "0.9", "--seed", "2"]
    ok("train", "--quiet", "--epochs", "4", *options, "--save", tmp_path / "once.npz")
    ok("train", "--quiet", "--epochs", "1", "--compile", *options, "--save", tmp_path / "p.npz")
    ok("train", "--quiet", "--resume", tmp_path / "p.npz", "--epochs", "3", "--compile",
       "--save", tmp_path / "p.npz")
    assert_same_arrays(tmp_path / "once.npz", tmp_path / "p.npz")


def test_a_plain_run_is_unchanged():
    """Saving the optimizer's state changed nothing of a default run."""
    summary = json.loads(ok("train", "--json").stdout)
    assert round(summary["test_accuracy"], 3) == 0.858


def test_resume_from_elsewhere_uses_the_saved_data_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok("data", "--rows", "120", "--seed", "4", "--out", "students.csv")
    ok("train", "--quiet", "--data", "students.csv", "--epochs", "4", "--save", "once.npz")
    ok("train", "--quiet", "--data", "students.csv", "--epochs", "1", "--save", "part.npz")
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    ok("train", "--quiet", "--resume", "../part.npz", "--epochs", "3", "--save", "../part.npz")
    assert_same_arrays(tmp_path / "once.npz", tmp_path / "part.npz")  # replaced in place
    # Other data under the same name: the standardiser no longer matches, nothing is saved.
    ok("data", "--rows", "120", "--seed", "5", "--out", "../students.csv")
    result = run("train", "--resume", "../part.npz", "--save", "../again.npz")
    assert result.exit_code == 1 and "not the data the saved run was trained on" in result.output
    assert not (tmp_path / "again.npz").exists()


def test_info_says_whether_and_where_a_file_resumes(saved, tmp_path):
    out = ok("info", saved).output
    assert "Resumable: yes, after epoch 2" in out
    assert "optimizer.state.0.momentum_buffer" in out
    assert json.loads(ok("info", "--json", saved).stdout)["resumable_after_epoch"] == 2
    old = old_format(saved, tmp_path / "old.npz")
    assert "Resumable: no (saved without its optimizer state)" in ok("info", old).output
    assert json.loads(ok("info", "--json", old).stdout)["resumable_after_epoch"] is None


def test_old_files_still_predict_but_do_not_resume(saved, tmp_path):
    old = old_format(saved, tmp_path / "old.npz")
    new_p = ok("predict", "--model", saved, "--row", "cgpa=8,iq=120").output
    assert ok("predict", "--model", old, "--row", "cgpa=8,iq=120").output == new_p
    result = run("train", "--resume", old)
    assert result.exit_code == 1
    assert "saved without its optimizer state" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("option, value", [("--lr", "0.2"), ("--hidden", "8"),
                                           ("--no-batch-norm", None), ("--seed", "1"),
                                           ("--features", "iq,cgpa"), ("--batch-size", "16")])
def test_changing_the_run_on_resume_is_a_usage_error(saved, tmp_path, option, value):
    args = [option] if value is None else [option, value]
    result = run("train", "--resume", saved, *args, "--save", tmp_path / "x.npz")
    assert result.exit_code == 2
    assert f"{option.replace('no-', '')} cannot be changed when resuming" in result.output
    assert not (tmp_path / "x.npz").exists()


def test_repeating_the_saved_values_is_allowed(saved, tmp_path):
    ok("train", "--quiet", "--resume", saved, "--epochs", "1", "--lr", "0.1", "--momentum",
       "0.9", "--seed", "0", "--hidden", "16,16", "--save", tmp_path / "x.npz")
    assert "after epoch 3" in ok("info", tmp_path / "x.npz").output


def test_missing_or_damaged_resume_file_is_one_line(tmp_path):
    missing = run("train", "--resume", tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    damaged = run("train", "--resume", tmp_path / "junk.npz")
    for result in (missing, damaged):
        assert result.exit_code == 1, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def _set_group(name, value):
    return lambda state, metadata: metadata["resume"]["optimizer"][0].__setitem__(name, value)


def _resize_buffer(state, metadata):
    state["optimizer.state.0.momentum_buffer"] = np.zeros((4, 4), np.float32)


def _extra_member(state, metadata):
    state["optimizer.state.0.exp_avg"] = np.zeros((16, 2), np.float32)


def _no_momentum(state, metadata):
    metadata["resume"]["optimizer"][0]["momentum"] = 0  # the buffers are then unexpected


def _shuffle(state, metadata):
    metadata["resume"]["shuffle"]["state"]["inc"] = "1" * 50


def _epochs(state, metadata):
    metadata["resume"]["epochs_trained"] = "2"


@pytest.mark.parametrize("change, words", [
    (_set_group("lr", "0.1"), "optimizer's lr"),
    (_set_group("lr", 1e400), "optimizer's lr"),       # inf
    (_set_group("momentum", -1), "optimizer's momentum"),
    (_set_group("nesterov", 1), "optimizer's nesterov"),
    (_set_group("params", [0, 1]), "optimizer's params"),
    (_set_group("betas", [0.9, 0.99]), "exactly the options"),
    (_resize_buffer, "momentum_buffer"),
    (_extra_member, "unexpected array"),
    (_no_momentum, "unexpected array"),
    (_shuffle, "PCG64"),
    (_epochs, "epochs_trained"),
])
def test_tampered_optimizer_state_is_refused_before_use(saved, tmp_path, change, words):
    bad = rewrite(saved, tmp_path / "bad.npz", change)
    for args in (["info", bad], ["predict", "--model", bad, "--row", "cgpa=8,iq=120"],
                 ["train", "--resume", bad]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output and "Traceback" not in result.output


def test_console_script_resumes(saved, tmp_path):
    script = shutil.which("tinygrad-bn")
    if script is None:
        pytest.skip("the tinygrad-bn console script is not installed")
    done = subprocess.run([script, "train", "--quiet", "--resume", saved, "--epochs", "1",
                           "--save", tmp_path / "x.npz"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Resumable: yes, after epoch 3" in ok("info", tmp_path / "x.npz").output
    done = subprocess.run([script, "train", "--resume", tmp_path / "none.npz"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
