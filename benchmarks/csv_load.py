"""Benchmark `tinygrad_bn.data.load_csv` on a large file: time and memory.

    python benchmarks/csv_load.py              # 1 000 000 rows (about 20 MB of CSV)
    python benchmarks/csv_load.py --rows 200000

Three loads, each in a fresh interpreter so that its peak resident memory is its own:

* ``plain``: a valid placement CSV (cgpa, iq, placed) — numpy's C parser reads it in blocks;
* ``checked``: the same file with one quoted cell on the first data row, which sends the whole
  file down the record-by-record path (the one that names the line and column of a problem);
* ``bad last row``: a value that overflows float32 on the last line, found by the fast path's
  checks and then located exactly by a checked re-scan of the whole file.

Memory is the peak resident set of the process minus its resident set just before loading,
compared with the size of the arrays returned (X float32 (n, 2) and y float32 (n,)). The
result goes to docs/performance.md ("Loading a large CSV").
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORKER = r"""
import json, sys, time
from tinygrad_bn.data import DataError, load_csv

def status(field):  # from /proc (Linux), in bytes. VmHWM, unlike getrusage's ru_maxrss, is
    with open("/proc/self/status") as f:  # this program's own peak (not the forking parent's)
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

def resident():
    return status("VmRSS")

before = resident()
started = time.perf_counter()
try:
    data = load_csv(sys.argv[1])
    result, nbytes = "ok", data.X.nbytes + data.y.nbytes
except DataError as error:
    result, nbytes = str(error).split(": ", 1)[0].rsplit(", ", 2)[-2:], 0
seconds = time.perf_counter() - started
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "extra": max(peak - before, 0), "nbytes": nbytes,
                  "result": result}))
"""


def write_files(folder: Path, rows: int) -> dict:
    import numpy as np

    from tinygrad_bn.data import generate_placement

    dataset = generate_placement(rows, seed=0)
    table = np.column_stack([dataset.X, dataset.y])
    plain = folder / "plain.csv"
    with open(plain, "w") as file:
        file.write("cgpa,iq,placed\n")
        np.savetxt(file, table, fmt=["%g", "%g", "%d"], delimiter=",")
    text = plain.read_text()
    header, first, rest = text.split("\n", 2)
    checked = folder / "checked.csv"
    cgpa, others = first.split(",", 1)
    checked.write_text(f'{header}\n"{cgpa}",{others}\n{rest}')
    bad = folder / "bad.csv"
    bad.write_text(text + "1e39,100,1\n")
    return {"plain": plain, "checked": checked, "bad last row": bad}


def measure(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", WORKER, str(path)], capture_output=True,
                          text=True, check=True, cwd=path.parent,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                               "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(Path(folder), args.rows)
        size = files["plain"].stat().st_size
        print(f"{args.rows} rows, {size / 2**20:.1f} MiB of CSV\n")
        print("| file | path | time | extra memory | arrays | result |")
        print("|---|---|---:|---:|---:|---|")
        arrays = args.rows * 3 * 4
        for name, path in files.items():
            m = measure(path)
            route = {"plain": "fast (numpy blocks)", "checked": "checked (record by record)",
                     "bad last row": "fast, then checked re-scan"}[name]
            result = "loaded" if m["result"] == "ok" else "refused: " + ", ".join(m["result"])
            print(f"| {name} | {route} | {m['seconds']:.2f} s | {m['extra'] / 2**20:.0f} MiB "
                  f"| {arrays / 2**20:.0f} MiB | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
