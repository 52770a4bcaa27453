"""pai.data / pai.data.augment: loaders (real Fashion-MNIST, fake CIFAR pickles, digits), look-up order,
the not-found error, seeded subsets, on-device augmentation and batching."""
import gzip
import pickle
from pathlib import Path

import datafiles
import numpy as np
import pytest
import torch

import pai.data as D
from pai.data import DATA_HELP, DataNotFoundError, augment, dataset_names, iterate_batches, load_dataset

DEBIAN_FM = Path("/usr/share/datasets/fashion-mnist")


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No PAI_DATA, an empty cwd, no Debian folders, and a download that fails like being offline."""
    monkeypatch.delenv("PAI_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(D, "DEBIAN_DIRS", {k: tmp_path / "no-debian" / k for k in D.DEBIAN_DIRS})

    def offline(name, dest):
        raise OSError("simulated: no network")

    monkeypatch.setattr(D, "_download", offline)
    return tmp_path


# ----------------------------------------------------------------------------- idx (Fashion-MNIST)


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = bytes([0, 0, 8, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes() + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)


def write_fake_mnist(d: Path, n_train=12, n_test=5, seed=0, gz=True):
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)]
    for stem, a in zip(D.IDX_FILES, arrays):
        write_idx(d / stem, a, gz)
    return arrays


@pytest.mark.skipif(not all((DEBIAN_FM / f"{s}.gz").is_file() for s in D.IDX_FILES),
                    reason="real Fashion-MNIST absent (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    ds = load_dataset("fashion-mnist", root=DEBIAN_FM)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (10, 1, 28)
    assert ds.mean == (0.2860,) and ds.std == (0.3530,)
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert abs(ds.x_train.mean().item()) < 0.01 and abs(ds.x_train.std().item() - 1) < 0.01
    hits = D._read_idx_set.cache_info().hits
    small = load_dataset("fashion-mnist", root=DEBIAN_FM, train_subset=10, test_subset=10)
    assert D._read_idx_set.cache_info().hits == hits + 1  # the decoded arrays come from the cache
    assert small.x_train.shape == (10, 1, 28, 28)


def test_idx_round_trip_and_lookup_order(isolated, monkeypatch):
    cwd_arrays = write_fake_mnist(isolated / "data" / "fashion-mnist", seed=1, gz=False)
    ds = load_dataset("fashion-mnist")
    expect = (torch.tensor(cwd_arrays[0], dtype=torch.float32) / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(ds.x_train[:, 0], expect)
    assert ds.y_test.tolist() == cwd_arrays[3].tolist()
    # $PAI_DATA beats ./data, and root beats $PAI_DATA
    env_arrays = write_fake_mnist(isolated / "env" / "fashion-mnist", n_train=7, seed=2)
    monkeypatch.setenv("PAI_DATA", str(isolated / "env"))
    assert load_dataset("fashion-mnist").y_train.tolist() == env_arrays[1].tolist()
    root_arrays = write_fake_mnist(isolated / "mine", n_train=9, seed=3)
    assert load_dataset("fashion-mnist", root=isolated / "mine").y_train.tolist() == root_arrays[1].tolist()


def test_truncated_idx_is_a_clear_error(isolated):
    write_fake_mnist(isolated / "data" / "fashion-mnist", gz=False)
    path = isolated / "data" / "fashion-mnist" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_dataset("fashion-mnist")


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "cifar10", "cifar100"])
def test_missing_data_error_lists_places_and_ways(isolated, monkeypatch, name):
    monkeypatch.setenv("PAI_DATA", str(isolated / "env"))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(name)
    assert isinstance(info.value, FileNotFoundError)
    msg = str(info.value)
    for needle in [str(isolated / "env"), str(isolated / "data"), "simulated: no network",
                   "apt-get install dataset-fashion-mnist", "PAI_DATA", "data/fashion-mnist/", "online"]:
        assert needle in msg, needle
    if name == "fashion-mnist":
        assert str(isolated / "no-debian" / "fashion-mnist") in msg
    assert DATA_HELP in msg


def test_offline_switch_skips_download(monkeypatch):
    monkeypatch.setenv("PAI_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="PAI_OFFLINE"):
        D._download("cifar10", Path("unused"))


# ----------------------------------------------------------------------------- CIFAR pickles


write_cifar = datafiles.write_cifar_batches


@pytest.mark.parametrize("name,folder,train_files,test_file,key,k,meta", [
    ("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels", 10,
     ("batches.meta", {b"label_names": [b"x"] * 10})),
    ("cifar100", "cifar-100-python", ["train"], "test", b"fine_labels", 100,
     ("meta", {b"fine_label_names": [b"x"] * 100})),
])
def test_cifar_round_trip(isolated, name, folder, train_files, test_file, key, k, meta):
    written = write_cifar(isolated / "store" / folder, [*train_files, test_file], key, k)
    with open(isolated / "store" / folder / meta[0], "wb") as fh:
        pickle.dump(meta[1], fh)
    ds = load_dataset(name, root=isolated / "store")
    n_train = 4 * len(train_files)
    assert ds.x_train.shape == (n_train, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (k, 3, 32)
    pixels = np.concatenate([written[f][0] for f in train_files]).reshape(-1, 3, 32, 32)
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.std).view(1, 3, 1, 1)
    torch.testing.assert_close(ds.x_train, (torch.tensor(pixels, dtype=torch.float32) / 255 - mean) / std)
    # the channel layout: the first 1024 bytes of a row are the red plane, row-major
    assert ds.x_train[0, 0, 0, 1].item() == pytest.approx((pixels[0, 0, 0, 1] / 255 - ds.mean[0]) / ds.std[0], abs=1e-5)
    assert ds.y_train.tolist() == sum((written[f][1] for f in train_files), [])
    assert ds.y_test.tolist() == written[test_file][1]


def test_cifar_incomplete_folder_is_not_found(isolated):
    write_cifar(isolated / "data" / "cifar-10-batches-py", ["data_batch_1", "test_batch"], b"labels", 10)
    with pytest.raises(DataNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10")


# ----------------------------------------------------------------------------- digits, registry, subsets


def test_digits():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (10, 1, 8)
    assert set(ds.y_train.unique().tolist()) == set(range(10))
    assert abs(ds.x_train.mean().item()) < 1e-4 and abs(ds.x_train.std().item() - 1) < 1e-3
    raw = (ds.x_train * ds.std[0] + ds.mean[0]) * 16  # back to the 0..16 pixel counts
    torch.testing.assert_close(raw, raw.round(), atol=1e-4, rtol=0)
    other = load_dataset("digits", seed=5)  # the split is fixed, whatever the run seed
    assert torch.equal(other.y_test, ds.y_test) and torch.equal(other.x_train, ds.x_train)


def test_image_size_area_averages_on_load():
    full, half = load_dataset("digits"), load_dataset("digits", image_size=4)
    assert half.x_train.shape == (1437, 1, 4, 4) and half.image_size == 4 and half.x_test.shape[2:] == (4, 4)
    blocks = full.x_train.reshape(1437, 1, 4, 2, 4, 2).mean(dim=(3, 5))  # each 2x2 block's mean
    torch.testing.assert_close(half.x_train, blocks)
    assert torch.equal(load_dataset("digits", image_size=8).x_train, full.x_train)
    for bad in (0, 9, 2.5):
        with pytest.raises(ValueError, match="image_size"):
            load_dataset("digits", image_size=bad)


def test_unknown_name_lists_valid_names():
    with pytest.raises(KeyError, match="fashion-mnist") as info:
        load_dataset("fashion-mnsit")
    assert "fashion-mnsit" in str(info.value) and "cifar10" in str(info.value)
    assert {"fashion-mnist", "mnist", "cifar10", "cifar100", "digits"} <= set(dataset_names())


def test_subsets_are_seeded():
    a = load_dataset("digits", train_subset=50, test_subset=20, seed=1)
    b = load_dataset("digits", train_subset=50, test_subset=20, seed=1)
    c = load_dataset("digits", train_subset=50, test_subset=20, seed=2)
    full = load_dataset("digits")
    assert a.x_train.shape == (50, 1, 8, 8) and a.x_test.shape == (20, 1, 8, 8)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    assert a.mean == full.mean  # normalised with the full training split's statistics
    # every subset image is a full-split image
    assert (a.x_train.flatten(1)[:, None] == full.x_train.flatten(1)[None]).all(-1).any(1).all()
    assert torch.equal(load_dataset("digits", train_subset=50, seed=1).x_test, full.x_test)
    for bad in (0, 1438, 2.5):
        with pytest.raises(ValueError, match="train_subset"):
            load_dataset("digits", train_subset=bad)


# ----------------------------------------------------------------------------- augment


def test_augment_deterministic_and_shape():
    x = torch.randn(16, 3, 8, 8)
    a = augment(x, crop_padding=2, generator=_gen(0))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, augment(x, crop_padding=2, generator=_gen(0)))
    assert not torch.equal(a, augment(x, crop_padding=2, generator=_gen(1)))


def test_augment_identity():
    x = torch.randn(4, 1, 5, 5)
    assert torch.equal(augment(x, crop_padding=0, flip=False, generator=_gen(0)), x)


def test_augment_flip_only():
    x = torch.randn(64, 2, 4, 6)
    out = augment(x, crop_padding=0, flip=True, generator=_gen(3))
    same = (out == x).flatten(1).all(1)
    flipped = (out == torch.flip(x, dims=[-1])).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()


@pytest.mark.parametrize("flip", [False, True])
def test_augment_crop_is_a_zero_padded_shift(flip):
    p, n, h, w = 2, 32, 5, 6
    x = torch.randn(n, 3, h, w)
    out = augment(x, crop_padding=p, flip=flip, generator=_gen(4))
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    shifts = set()
    for i in range(n):  # brute force over every offset (and orientation) a tiny batch allows
        hits = [(dy, dx, f) for dy in range(2 * p + 1) for dx in range(2 * p + 1) for f in ((0, 1) if flip else (0,))
                if torch.equal(out[i], (lambda c: c.flip(-1) if f else c)(xp[i, :, dy:dy + h, dx:dx + w]))]
        assert hits, f"image {i} is no crop of its padded original"
        shifts.update(hits)
    assert len(shifts) > 5  # offsets differ between images


def test_augment_fill_per_channel():
    x = torch.ones(8, 3, 4, 4)
    out = augment(x, crop_padding=3, flip=False, generator=_gen(0), fill=[-1.0, -2.0, -3.0])
    for c, v in enumerate([-1.0, -2.0, -3.0]):
        vals = set(out[:, c].unique().tolist())
        assert vals <= {1.0, v} and v in vals


# ----------------------------------------------------------------------------- iterate_batches


@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (False, False), (True, True)])
def test_iterate_batches_covers_each_example_once(shuffle, drop_last):
    n, b = 23, 5
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    y = torch.arange(n)
    batches = list(iterate_batches(x, y, b, shuffle=shuffle, generator=_gen(0), drop_last=drop_last))
    sizes = [len(yb) for _, yb in batches]
    assert sizes == ([5] * 4 if drop_last else [5] * 4 + [3])
    ys = torch.cat([yb for _, yb in batches])
    xs = torch.cat([xb.flatten() for xb, _ in batches])
    assert torch.equal(xs.long(), ys)  # x and y stay paired
    if drop_last:
        assert len(set(ys.tolist())) == 20
    else:
        assert sorted(ys.tolist()) == list(range(n))
    assert torch.equal(ys, torch.arange(len(ys))) != shuffle
    again = torch.cat([yb for _, yb in iterate_batches(x, y, b, shuffle=shuffle, generator=_gen(0), drop_last=drop_last)])
    assert torch.equal(ys, again)


def test_iterate_batches_bad_args():
    x, y = torch.zeros(4, 1), torch.zeros(3)
    with pytest.raises(ValueError, match="examples"):
        iterate_batches(x, y, 2)
    with pytest.raises(ValueError, match="batch_size"):
        iterate_batches(x, torch.zeros(4), 0)
