"""Nothing lost, nothing silently wrong: the command line run as the real console script.

Non-finite numbers in options, rows and files; divergence; strict JSON; outputs that would
replace inputs or non-regular files; permission bits; a full disk; SIGINT and SIGTERM. Each
test runs ``tinygrad-bn`` in a subprocess, because exit codes, signals and what is left on
disk are what matter here.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

resource = pytest.importorskip("resource")

FAST = ["--epochs", "2", "--quiet"]


def console_script() -> list:
    """The installed ``tinygrad-bn`` beside this interpreter (``python -m`` if there is none)."""
    script = Path(sys.executable).with_name("tinygrad-bn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tinygrad_bn"]


def cli(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(console_script() + [str(a) for a in args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, **kw)


def one_line(done: subprocess.CompletedProcess) -> str:
    """The one error line (after click's two usage lines, for a usage error)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
    if lines and lines[0].startswith("Usage:"):
        lines = lines[2:]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.npz"
    done = cli("train", *FAST, "--save", path)
    assert done.returncode == 0, done.stderr
    return path


def files_in(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


# --- 1. non-finite numbers never pass silently ---------------------------------------------------

@pytest.mark.parametrize("option, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "1e39"),
                                           ("--momentum", "inf"), ("--weight-decay", "nan"),
                                           ("--test-size", "nan")])
def test_non_finite_options_are_usage_errors_naming_the_option(option, value):
    done = cli("train", option, value, "--epochs", "1")
    assert done.returncode == 2, done.stderr
    line = one_line(done)
    assert option in line and "epoch" not in done.stdout


@pytest.mark.parametrize("cell, reason", [("1e39", "too large for float32"),
                                          ("inf", "not a finite number"),
                                          ("7_0", "'7_0' is not a number"),
                                          ("\u0667", "is not a number")])
def test_csv_values_that_are_not_plain_finite_float32_exit_1_naming_line_and_column(
        tmp_path, cell, reason):
    data = tmp_path / "data.csv"
    data.write_text(f"cgpa,iq,placed\n7,100,1\n8,{cell},0\n9,120,1\n", encoding="utf-8")
    done = cli("train", "--data", data, "--save", tmp_path / "m.npz", *FAST)
    assert done.returncode == 1
    line = one_line(done)
    assert f"{data}, line 3, column 'iq'" in line and reason in line
    assert files_in(tmp_path) == ["data.csv"]


@pytest.mark.parametrize("row, message", [("cgpa=1e39,iq=100", "'cgpa': '1e39' is too large"),
                                          ("cgpa=nan,iq=100", "'cgpa': 'nan' is not a finite"),
                                          ("cgpa=7,iq=-inf", "'iq': '-inf' is not a finite"),
                                          ("cgpa=7,iq=1_00", "'iq': '1_00' is not a number"),
                                          ("cgpa=7,iq=90,cgpa=8", "'cgpa' is given twice")])
def test_bad_rows_are_usage_errors_naming_the_field(model, row, message):
    done = cli("predict", "--model", model, "--row", row)
    assert done.returncode == 2 and message in one_line(done)


def test_divergence_exits_1_naming_epoch_and_step_and_saves_nothing(tmp_path):
    out = tmp_path / "m.npz"
    done = cli("train", "--lr", "1e30", "--save", out, "--quiet")
    assert done.returncode == 1
    line = one_line(done)
    assert "diverged at epoch 1, step" in line and "smaller learning rate" in line
    assert files_in(tmp_path) == []


def strict_json(text: str):
    def refuse(token: str) -> None:
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_json(model, capsys):
    # A run that diverges used to print NaN tokens; now it stops (exit 1) before any JSON.
    done = cli("train", "--json", "--epochs", "3", "--lr", "1e30")
    assert done.returncode == 1 and done.stdout == ""
    done = cli("train", "--json", "--epochs", "1")
    assert strict_json(done.stdout)["options"]["epochs"] == 1
    strict_json(cli("predict", "--model", model, "--row", "cgpa=7,iq=100", "--json").stdout)
    strict_json(cli("info", model, "--json").stdout)
    # Whatever reaches the printer, a non-finite number is written as null.
    from tinygrad_bn.cli.options import echo_json
    echo_json({"loss": float("nan"), "history": [float("inf"), 1.5], "ok": True})
    assert strict_json(capsys.readouterr().out) == {"loss": None, "history": [None, 1.5],
                                                    "ok": True}


# --- 4. no data loss ------------------------------------------------------------------------------

def placement_csv(folder: Path) -> Path:
    path = folder / "students.csv"
    done = cli("data", "--rows", "60", "--out", path)
    assert done.returncode == 0, done.stderr
    return path


def test_an_output_that_would_replace_the_input_is_refused_before_training(tmp_path):
    data = placement_csv(tmp_path)
    before = data.read_bytes()
    (tmp_path / "sub").mkdir()
    os.symlink(data, tmp_path / "link.csv")
    for spelling in (data, tmp_path / "sub" / ".." / "students.csv", tmp_path / "link.csv",
                     "students.csv"):
        done = cli("train", "--data", data, "--save", spelling, *FAST, cwd=tmp_path)
        assert done.returncode == 2, (spelling, done.stderr)
        assert "is the input file" in one_line(done) and "epoch" not in done.stdout
        assert data.read_bytes() == before
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    done = cli("train", "--data", hard, "--save", data, *FAST)
    assert done.returncode == 2 and data.read_bytes() == before


def test_the_bundled_data_is_an_input_too(tmp_path, monkeypatch):
    # In process, with the bundled file swapped for a copy: a bug here must not be able to
    # overwrite the package's own data.
    from click.testing import CliRunner

    import tinygrad_bn.cli.placement as placement_cli
    from tinygrad_bn.cli import main
    from tinygrad_bn.data import bundled_placement_path

    copy = tmp_path / "placement.csv"
    copy.write_bytes(bundled_placement_path().read_bytes())
    monkeypatch.setattr(placement_cli, "bundled_placement_path", lambda: copy)
    result = CliRunner().invoke(main, ["train", "--save", str(copy), *FAST])
    assert result.exit_code == 2 and "is the input file" in result.output
    assert copy.read_bytes() == bundled_placement_path().read_bytes()


def test_graph_output_that_would_replace_the_model_is_refused(model, tmp_path):
    before = model.read_bytes()
    done = cli("graph", "--model", model, "--out", model.with_suffix(".dot"),
               "--format", "dot")
    assert done.returncode == 0  # another file: fine
    done = cli("graph", "--model", model, "--out", model, "--format", "dot")
    assert done.returncode == 2 and model.read_bytes() == before


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_non_regular_files_are_never_replaced(tmp_path, kind):
    target = tmp_path / "target.npz"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    else:  # a link to /dev/null: code that replaced the link's target as root would
        os.symlink("/dev/null", target)  # destroy /dev/null, so the test never names it
    done = cli("train", "--save", target, *FAST)
    assert done.returncode in (1, 2)
    assert any(word in one_line(done) for word in ("regular file", "folder", "directory"))
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(target).st_mode)
    if kind == "device":
        assert target.is_symlink() and stat.S_ISCHR(os.stat(target).st_mode)
    assert "epoch" not in done.stdout


def test_replacing_a_file_keeps_its_permission_bits(tmp_path):
    out = tmp_path / "model.npz"
    assert cli("train", *FAST, "--save", out).returncode == 0
    os.chmod(out, 0o600)
    assert cli("train", *FAST, "--seed", "3", "--save", out).returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    csv = tmp_path / "data.csv"
    assert cli("data", "--rows", "10", "--out", csv).returncode == 0
    os.chmod(csv, 0o640)
    assert cli("data", "--rows", "12", "--out", csv).returncode == 0
    assert stat.S_IMODE(os.stat(csv).st_mode) == 0o640


def test_bad_destinations_fail_before_any_training(tmp_path):
    long_name = "m" * 300 + ".npz"
    for target, message in [(tmp_path / "missing" / "m.npz", "does not exist"),
                            (tmp_path / long_name, "longer than"),
                            (tmp_path / ("m" * 250 + ".npz"), None)]:
        done = cli("train", "--epochs", "1", "--save", target)
        if message is None:  # a long name whose temporary name would not fit: shortened
            assert done.returncode == 0, done.stderr
            assert files_in(tmp_path) == [target.name]
            continue
        assert done.returncode == 1 and message in one_line(done)
        assert "epoch" not in done.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_fails_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        done = cli("train", "--epochs", "1", "--save", folder / "m.npz")
        assert done.returncode == 1 and "not writable" in one_line(done)
    finally:
        folder.chmod(0o700)


def test_a_full_disk_at_save_time_leaves_the_old_file_intact(tmp_path):
    out = tmp_path / "model.npz"
    assert cli("train", *FAST, "--save", out).returncode == 0
    before = out.read_bytes()

    def tiny_files() -> None:  # writes past 1 KB fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    done = cli("train", *FAST, "--seed", "4", "--save", out, preexec_fn=tiny_files)
    assert done.returncode == 1
    assert f"cannot write {out}" in one_line(done)
    assert out.read_bytes() == before and files_in(tmp_path) == ["model.npz"]


def test_graph_without_dot_does_not_overwrite_a_dot_file_it_was_not_asked_for(tmp_path):
    existing = tmp_path / "step.dot"
    existing.write_text("my own notes\n")
    env = dict(os.environ, PATH=str(tmp_path))  # no `dot` on this PATH
    done = subprocess.run(console_script() + ["graph", "--out", str(tmp_path / "step.svg")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "already exists" in one_line(done)
    assert existing.read_text() == "my own notes\n"
    assert files_in(tmp_path) == ["step.dot"]


# --- 4. signals -----------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_exits_cleanly_and_writes_nothing(tmp_path, signum, code):
    process = subprocess.Popen(console_script() + ["train", "--epochs", "100000", "--save",
                                                   str(tmp_path / "m.npz")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "epoch" in process.stdout.readline() + process.stdout.readline()  # training runs
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    # stderr: the progress bar's label (not a terminal), then one line
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith(
        "Interrupted" if signum == signal.SIGINT else "Terminated")
    assert files_in(tmp_path) == []


SAVE_THEN_SIGNAL = """
import os, signal, sys, time
from tinygrad_bn.cli.interrupts import InterruptibleGroup
from tinygrad_bn.files import atomic_write

group = InterruptibleGroup(name="t")

@group.command()
def save():
    def write(file):
        file.write(b"partial")
        file.flush()
        print("writing", flush=True)
        time.sleep(60)
    atomic_write(sys.argv[1], write)

group(["save"])
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_saving_leaves_no_temporary_file_and_the_old_file(tmp_path, signum,
                                                                          code):
    out = tmp_path / "model.npz"
    out.write_bytes(b"old model")
    process = subprocess.Popen([sys.executable, "-c", SAVE_THEN_SIGNAL, str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    assert len(files_in(tmp_path)) == 2  # the temporary file is there now
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert files_in(tmp_path) == ["model.npz"] and out.read_bytes() == b"old model"


# --- 5. no silently wrong results -----------------------------------------------------------------

def test_the_target_among_the_features_is_a_usage_error():
    done = cli("train", "--features", "cgpa,placed", "--epochs", "1")
    assert done.returncode == 2 and "--target" in one_line(done)


def test_a_duplicated_header_name_exits_1_naming_it(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("cgpa,iq,iq,placed\n7,100,90,1\n8,110,95,0\n")
    done = cli("train", "--data", data, "--epochs", "1")
    assert done.returncode == 1 and "column 'iq' more than once" in one_line(done)
