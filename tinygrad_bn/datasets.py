"""Labelled data sets, real and synthetic, all returned the same way: `LabeledData` (X, y,
description) with X float32 and y int64 class indices.

=======================  ===================================================================
``fashion_mnist(split)``  70 000 28×28 grey images of clothes, 10 classes (Zalando, MIT). Read
                          from Debian's ``dataset-fashion-mnist`` package; never downloaded.
``mnist(split, path)``    the same reader on the original MNIST digits, if you have the files.
``digits()``              1 797 8×8 handwritten digits bundled with scikit-learn (extra "data").
``placement()``           the course notes' 600 students (cgpa, iq → placed), bundled CSV.
``spirals()``             three interleaved spiral arms in the plane, generated from a seed.
=======================  ===================================================================

Pixels are scaled to [0, 1] (grey level / 255, or / 16 for the digits) and nothing else is
done to them: splitting and standardising belong to whoever trains (tinygrad_bn.experiments).

The image files use the IDX format (LeCun et al., the MNIST page), read by `read_idx`:

    bytes 0–1   0x00 0x00
    byte  2     the element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     the number of dimensions, d
    then        d sizes, each a 4-byte unsigned integer, most significant byte first
    then        the values in C order (last index fastest), multi-byte ones big-endian

Everything is big-endian by definition, so a header written little-endian (as a naive
``struct.pack("<I", …)`` on a PC would) is not a different dialect but a broken file: the
reader says so instead of guessing. Files may be gzip-compressed (detected from their first
bytes, not their name).

Read next: experiments/datasets.py, which splits and standardises these for the experiments.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .data import DataError, bundled_placement_path, load_csv

__all__ = ["LabeledData", "IDXError", "DatasetUnavailable", "read_idx", "fashion_mnist",
           "mnist", "digits", "placement", "spirals", "DEBIAN_FASHION_MNIST", "DATA_ENV"]

# Where `apt-get install dataset-fashion-mnist` puts the files (`dpkg -L dataset-fashion-mnist`).
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# A folder the user chooses; fashion_mnist() looks in $TINYGRAD_BN_DATA/fashion-mnist and in
# $TINYGRAD_BN_DATA itself, mnist() in $TINYGRAD_BN_DATA/mnist.
DATA_ENV = "TINYGRAD_BN_DATA"

# IDX type code → numpy dtype, big-endian as the format defines.
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"
_SPLITS = {"train": "train", "test": "t10k"}


class LabeledData(NamedTuple):
    """Examples and their labels: ``X, y, description = fashion_mnist("train")``.

    X: float32, (n, features) — or (n, 1, height, width) for images with ``flatten=False``.
    y: int64 class indices, (n,).
    description: one line saying what the data is, for tables and logs.
    """

    X: np.ndarray
    y: np.ndarray
    description: str

    @property
    def classes(self) -> int:
        """The number of classes (the largest label + 1)."""
        return int(self.y.max()) + 1


class IDXError(DataError):
    """A file that is not valid IDX; the message names the file and the problem."""


class DatasetUnavailable(RuntimeError):
    """The data set is not on this machine (or needs an extra); the message says how to get it."""


# --- the IDX reader -----------------------------------------------------------------------------

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed or not), in native byte order.

    Raises `IDXError` naming the file for a bad magic number, a header written little-endian,
    or data shorter or longer than the header's sizes promise.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise IDXError(f"{path}: not a readable gzip file ({error})") from None
    return _parse_idx(raw, str(path))


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    if len(raw) < 4:
        raise IDXError(f"{name}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        if raw[2] == 0 and raw[3] == 0 and raw[1] in IDX_TYPES:
            raise IDXError(f"{name}: the magic number {raw[:4].hex()} is byte-swapped: the "
                           "header was written little-endian, but IDX is big-endian "
                           f"(expected 0000{raw[1]:02x}{raw[0]:02x})")
        raise IDXError(f"{name}: bad magic number {raw[:4].hex()}: an IDX file starts with "
                       "two zero bytes, a type code and the number of dimensions")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, the "
                       f"file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        swapped = tuple(int(s) for s in np.frombuffer(raw, "<u4", ndim, 4))
        if math.prod(swapped) * dtype.itemsize == found:
            raise IDXError(f"{name}: the dimension sizes were written little-endian "
                           f"({' × '.join(map(str, swapped))} read the wrong way round), but "
                           "IDX sizes are big-endian (most significant byte first)")
        problem = "truncated" if found < expected else "has extra bytes"
        raise IDXError(f"{name}: {problem}: the header's shape {shape} needs {expected} bytes "
                       f"of data, the file has {found}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# --- Fashion-MNIST and MNIST --------------------------------------------------------------------

def _idx_file(folder: Path, stem: str) -> Path | None:
    """``stem``'s file in ``folder``: gzipped or not, with '-' or '.' before "idx" (both are
    in use)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_pair(name: str, split: str, folders: list, missing: str,
                   flatten: bool) -> LabeledData:
    """Images and labels of ``split`` from the first folder that holds both files."""
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = _SPLITS[split]
    for folder in folders:
        images = _idx_file(folder, f"{prefix}-images-idx3-ubyte")
        labels = _idx_file(folder, f"{prefix}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            break
    else:
        raise DatasetUnavailable(missing)
    pixels, targets = read_idx(images), read_idx(labels)
    if pixels.ndim != 3 or targets.ndim != 1 or len(pixels) != len(targets):
        raise IDXError(f"{images}, {labels}: expected images (n, rows, columns) and labels (n,),"
                       f" got shapes {pixels.shape} and {targets.shape}")
    X = pixels.astype(np.float32) / 255.0
    X = X.reshape(len(X), -1) if flatten else X[:, None]
    n, rows, columns = pixels.shape
    return LabeledData(X, targets.astype(np.int64),
                       f"{name} {split}: {n} grey {rows}×{columns} images in [0, 1], 10 classes "
                       f"({folder})")


def _search_folders(path: str | os.PathLike | None, defaults: list, subfolder: str) -> list:
    """An explicit ``path`` alone (a caller who names a folder means that one); otherwise the
    default folders, then $TINYGRAD_BN_DATA/subfolder and $TINYGRAD_BN_DATA."""
    if path is not None:
        return [Path(path)]
    folders = list(defaults)
    if os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV])
        folders += [root / subfolder, root]
    return folders


def fashion_mnist(split: str = "train", path: str | os.PathLike | None = None, *,
                  flatten: bool = True) -> LabeledData:
    """Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60 000 training and 10 000 test images of
    clothes, 28×28 grey levels, 10 balanced classes — MNIST's format and sizes, harder to
    classify.

    Looks in ``path`` if given, else in Debian's location (/usr/share/datasets/fashion-mnist)
    and then in $TINYGRAD_BN_DATA/fashion-mnist and $TINYGRAD_BN_DATA. Never downloads.

    Args:
        split: "train" or "test".
        path: a folder holding the four IDX files (``train-images-idx3-ubyte.gz`` …).
        flatten: X of shape (n, 784); False gives (n, 1, 28, 28) (one channel, for conv).

    Raises:
        DatasetUnavailable: the files are nowhere; the message says how to install them.
        IDXError: a file is damaged.
    """
    folders = _search_folders(path, [DEBIAN_FASHION_MNIST], "fashion-mnist")
    where = ", ".join(str(f) for f in folders)
    missing = (f"Fashion-MNIST is not installed (looked in {where}). Install it with "
               "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four IDX "
               f"files in a folder and pass path=... or set ${DATA_ENV}")
    return _load_idx_pair("Fashion-MNIST", split, folders, missing, flatten)


def mnist(split: str = "train", path: str | os.PathLike | None = None, *,
          flatten: bool = True) -> LabeledData:
    """MNIST (LeCun et al. 1998), the paper's data: 60 000 + 10 000 handwritten digits, 28×28.

    Not packaged for offline installation, so it is read only from files you already have:
    ``path``, else $TINYGRAD_BN_DATA/mnist or $TINYGRAD_BN_DATA. Same arguments and errors as
    `fashion_mnist`.
    """
    folders = _search_folders(path, [], "mnist")
    where = ", ".join(str(f) for f in folders) or f"nowhere: no path given and ${DATA_ENV} unset"
    missing = (f"MNIST files not found (looked in {where}). Put train-images-idx3-ubyte.gz, "
               "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
               f"t10k-labels-idx1-ubyte.gz in a folder and pass path=... or set ${DATA_ENV}; "
               "this library never downloads data")
    return _load_idx_pair("MNIST", split, folders, missing, flatten)


# --- scikit-learn's digits ----------------------------------------------------------------------

def digits(*, flatten: bool = True) -> LabeledData:
    """The 1 797 handwritten digits bundled with scikit-learn (UCI "optdigits" test set): 8×8
    images, grey levels 0–16 scaled to [0, 1], 10 classes. No split is given: all rows.

    Needs the optional extra: ``pip install "tinygrad-bn[data]"``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetUnavailable('digits() needs scikit-learn, an optional extra: pip install '
                                 '"tinygrad-bn[data]" (in a checkout: pip install -e ".[data]")'
                                 ) from None
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    X = images.reshape(len(images), -1) if flatten else images[:, None]
    return LabeledData(X, bunch.target.astype(np.int64),
                       f"digits: {len(X)} handwritten 8×8 digits (scikit-learn), 10 classes")


# --- the small synthetic and bundled sets -------------------------------------------------------

def placement() -> LabeledData:
    """The bundled placement CSV (600 students): X = (cgpa, iq), y = placed (0 or 1)."""
    data = load_csv(bundled_placement_path())
    return LabeledData(data.X.astype(np.float32), data.y.astype(np.int64),
                       f"placement: cgpa, iq → placed (the bundled {len(data.X)} rows)")


def spirals(points_per_class: int = 400, classes: int = 3, turns: float = 1.5,
            noise: float = 0.02, seed: int = 0) -> LabeledData:
    """Points on ``classes`` interleaved spiral arms: X (n, 2), y (n,).

    For arm k and t ~ U(0, 1): radius r = 0.2 + 0.8·t, angle θ = 2π·(turns·t + k/classes), and
    the point is r·(cos θ, sin θ) + noise·N(0, I). Neighbouring arms are 0.8/(turns·classes)
    apart along a radius (0.18 with the defaults), a few noise widths, so the classes barely
    overlap: a good network can reach close to 100 % accuracy, a poor one is stuck far below.
    The boundary winds round the origin ``turns`` times, so a shallow network cannot draw it.
    """
    if points_per_class < 1 or classes < 2:
        raise ValueError(f"need points_per_class >= 1 and classes >= 2, got {points_per_class} "
                         f"and {classes}")
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(classes):
        t = rng.uniform(0.0, 1.0, points_per_class)
        radius = 0.2 + 0.8 * t
        angle = 2 * math.pi * (turns * t + k / classes)
        arm = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        X.append(arm + noise * rng.normal(size=arm.shape))
        y.append(np.full(points_per_class, k))
    return LabeledData(np.concatenate(X).astype(np.float32), np.concatenate(y).astype(np.int64),
                       f"spirals: {classes} arms × {points_per_class} points, {turns:g} turns, "
                       f"noise {noise:g}")
