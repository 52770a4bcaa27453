"""Tiny-ImageNet (Le & Yang, "Tiny ImageNet visual recognition challenge", CS231N 2015): 200 classes,
3x64x64, 500 training and 50 validation images per class.  The validation split is our test split
(the official test images carry no labels), as in the SynFlow, PHEW, NPB and RReg code.

Read from the layout of ``tiny-imagenet-200.zip`` (http://cs231n.stanford.edu/tiny-imagenet-200.zip)::

    tiny-imagenet-200/wnids.txt                       the 200 WordNet ids, one a line
    tiny-imagenet-200/train/<wnid>/images/*.JPEG      training images of class <wnid>
    tiny-imagenet-200/val/val_annotations.txt         "<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>" per image
    tiny-imagenet-200/val/images/<file>               validation images

Validation folders already regrouped by class are accepted too: ``val/images/<wnid>/<file>`` (the
``data/prepare_tiny_imagenet.py`` of SamsungLabs/ExpandersPruning) and ``val/<wnid>/<file>`` with the
annotation file removed (``Utils/custom_datasets.py`` of SynFlow, PHEW and NPB).

Class ``k`` is the ``k``-th wnid in sorted order, the index torchvision's ``ImageFolder`` gives in all
of those code bases.  Greyscale JPEGs (a few hundred in the real set) are replicated to RGB, as
``ImageFolder``'s ``convert("RGB")`` does.  Normalisation: SynFlow's ``Utils/load.py`` constants
(PHEW and NPB share them); the RReg code uses the ImageNet ones instead.

Decoding 110k JPEGs takes about half a minute, so the pixels are converted once into an uncompressed
``.npz`` of uint8 NCHW arrays (about 1.3 GB), written atomically next to the data (``$PAI_CACHE``
overrides the folder; ``~/.cache/pai`` if the data folder is read-only).  The cache records a cheap
stamp of the source: the sizes and mtimes of the two text files and, per image folder, its mtime and
the sorted file names.  Adding, removing or renaming an image, or re-extracting the archive,
invalidates it; a JPEG rewritten in place under the same name is not detected (delete the cache).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pai.utils.io import atomic_write
from pai.utils.progress import progress_reporter

NUM_CLASSES = 200
IMAGE_SIZE = 64
FOLDER = "tiny-imagenet-200"
MEAN = (0.480, 0.448, 0.397)
STD = (0.276, 0.269, 0.282)
CACHE_VERSION = 1
CACHE_NAME = f"pai-tensors-v{CACHE_VERSION}.npz"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
HELP = f"""\
Tiny-ImageNet is not downloaded automatically. To provide it:
  1. Download {URL} (248 MB) and unzip it, giving a folder {FOLDER}/ with wnids.txt, train/, val/.
  2. Put that folder in data/ under the current directory, or in the folder named by $PAI_DATA, or pass
     root=<folder holding {FOLDER}/> to load_dataset("tiny-imagenet", ...).
"""


class LayoutError(ValueError):
    """The folder exists but does not hold the Tiny-ImageNet layout (message: the path and the fix)."""


def _fix(what: str) -> str:
    return f"{what}. Fix: re-extract {URL} so that {FOLDER}/ holds wnids.txt, train/<wnid>/images/ and val/."


def is_complete(folder: Path) -> bool:
    """Cheap check that ``folder`` looks like a Tiny-ImageNet folder (the full check is :func:`scan`)."""
    return (folder / "wnids.txt").is_file() and (folder / "train").is_dir() and (folder / "val").is_dir()


def read_wnids(folder: Path) -> List[str]:
    path = folder / "wnids.txt"
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(set(wnids)) != len(wnids) or len(wnids) != NUM_CLASSES:
        raise LayoutError(_fix(f"{path} lists {len(wnids)} ids ({len(set(wnids))} distinct), "
                               f"Tiny-ImageNet has {NUM_CLASSES}"))
    return sorted(wnids)


def _listing(d: Path) -> List[str]:
    return sorted(e.name for e in os.scandir(d) if e.is_file() and e.name.lower().endswith((".jpeg", ".jpg")))


def _train_items(folder: Path, wnids: Sequence[str]) -> List[Tuple[Path, int]]:
    items = []
    for label, wnid in enumerate(wnids):
        d = folder / "train" / wnid / "images"
        if not d.is_dir():
            raise LayoutError(_fix(f"class folder {d} is missing"))
        names = _listing(d)
        if not names:
            raise LayoutError(_fix(f"{d} holds no .JPEG image"))
        items += [(d / n, label) for n in names]
    return items


def _val_items(folder: Path, wnids: Sequence[str]) -> List[Tuple[Path, int]]:
    labels = {w: i for i, w in enumerate(wnids)}
    val = folder / "val"
    ann = val / "val_annotations.txt"
    if not ann.is_file():  # SynFlow's regrouped layout: val/<wnid>/<file>, annotations deleted
        items = [(val / w / n, labels[w]) for w in wnids if (val / w).is_dir() for n in _listing(val / w)]
        if not items:
            raise LayoutError(_fix(f"{ann} is missing (and {val} has no per-class folders val/<wnid>/ of images)"))
        return items
    items = []
    for lineno, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in labels:
            raise LayoutError(_fix(f"{ann}:{lineno}: expected '<file>\\t<wnid>\\t...' with a wnid of wnids.txt, "
                                   f"got {line[:80]!r}"))
        name, wnid = fields[0], fields[1]
        candidates = (val / "images" / name, val / "images" / wnid / name, val / wnid / name)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise LayoutError(_fix(f"{ann}:{lineno}: image {name} not found (looked for "
                                   f"{', '.join(str(p) for p in candidates)})"))
        items.append((path, labels[wnid]))
    if not items:
        raise LayoutError(_fix(f"{ann} lists no image"))
    return items


def stamp(folder: Path) -> str:
    """Hash of what the cache depends on, computed from directory listings and a few stats only."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for f in (folder / "wnids.txt", folder / "val" / "val_annotations.txt"):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    for d in _image_dirs(folder):
        h.update(f"{d.relative_to(folder)}:{d.stat().st_mtime_ns}:".encode())
        h.update("/".join(_listing(d)).encode())
    return h.hexdigest()


def _image_dirs(folder: Path) -> List[Path]:
    """Every folder images may be read from: train/<wnid>/images and the validation folders."""
    val = folder / "val"
    dirs = [folder / "train" / w / "images" for w in read_wnids(folder)]
    dirs += [val / "images"] if (val / "images").is_dir() else []
    dirs += sorted(p for p in [*val.glob("*"), *val.glob("images/*")] if p.is_dir() and p != val / "images")
    return [d for d in dirs if d.is_dir()]


def scan(folder: Path) -> Tuple[List[Tuple[Path, int]], List[Tuple[Path, int]]]:
    """``(train, val)`` lists of ``(image path, label)``; :class:`LayoutError` on a broken layout."""
    wnids = read_wnids(folder)
    return _train_items(folder, wnids), _val_items(folder, wnids)


def decode(items: Sequence[Tuple[Path, int]], desc: str) -> Tuple[np.ndarray, np.ndarray]:
    """JPEGs -> (N, 3, 64, 64) uint8 and (N,) int64, with a progress bar."""
    from PIL import Image, UnidentifiedImageError

    x = np.empty((len(items), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    y = np.fromiter((label for _, label in items), dtype=np.int64, count=len(items))
    bar = progress_reporter(len(items), None, desc, unit="img", interval=30.0)
    for i, (path, _) in enumerate(items):
        bar.update()
        try:
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as e:
            raise LayoutError(_fix(f"{path} is not a readable JPEG ({e})")) from e
        if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise LayoutError(_fix(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, "
                                   f"Tiny-ImageNet images are {IMAGE_SIZE}x{IMAGE_SIZE}"))
        x[i] = pixels.transpose(2, 0, 1)
    bar.close()
    return x, y


def cache_path(folder: Path) -> Path:
    if os.environ.get("PAI_CACHE"):
        return Path(os.environ["PAI_CACHE"]) / f"tiny-imagenet-{_path_hash(folder)}-{CACHE_NAME}"
    return folder / CACHE_NAME


def _path_hash(folder: Path) -> str:
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


def _read_cache(path: Path, expected: str) -> Optional[Dict[str, np.ndarray]]:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["stamp"]) != expected:
                return None
            return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as e:  # a foreign or damaged file: rebuild rather than fail
        warnings.warn(f"ignoring unreadable Tiny-ImageNet cache {path} ({type(e).__name__}: {e}); rebuilding it")
        return None


def _write_cache(folder: Path, path: Path, arrays: Dict[str, np.ndarray], key: str) -> Optional[Path]:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, stamp=np.array(key), **arrays)

    try:
        return atomic_write(path, write)
    except OSError as e:  # read-only data folder: fall back to the user cache
        fallback = _fallback_path(folder)
        if path != fallback:
            warnings.warn(f"cannot write {path} ({e}); caching Tiny-ImageNet in {fallback} instead")
            try:
                return atomic_write(fallback, write)
            except OSError as e2:
                e = e2
        # the arrays are decoded and in memory: a cache that cannot be written costs the next run a
        # decode, so it is a warning, never a failure of this one
        warnings.warn(f"cannot cache Tiny-ImageNet in {fallback} ({e}); the next run decodes the JPEGs again. "
                      f"Fix: set PAI_CACHE to a writable folder")
        return None


def _fallback_path(folder: Path) -> Path:
    return Path.home() / ".cache" / "pai" / f"tiny-imagenet-{_path_hash(folder)}-{CACHE_NAME}"


@lru_cache(maxsize=2)
def load_arrays(folder: Path, key: str) -> Dict[str, np.ndarray]:
    """The four uint8/int64 arrays of the folder (whose :func:`stamp` is ``key``): from the cache
    file if it matches, else decoded from the JPEGs and cached.  Read-only; cached per process."""
    arrays = None
    for path in (cache_path(folder), _fallback_path(folder)):
        arrays = _read_cache(path, key)
        if arrays is not None:
            break
    if arrays is None:
        train, val = scan(folder)
        x_train, y_train = decode(train, "tiny-imagenet train")
        x_test, y_test = decode(val, "tiny-imagenet val")
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        _write_cache(folder, cache_path(folder), arrays, key)
    for a in arrays.values():
        a.setflags(write=False)  # shared by every caller through the cache
    return arrays


def find(bases: Sequence[Path]) -> Path | str:
    """The first Tiny-ImageNet folder under one of ``bases`` (as ``tiny-imagenet-200/`` or the folder
    itself), else the message :class:`~pai.data.DataNotFoundError` raises: the places looked and the fix.
    ``pai.data`` supplies the bases (``root``, ``$PAI_DATA``, ``./data``) and raises, so this reader of the
    format imports nothing of ``pai.data``."""
    looked = [b / s if s else b for b in bases for s in (FOLDER, "")]
    for d in looked:
        if is_complete(d):
            return d
    lines = []
    for d in looked:
        missing = [n for n in ("wnids.txt", "train/", "val/") if not (d / n).exists()]
        note = f"  (exists but lacks {', '.join(missing)})" if d.is_dir() and d.name == FOLDER else ""
        lines.append(f"  - {d}{note}")
    return "dataset 'tiny-imagenet' not found. Looked in:\n" + "\n".join(lines) + "\n" + HELP
