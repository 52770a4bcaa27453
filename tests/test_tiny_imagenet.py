"""pai.data.tiny_imagenet: the real on-disk layout (JPEGs written here with PIL), the tensor cache and its
invalidation, the regrouped validation layouts, and errors that name the path and the fix."""
import os
import shutil
from pathlib import Path

import datafiles
import numpy as np
import pytest
import torch
from PIL import Image

import pai.data.tiny_imagenet as T
from pai.data import DataNotFoundError, load_dataset

N_TRAIN_PER_CLASS = 2
N_VAL = 200


def write_tiny_imagenet(base: Path, seed: int = 0) -> Path:
    return datafiles.write_tiny_imagenet(base, seed, train_per_class=N_TRAIN_PER_CLASS, n_val=N_VAL)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("PAI_DATA", raising=False)
    monkeypatch.delenv("PAI_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    T.load_arrays.cache_clear()
    yield tmp_path
    T.load_arrays.cache_clear()


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def test_real_layout_round_trip(isolated):
    root = write_tiny_imagenet(isolated / "data")
    ds = load_dataset("tiny-imagenet")  # found in ./data
    assert ds.x_train.shape == (T.NUM_CLASSES * N_TRAIN_PER_CLASS, 3, 64, 64)
    assert ds.x_test.shape == (N_VAL, 3, 64, 64) and ds.x_train.dtype == torch.float32
    assert (ds.num_classes, ds.in_channels, ds.image_size) == (200, 3, 64)
    assert ds.mean == T.MEAN and ds.std == T.STD
    wnids = sorted((root / "wnids.txt").read_text().split())
    # class k = k-th wnid in sorted order (ImageFolder's index); files in name order within a class
    assert ds.y_train.tolist() == [k for k in range(200) for _ in range(N_TRAIN_PER_CLASS)]
    mean, std = torch.tensor(T.MEAN).view(3, 1, 1), torch.tensor(T.STD).view(3, 1, 1)
    for i in (0, 11, 399):
        k, j = divmod(i, N_TRAIN_PER_CLASS)
        raw = _pixels(root / "train" / wnids[k] / "images" / f"{wnids[k]}_{j}.JPEG")
        torch.testing.assert_close(ds.x_train[i], (torch.tensor(raw, dtype=torch.float32) / 255 - mean) / std)
    grey_class = wnids.index((root / "wnids.txt").read_text().split()[5])  # the fixture's greyscale image
    grey = ds.x_train[grey_class * N_TRAIN_PER_CLASS + 1] * std + mean
    torch.testing.assert_close(grey[0], grey[1])  # replicated into three equal planes
    torch.testing.assert_close(grey[1], grey[2])
    ann = [line.split("\t") for line in (root / "val" / "val_annotations.txt").read_text().splitlines()]
    assert ds.y_test.tolist() == [wnids.index(w) for _, w, *_ in ann]
    raw = _pixels(root / "val" / "images" / "val_3.JPEG")
    torch.testing.assert_close(ds.x_test[3], (torch.tensor(raw, dtype=torch.float32) / 255 - mean) / std)


def test_cache_is_reused_and_invalidated(isolated, monkeypatch):
    root = write_tiny_imagenet(isolated / "store")
    first = load_dataset("tiny-imagenet", root=isolated / "store")
    cache = root / T.CACHE_NAME
    assert cache.is_file() and not list(root.glob(".*.tmp"))  # written atomically, no temp left

    decoded = []
    real_decode = T.decode
    monkeypatch.setattr(T, "decode", lambda items, desc: decoded.append(len(items)) or real_decode(items, desc))
    T.load_arrays.cache_clear()
    again = load_dataset("tiny-imagenet", root=root)  # the folder itself is accepted as root too
    assert decoded == [] and torch.equal(again.x_train, first.x_train) and torch.equal(again.y_test, first.y_test)

    wnid = sorted((root / "wnids.txt").read_text().split())[0]
    shutil.copy(root / "train" / wnid / "images" / f"{wnid}_0.JPEG", root / "train" / wnid / "images" / "extra.JPEG")
    T.load_arrays.cache_clear()
    grown = load_dataset("tiny-imagenet", root=root)
    assert decoded == [T.NUM_CLASSES * N_TRAIN_PER_CLASS + 1, N_VAL]
    assert len(grown.y_train) == len(first.y_train) + 1

    cache.write_bytes(b"not an npz")  # a damaged cache is rebuilt with a warning
    T.load_arrays.cache_clear()
    with pytest.warns(UserWarning, match="unreadable Tiny-ImageNet cache"):
        load_dataset("tiny-imagenet", root=root)
    assert len(decoded) == 4


def test_cache_folder_override_and_read_only_fallback(isolated, monkeypatch):
    root = write_tiny_imagenet(isolated / "store")
    monkeypatch.setenv("PAI_CACHE", str(isolated / "cache"))
    load_dataset("tiny-imagenet", root=isolated / "store")
    assert len(list((isolated / "cache").glob("tiny-imagenet-*.npz"))) == 1 and not (root / T.CACHE_NAME).exists()

    monkeypatch.delenv("PAI_CACHE")
    T.load_arrays.cache_clear()

    def refuse(path, write):
        if Path(path).parent == root:
            raise PermissionError(13, "Permission denied", str(path))
        return real_write(path, write)

    real_write = T.atomic_write
    monkeypatch.setattr(T, "atomic_write", refuse)
    with pytest.warns(UserWarning, match="cannot write"):
        load_dataset("tiny-imagenet", root=isolated / "store")
    assert len(list((isolated / "home" / ".cache" / "pai").glob("tiny-imagenet-*.npz"))) == 1


@pytest.mark.parametrize("layout", ["expanders", "synflow"])
def test_regrouped_validation_layouts(isolated, layout):
    root = write_tiny_imagenet(isolated / "a")
    reference = load_dataset("tiny-imagenet", root=isolated / "a")
    val = root / "val"
    for line in (val / "val_annotations.txt").read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        dest = (val / "images" / wnid) if layout == "expanders" else (val / wnid)
        dest.mkdir(exist_ok=True)
        os.rename(val / "images" / name, dest / name)
    if layout == "synflow":  # SynFlow's setup deletes the annotations and the images folder
        (val / "val_annotations.txt").unlink()
        (val / "images").rmdir()
    T.load_arrays.cache_clear()
    moved = load_dataset("tiny-imagenet", root=isolated / "a")
    assert torch.equal(moved.x_train, reference.x_train)
    if layout == "expanders":  # annotation order kept
        assert torch.equal(moved.x_test, reference.x_test) and torch.equal(moved.y_test, reference.y_test)
    else:  # grouped by class: the same multiset of (image, label) pairs
        key = lambda ds: sorted(zip(ds.y_test.tolist(), ds.x_test.flatten(1)[:, :8].tolist()))
        assert key(moved) == key(reference)


def test_seeded_subsets(isolated):
    write_tiny_imagenet(isolated / "data")
    a = load_dataset("tiny-imagenet", train_subset=50, test_subset=20, seed=3)
    b = load_dataset("tiny-imagenet", train_subset=50, test_subset=20, seed=3)
    c = load_dataset("tiny-imagenet", train_subset=50, seed=4)
    assert a.x_train.shape == (50, 3, 64, 64) and a.x_test.shape == (20, 3, 64, 64)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train) or not torch.equal(a.x_train, c.x_train)


def test_missing_folder_names_places_and_fix(isolated, monkeypatch):
    monkeypatch.setenv("PAI_DATA", str(isolated / "env"))
    (isolated / "data" / T.FOLDER / "train").mkdir(parents=True)  # an incomplete extraction
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("tiny-imagenet")
    msg = str(info.value)
    for needle in (str(isolated / "env" / T.FOLDER), str(isolated / "data" / T.FOLDER), "lacks wnids.txt, val/",
                   T.URL, "PAI_DATA", "root="):
        assert needle in msg, needle


def _break(root: Path, how: str) -> str:
    wnid = sorted((root / "wnids.txt").read_text().split())[3]
    if how == "wnids":
        lines = (root / "wnids.txt").read_text().split()
        (root / "wnids.txt").write_text("\n".join(lines[:-1]))
        return r"wnids\.txt lists 199 ids"
    if how == "class-folder":
        shutil.rmtree(root / "train" / wnid / "images")
        return f"{wnid}/images is missing"
    if how == "val-image":
        (root / "val" / "images" / "val_9.JPEG").unlink()
        return r"val_annotations\.txt:10: image val_9\.JPEG not found"
    if how == "annotation":
        with open(root / "val" / "val_annotations.txt", "a") as f:
            f.write("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
        return r"val_annotations\.txt:201: expected"
    if how == "truncated":
        p = root / "train" / wnid / "images" / f"{wnid}_1.JPEG"
        p.write_bytes(p.read_bytes()[:40])
        return f"{wnid}_1.JPEG is not a readable JPEG"
    if how == "size":
        Image.fromarray(np.zeros((32, 48, 3), dtype=np.uint8)).save(root / "val" / "images" / "val_2.JPEG")
        return r"val_2\.JPEG is 48x32"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["wnids", "class-folder", "val-image", "annotation", "truncated", "size"])
def test_broken_layout_names_the_path_and_the_fix(isolated, how):
    root = write_tiny_imagenet(isolated / "data")
    pattern = _break(root, how)
    with pytest.raises(T.LayoutError, match=pattern) as info:
        load_dataset("tiny-imagenet")
    assert str(root) in str(info.value) and "re-extract" in str(info.value) and T.URL in str(info.value)
    assert not (root / T.CACHE_NAME).exists()  # nothing half-built is cached
