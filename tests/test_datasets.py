"""tinygrad_bn.datasets: the IDX reader on small files written here byte by byte from the
format's definition, where each data set is looked for, and the data sets themselves (those
that need Debian's Fashion-MNIST package or scikit-learn skip cleanly without them).
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from tinygrad_bn import datasets
from tinygrad_bn.datasets import DatasetUnavailable, IDXError, LabeledData, read_idx


def idx_bytes(array: np.ndarray, code: int, header_order: str = ">",
              data_order: str = ">") -> bytes:
    """An IDX file written straight from the definition: two zero bytes, the type code, the
    number of dimensions (together one 32-bit magic number), one 32-bit size per dimension,
    then the values in C order. ``header_order`` ">" is the definition (big-endian); "<" is
    the mistake a PC makes with struct.pack("<I", …)."""
    magic = struct.pack(header_order + "I", (code << 8) | array.ndim)
    sizes = struct.pack(header_order + "I" * array.ndim, *array.shape)
    return magic + sizes + array.astype(array.dtype.newbyteorder(data_order)).tobytes()


def write(tmp_path, name: str, content: bytes, compress: bool = False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


# --- the reader ---------------------------------------------------------------------------------

def test_the_header_is_big_endian_as_the_definition_says(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    content = idx_bytes(images, 0x08)
    # The definition's magic number for 3-D unsigned bytes is 0x00000803, stored MSB first,
    # and each size follows as 4 big-endian bytes.
    assert content[:4] == bytes([0, 0, 0x08, 3])
    assert content[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    array = read_idx(write(tmp_path, "images-idx3-ubyte", content))
    assert array.shape == (2, 3, 4) and array.dtype == np.uint8
    np.testing.assert_array_equal(array, images)


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                         (np.int32, 0x0C), (np.float32, 0x0D),
                                         (np.float64, 0x0E)])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_every_type_code_gzipped_or_not(tmp_path, dtype, code, compress):
    values = np.array([[-3, 0, 5], [7, 100, 1]]).astype(dtype)
    if dtype == np.uint8:
        values = np.abs(values)
    path = write(tmp_path, "a.idx", idx_bytes(values, code), compress)
    array = read_idx(path)
    assert array.dtype == np.dtype(dtype) and array.dtype.isnative
    np.testing.assert_array_equal(array, values)


def test_multibyte_values_are_read_big_endian(tmp_path):
    # 258 = 0x0102: big-endian bytes 01 02. Read the wrong way it would be 0x0201 = 513.
    path = write(tmp_path, "a.idx", bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 1, 2]))
    assert read_idx(path).tolist() == [258]


def test_a_header_written_little_endian_is_rejected_with_the_reason(tmp_path):
    labels = np.array([1, 2, 3], dtype=np.uint8)
    swapped = write(tmp_path, "labels", idx_bytes(labels, 0x08, header_order="<"))
    assert swapped.read_bytes()[:4] == bytes([1, 0x08, 0, 0])   # the magic, byte-swapped
    with pytest.raises(IDXError, match=r"labels: .*byte-swapped.*little-endian.*big-endian"):
        read_idx(swapped)
    # Only the sizes little-endian (the magic right): 3 reads as 0x03000000.
    sizes_only = bytes([0, 0, 0x08, 1]) + struct.pack("<I", 3) + labels.tobytes()
    with pytest.raises(IDXError, match=r"sizes were written little-endian"):
        read_idx(write(tmp_path, "sizes", sizes_only))


@pytest.mark.parametrize("content, message", [
    (b"\x12\x34\x56\x78" + bytes(8), r"bad magic number 12345678"),
    (b"PK\x03\x04" + bytes(8), r"bad magic number"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 0]), r"unknown IDX type code 0x07"),
    (bytes([0, 0, 0x08]), r"too short for an IDX header"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), r"truncated header: 3 dimensions need 16 bytes"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2]), r"truncated: .*\(5,\) needs 5 bytes .* has 2"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 1, 1, 2]), r"has extra bytes"),
])
def test_damaged_files_give_one_clear_error_naming_the_file(tmp_path, content, message):
    path = write(tmp_path, "bad-idx1-ubyte", content)
    with pytest.raises(IDXError, match=message) as caught:
        read_idx(path)
    assert str(caught.value).startswith(str(path))
    with pytest.raises(IDXError, match=message):   # the same when gzipped
        read_idx(write(tmp_path, "bad.gz", content, compress=True))


def test_a_broken_gzip_stream_is_a_clear_error(tmp_path):
    whole = gzip.compress(idx_bytes(np.zeros(100, np.uint8), 0x08))
    with pytest.raises(IDXError, match="not a readable gzip file"):
        read_idx(write(tmp_path, "cut.gz", whole[:20]))


# --- finding Fashion-MNIST and MNIST ------------------------------------------------------------

def fake_set(folder, n: int = 5, compress: bool = True, seed: int = 0) -> tuple:
    """The four IDX files of a tiny MNIST-like set (n 28×28 images per split)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if compress else ""
    made = {}
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write(folder, f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images, 0x08), compress)
        write(folder, f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels, 0x08), compress)
        made[prefix] = (images, labels)
    return made


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Pretend Debian's package is not installed and $TINYGRAD_BN_DATA is unset."""
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)


def test_missing_fashion_mnist_says_how_to_install_it(no_system_data):
    with pytest.raises(DatasetUnavailable,
                       match=r"apt-get install dataset-fashion-mnist.*TINYGRAD_BN_DATA"):
        datasets.fashion_mnist("train")


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
def test_fashion_mnist_from_the_environment_variable(no_system_data, monkeypatch, tmp_path,
                                                     compress):
    made = fake_set(tmp_path / "data" / "fashion-mnist", compress=compress)
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "data"))
    for split, prefix in (("train", "train"), ("test", "t10k")):
        data = datasets.fashion_mnist(split)
        images, labels = made[prefix]
        assert isinstance(data, LabeledData)
        assert data.X.shape == (5, 784) and data.X.dtype == np.float32
        assert data.y.dtype == np.int64
        np.testing.assert_allclose(data.X, images.reshape(5, -1) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(data.y, labels)
        assert "Fashion-MNIST" in data.description
    images = datasets.fashion_mnist("test", flatten=False).X
    assert images.shape == (5, 1, 28, 28)


def test_an_explicit_path_is_the_only_place_looked(monkeypatch, tmp_path):
    fake_set(tmp_path / "mine", n=3)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    assert len(datasets.fashion_mnist("train", path=tmp_path / "mine").X) == 3
    fake_set(tmp_path / "elsewhere", n=4)
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path / "elsewhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetUnavailable, match="empty"):   # not a fallback to the others
        datasets.fashion_mnist("train", path=tmp_path / "empty")


def test_mnist_reads_the_same_files_and_never_downloads(no_system_data, tmp_path):
    with pytest.raises(DatasetUnavailable, match="never downloads"):
        datasets.mnist("train")
    made = fake_set(tmp_path / "mnist", n=4, compress=False)
    data = datasets.mnist("test", path=tmp_path / "mnist")
    np.testing.assert_array_equal(data.y, made["t10k"][1])
    assert data.X.max() <= 1.0 and data.description.startswith("MNIST test")


def test_bad_split_and_mismatched_files(no_system_data, tmp_path):
    fake_set(tmp_path / "set")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        datasets.fashion_mnist("validation", path=tmp_path / "set")
    write(tmp_path / "set", "train-labels-idx1-ubyte.gz",
          idx_bytes(np.zeros(7, np.uint8), 0x08), compress=True)
    with pytest.raises(IDXError, match=r"expected images .* and labels"):
        datasets.fashion_mnist("train", path=tmp_path / "set")


# --- the real data sets (skip when not installed) -----------------------------------------------

def test_the_installed_fashion_mnist():
    try:
        train = datasets.fashion_mnist("train")
        test = datasets.fashion_mnist("test")
    except DatasetUnavailable as missing:
        pytest.skip(str(missing))
    assert train.X.shape == (60000, 784) and test.X.shape == (10000, 784)
    assert train.X.dtype == np.float32 and train.y.dtype == np.int64
    assert 0.0 <= train.X.min() and train.X.max() <= 1.0
    # Fashion-MNIST is balanced: 6 000 training and 1 000 test images per class.
    assert np.bincount(train.y).tolist() == [6000] * 10
    assert np.bincount(test.y).tolist() == [1000] * 10


def test_digits():
    pytest.importorskip("sklearn")
    data = datasets.digits()
    assert data.X.shape == (1797, 64) and data.X.dtype == np.float32
    assert data.y.dtype == np.int64 and data.classes == 10
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    assert datasets.digits(flatten=False).X.shape == (1797, 1, 8, 8)


def test_digits_without_scikit_learn_says_which_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DatasetUnavailable, match=r'tinygrad-bn\[data\]'):
        datasets.digits()


def test_placement_and_spirals_are_labeled_data():
    placement = datasets.placement()
    assert placement.X.shape == (600, 2) and placement.y.dtype == np.int64
    assert set(np.unique(placement.y)) == {0, 1}
    X, y, description = datasets.spirals(points_per_class=20, classes=4, seed=1)
    assert X.shape == (80, 2) and X.dtype == np.float32 and np.bincount(y).tolist() == [20] * 4
    assert "4 arms" in description
    with pytest.raises(ValueError, match="classes >= 2"):
        datasets.spirals(classes=1)
