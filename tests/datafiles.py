"""Small data files in the real on-disk formats, for tests that cannot download the real sets.

CIFAR-10/100 as the python-pickle folders of ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``,
Tiny-ImageNet as the JPEG layout of ``tiny-imagenet-200.zip`` (``pai.data.tiny_imagenet``).  Pixels are
seeded noise, labels seeded; the paper-path notebook smoke tests train on them for one epoch.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR = {  # name -> (folder, train files, test file, label key, classes, meta file, meta)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels", 10,
                "batches.meta", {b"label_names": [b"x"] * 10}),
    "cifar100": ("cifar-100-python", ["train"], "test", b"fine_labels", 100,
                 "meta", {b"fine_label_names": [b"x"] * 100}),
}


def write_cifar_batches(d: Path, files, label_key: bytes, num_classes: int, n_per_file=4, seed=0):
    """Pickled batches ``{b"data": uint8 (n, 3072), label_key: [...]}`` as the CIFAR archives hold them."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for f in files:
        data = rng.integers(0, 256, (n_per_file, 3072)).astype(np.uint8)
        labels = rng.integers(0, num_classes, n_per_file).tolist()
        with open(d / f, "wb") as fh:
            pickle.dump({b"batch_label": f.encode(), label_key: labels, b"data": data, b"filenames": []}, fh)
        out[f] = (data, labels)
    return out


def write_cifar(root: Path, name: str, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """A complete ``cifar-10-batches-py/`` or ``cifar-100-python/`` folder under ``root``."""
    folder, train_files, test_file, key, k, meta_file, meta = CIFAR[name]
    d = Path(root) / folder
    write_cifar_batches(d, train_files, key, k, n_per_file=max(1, n_train // len(train_files)), seed=seed)
    write_cifar_batches(d, [test_file], key, k, n_per_file=n_test, seed=seed + 1)
    with open(d / meta_file, "wb") as fh:
        pickle.dump(meta, fh)
    return d


def write_tiny_imagenet(base: Path, seed: int = 0, train_per_class: int = 2, n_val: int = 200) -> Path:
    """A 200-class ``tiny-imagenet-200/`` in the archive's layout: wnids.txt unsorted, boxes files,
    words.txt, one greyscale JPEG per split, an unlabelled test folder."""
    from PIL import Image

    from pai.data import tiny_imagenet as T

    rng = np.random.default_rng(seed)
    root = Path(base) / T.FOLDER
    wnids = [f"n{int(v):08d}" for v in rng.choice(10**8, size=T.NUM_CLASSES, replace=False)]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\tthing {i}\n" for i, w in enumerate(wnids)))

    def image(grey=False):
        if grey:
            return Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), mode="L")
        return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))

    for k, w in enumerate(wnids):
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for i in range(train_per_class):
            image(grey=(k == 5 and i == 1)).save(d / f"{w}_{i}.JPEG")
        (root / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t63\t63\n")
    lines = []
    for i in range(n_val):
        w = wnids[int(rng.integers(T.NUM_CLASSES))]
        image(grey=(i == 7)).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{w}\t1\t2\t60\t61")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (root / "test" / "images").mkdir(parents=True)
    image().save(root / "test" / "images" / "test_0.JPEG")  # unlabelled: must be ignored
    return root
