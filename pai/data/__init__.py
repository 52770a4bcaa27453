"""Datasets as normalised device tensors: Fashion-MNIST (the default), MNIST, CIFAR-10/100, Tiny-ImageNet, digits.

A dataset is four tensors held in memory on the training device (airbench, Jordan 2024, arXiv
2404.00498: no ``DataLoader``); batching and augmentation live in :mod:`pai.data.augment`.

Sources and formats (read here with numpy, so no torchvision integrity check is involved):
- Fashion-MNIST (Xiao, Rasul & Vollgraf, arXiv 1708.07747, 2017) and MNIST (LeCun et al., Proc. IEEE
  1998): the four idx files, gzipped or not.  Looked up in ``root``, ``$PAI_DATA``, ``./data``, the
  Debian package folder, then downloaded by torchvision into ``data/`` when online.
- CIFAR-10/100 (Krizhevsky, tech. report 2009): the "python version" pickles
  (``cifar-10-batches-py/data_batch_1..5, test_batch``; ``cifar-100-python/train, test`` with the
  ``fine_labels``), under ``root``, ``$PAI_DATA`` or ``./data``, else torchvision's download.  Read
  through :class:`CifarUnpickler`, which builds numpy arrays, lists, dicts, bytes, str and numbers
  only: a planted batch file cannot run code (torchvision's own reader, used only right after its
  download, unpickles files whose MD5 it has just checked).
- Tiny-ImageNet (Le & Yang 2015): the JPEG folders of ``tiny-imagenet-200.zip``, decoded once into a
  cached tensor file; never downloaded (:mod:`pai.data.tiny_imagenet`).
- digits: scikit-learn's bundled 8x8 digits (UCI optdigits test set), split 1437/360 by a fixed
  permutation (the split never depends on ``seed``, so results at different seeds share a test set).

Normalisation is per channel: published constants for (Fashion-)MNIST and CIFAR (the values of the
SynFlow/PHEW/NPB ``Utils/load.py`` to 4 digits), the training-split statistics for digits.
"""
from __future__ import annotations

import gzip
import os
import pickle
import socket
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from pai.data.augment import augment, iterate_batches  # noqa: F401  (re-exported: the public data API)
from pai.utils.errors import UserError
from pai.utils.registry import Registry

DATASETS = Registry("dataset")


class DataShape(NamedTuple):
    """What a model needs to know of a dataset, in ``pai.models.create_model``'s argument order."""

    num_classes: int
    in_channels: int
    image_size: int


SHAPES: Dict[str, DataShape] = {}  # filled by register_dataset, next to each loader


def register_dataset(name: str, shape: Tuple[int, int, int]):
    """Register a loader ``fn(root) -> _Raw`` under ``name`` with its ``(num_classes, in_channels,
    image_size)``, so :func:`shape` answers without reading the data."""

    def deco(fn):
        DATASETS.register(name)(fn)
        SHAPES[name] = DataShape(*shape)
        return fn

    return deco


def shape(name: str) -> DataShape:
    """The registered shape of dataset ``name`` (``KeyError`` listing the valid names)."""
    DATASETS.get(name)
    if name not in SHAPES:
        raise KeyError(f"dataset {name!r} has no registered shape: register it with register_dataset(name, shape)")
    return SHAPES[name]
DEBIAN_DIRS = {  # module level so tests can point them elsewhere
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "mnist": Path("/usr/share/datasets/mnist"),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DOWNLOAD_TIMEOUT_S = 10.0

DATA_HELP = """\
Ways to provide the data (any one of them):
  1. Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist/).
  2. Set PAI_DATA to a folder holding fashion-mnist/ (the four idx files train-images-idx3-ubyte.gz,
     train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), mnist/,
     cifar-10-batches-py/ or cifar-100-python/ (the CIFAR "python version" folders).
  3. Put those files in data/fashion-mnist/ (data/mnist/, data/cifar-10-batches-py/,
     data/cifar-100-python/) under the current directory, or pass root=... to load_dataset.
  4. Go online: the loader then downloads them with torchvision into data/ (and PAI_OFFLINE unset).
"""


class DataNotFoundError(FileNotFoundError):
    """No copy of a dataset anywhere we look, and no download possible."""


class DataCorruptError(UserError):
    """A data file exists but is truncated or not in its format; the message names the file."""


_REFETCH = ("delete it and fetch the dataset again (Fashion-MNIST: `apt-get install --reinstall "
            "dataset-fashion-mnist`, or its four .gz files from github.com/zalandoresearch/fashion-mnist)")


@dataclass(repr=False)
class Dataset:
    """A dataset as tensors: :func:`load_dataset` for the registered ones, :meth:`from_tensors` for any
    other, :meth:`coerce` for whatever ``pai.prune(data=...)`` accepts."""

    name: str
    x_train: torch.Tensor  # float32 NCHW, normalised
    y_train: torch.Tensor  # int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    in_channels: Optional[int]  # None: the inputs are not images (N, C, H, W)
    image_size: Optional[int]  # None: not square images
    mean: Optional[Tuple[float, ...]]  # per channel, in [0, 1] pixel units; None: not known (from_tensors)
    std: Optional[Tuple[float, ...]]

    @property
    def shape(self) -> DataShape:
        return DataShape(self.num_classes, self.in_channels, self.image_size)

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """One input's shape without the batch dimension, e.g. ``(3, 32, 32)``."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    def __repr__(self) -> str:  # the default dataclass repr would print 70k images
        return (f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes}, device={self.x_train.device})")

    @classmethod
    def from_tensors(cls, x_train, y_train, x_test=None, y_test=None, *, num_classes: Optional[int] = None,
                     name: str = "tensors", mean: Optional[Sequence[float]] = None,
                     std: Optional[Sequence[float]] = None) -> "Dataset":
        """A dataset of your own tensors, used as they are (normalise them first): float inputs
        ``(N, ...)`` (images ``(N, C, H, W)``), integer class labels ``(N,)``; the test split is optional
        (empty when not given).  ``num_classes`` defaults to the largest label + 1.  ``mean``/``std``
        record the normalisation, if you want it known (e.g. for :func:`pai.data.augment.augment`'s fill).
        A tensor that is not what it should be (integer pixels, float labels, lengths that differ) is
        refused with a ``ValueError`` naming it."""
        if (x_test is None) != (y_test is None):
            raise ValueError("from_tensors: give x_test and y_test together, or neither")
        x_train, y_train = _inputs(x_train, "x_train"), _labels(y_train, "y_train", len(x_train))
        if len(x_train) == 0:
            raise ValueError("from_tensors: x_train holds no example")
        if x_test is None:
            x_test, y_test = x_train[:0], y_train[:0]
        x_test, y_test = _inputs(x_test, "x_test"), _labels(y_test, "y_test", len(x_test))
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"from_tensors: x_test examples have shape {tuple(x_test.shape[1:])}, x_train's "
                             f"{tuple(x_train.shape[1:])}")
        top = int(max(y_train.max(), y_test.max() if len(y_test) else 0))
        if num_classes is None:
            num_classes = top + 1
        elif isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"from_tensors: num_classes must be a positive int, got {num_classes!r}")
        elif top >= num_classes:
            raise ValueError(f"from_tensors: label {top} is outside [0, {num_classes}) for num_classes={num_classes}")
        images = x_train.dim() == 4
        square = images and x_train.shape[2] == x_train.shape[3]
        for what, v in (("mean", mean), ("std", std)):
            if v is not None and (len(v) != (x_train.shape[1] if images else 1)):
                raise ValueError(f"from_tensors: {what} needs one value per channel, got {v!r}")
        return cls(str(name), x_train, y_train, x_test, y_test, int(num_classes),
                   int(x_train.shape[1]) if images else None, int(x_train.shape[2]) if square else None,
                   None if mean is None else tuple(float(m) for m in mean),
                   None if std is None else tuple(float(s) for s in std))

    @classmethod
    def coerce(cls, data, *, num_classes: Optional[int] = None):
        """``data`` as a dataset: a :class:`Dataset` (or any object with ``x_train``/``y_train``
        tensors) as it is; an ``(x, y)`` pair of tensors; an iterable of ``(x, y)`` batches (a
        ``DataLoader``), read once, in full, and concatenated (so ``samples_per_class``-style draws
        see every example, as from a Dataset).  Both of the latter are training data only."""
        if getattr(data, "x_train", None) is not None and getattr(data, "y_train", None) is not None:
            return data
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(map(_is_array, data)):
            return cls.from_tensors(data[0], data[1], num_classes=num_classes, name="tensors")
        what = ("data must be a pai Dataset, an (x, y) pair of tensors or an iterable of (x, y) batches "
                "(a DataLoader)")
        if isinstance(data, (str, bytes, dict)) or _is_array(data) or not hasattr(data, "__iter__"):
            raise ValueError(f"{what}, got {type(data).__name__}")
        xs, ys = [], []
        for i, batch in enumerate(data):
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(map(_is_array, batch))):
                raise ValueError(f"{what}; item {i} is a {type(batch).__name__}, not an (x, y) pair of tensors")
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]).reshape(-1))
        if not xs:
            raise ValueError(f"{what}; this iterable gave no batch")
        shapes = sorted({tuple(x.shape[1:]) for x in xs})
        if len(shapes) > 1:
            raise ValueError(f"data: batches hold inputs of different shapes {shapes}")
        return cls.from_tensors(torch.cat(xs), torch.cat(ys), num_classes=num_classes, name="batches")


def _is_array(x) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def _inputs(x, what: str) -> torch.Tensor:
    if not _is_array(x):
        raise ValueError(f"from_tensors: {what} must be a tensor, got {type(x).__name__}")
    x = torch.as_tensor(x)
    if not x.is_floating_point() or x.dim() < 2:
        raise ValueError(f"from_tensors: {what} must be a float tensor (N, ...) of normalised inputs, got "
                         f"{x.dtype} of shape {tuple(x.shape)} (convert integer pixels to float and normalise them)")
    return x


def _labels(y, what: str, n: int) -> torch.Tensor:
    if not _is_array(y):
        raise ValueError(f"from_tensors: {what} must be a tensor of class labels, got {type(y).__name__}")
    y = torch.as_tensor(y)
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex() or y.dim() != 1:
        raise ValueError(f"from_tensors: {what} must be a 1-D integer tensor of class labels, got {y.dtype} of "
                         f"shape {tuple(y.shape)}")
    if len(y) != n:
        raise ValueError(f"from_tensors: {what} has {len(y)} labels for {n} inputs")
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"from_tensors: {what} holds a negative label ({int(y.min())})")
    return y.long()


class _Raw(NamedTuple):
    """A loader's output: full splits as NCHW pixel arrays (read-only, cached) before scaling."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    scale: float  # pixel value of white (255 for uint8 images, 16 for digits)
    mean: Tuple[float, ...]
    std: Tuple[float, ...]


def dataset_names() -> List[str]:
    return DATASETS.names()


def load_dataset(
    name: str,
    *,
    root: Optional[str | os.PathLike] = None,
    device: str | torch.device = "cpu",
    train_subset: Optional[int] = None,
    test_subset: Optional[int] = None,
    seed: int = 0,
    image_size: Optional[int] = None,
) -> Dataset:
    """Load ``name`` as normalised float32 NCHW tensors and int64 labels on ``device``.

    ``train_subset``/``test_subset`` = n keeps a random n examples (a seeded draw: same ``seed``,
    same subset; the two splits draw from independent streams).  Normalisation always uses the
    statistics of the *full* training split, so a subset sees the same pixel → value map.

    ``image_size`` = s area-averages every image to s x s once, here (``adaptive_avg_pool2d``: for
    28 -> 14 the mean of each 2x2 block).  A CPU budget lever: a 14x14 Fashion-MNIST trains the
    narrow VGG/ResNets 3-4x faster than 28x28 (``python -m pai.bench train``).  Normalisation is
    affine, so pooling before or after it gives the same tensor.
    """
    raw = DATASETS.get(name)(root)
    full = int(raw.x_train.shape[2])
    if name in SHAPES and (raw.num_classes, int(raw.x_train.shape[1]), full) != tuple(SHAPES[name]):
        raise ValueError(f"dataset {name!r} loaded with shape {(raw.num_classes, int(raw.x_train.shape[1]), full)}, "
                         f"registered as {tuple(SHAPES[name])}")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or not 1 <= image_size <= full):
        raise ValueError(f"image_size must be None or an int in [1, {full}] for {name}, got {image_size!r}")
    mean = torch.tensor(raw.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(raw.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def prepare(x: np.ndarray, y: np.ndarray, n: Optional[int], stream: int, split: str):
        idx = _subset_indices(len(x), n, seed, stream, split)
        if idx is not None:
            x, y = x[idx], y[idx]
        # move the compact pixels, convert on the device (a quarter of the bytes of float32 for uint8)
        xt = torch.tensor(x, device=device).float().div_(raw.scale).sub_(mean).div_(std)
        if image_size is not None and image_size != full:
            xt = torch.nn.functional.adaptive_avg_pool2d(xt, image_size).contiguous()
        return xt, torch.tensor(y, dtype=torch.int64, device=device)

    x_train, y_train = prepare(raw.x_train, raw.y_train, train_subset, 0, "train_subset")
    x_test, y_test = prepare(raw.x_test, raw.y_test, test_subset, 1, "test_subset")
    return Dataset(name, x_train, y_train, x_test, y_test, raw.num_classes, int(raw.x_train.shape[1]),
                   int(x_train.shape[2]), tuple(raw.mean), tuple(raw.std))


def load_for(cfg, device: str | torch.device = "cpu") -> Dataset:
    """The data a ``pai.train.config.TrainConfig`` trains on: its dataset, subsets (seeded by the run's
    seed) and input size."""
    return load_dataset(cfg.dataset, root=cfg.data_root, device=device, train_subset=cfg.train_subset,
                        test_subset=cfg.test_subset, seed=cfg.seed, image_size=cfg.image_size)


def _subset_indices(n: int, k: Optional[int], seed: int, stream: int, what: str) -> Optional[np.ndarray]:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 < k <= n:
        raise ValueError(f"{what} must be None or an int in [1, {n}], got {k!r}")
    rng = np.random.default_rng([int(seed), stream])
    return np.sort(rng.choice(n, size=int(k), replace=False))


# ----------------------------------------------------------------------------- look-up and download


def _bases(root) -> List[Path]:
    bases = [Path(root)] if root is not None else []
    if os.environ.get("PAI_DATA"):
        bases.append(Path(os.environ["PAI_DATA"]))
    return bases + [Path.cwd() / "data"]


def _not_found(name: str, looked: Sequence[Path], download_error: str) -> DataNotFoundError:
    places = "\n".join(f"  - {p}" for p in looked)
    return DataNotFoundError(
        f"dataset {name!r} not found. Looked in:\n{places}\n  - download: {download_error}\n{DATA_HELP}")


def _download(name: str, dest: Path) -> None:
    """torchvision's download into ``dest`` (tests replace this function to simulate offline)."""
    if os.environ.get("PAI_OFFLINE"):
        raise RuntimeError("skipped, PAI_OFFLINE is set")
    import torchvision.datasets as tvd

    cls = {"fashion-mnist": tvd.FashionMNIST, "mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # offline, urllib would otherwise wait on each mirror
    try:
        cls(root=str(dest), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


_ANNOUNCED: set = set()


def announce(name: str, folder: Path) -> Path:
    """Say once per process which copy of a dataset is read (several copies may exist: ``$PAI_DATA``,
    ``data/``, the Debian folder), on stderr so that tables and notebooks' stdout stay clean."""
    key = (name, str(Path(folder).resolve()))
    if key not in _ANNOUNCED:
        _ANNOUNCED.add(key)
        print(f"pai.data: {name} from {key[1]}", file=sys.stderr, flush=True)
    return folder


def _find(name: str, root, subdirs: Sequence[str], is_complete, extra: Sequence[Path] = (),
          downloaded: Sequence[str] = ()) -> Path:
    """First folder that ``is_complete``; else download into ``root or ./data`` and look again."""
    looked = [b / s if s else b for b in _bases(root) for s in subdirs] + list(extra)
    for d in looked:
        if is_complete(d):
            return announce(name, d)
    dest = Path(root) if root is not None else Path.cwd() / "data"
    try:
        _download(name, dest)
    except Exception as e:  # any failure (no network, no torchvision, bad mirror) ends in one clear error
        raise _not_found(name, looked, f"{type(e).__name__}: {e}") from e
    for d in (dest / s for s in downloaded):
        if is_complete(d):
            return announce(name, d)
    raise _not_found(name, looked, f"torchvision reported success but {dest} holds no readable copy")


# ----------------------------------------------------------------------------- idx (Fashion-MNIST, MNIST)


def _idx_path(d: Path, stem: str) -> Optional[Path]:
    for p in (d / f"{stem}.gz", d / stem):
        if p.is_file():
            return p
    return None


def _idx_complete(d: Path) -> bool:
    return all(_idx_path(d, s) is not None for s in IDX_FILES)


def _stamp(paths: Sequence[Path]) -> Tuple[Tuple[str, int], ...]:
    # the cache key includes mtimes, so a file replaced on disk is read again
    return tuple((str(p.resolve()), p.stat().st_mtime_ns) for p in paths)


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (LeCun's format: magic 0x0000 08 ndim, big-endian int32 dims, uint8 data)."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:  # a truncated download ends the gzip stream early
        raise DataCorruptError(f"{path} is truncated or not a gzip file ({type(e).__name__}: {e}); "
                               f"{_REFETCH}") from e
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise DataCorruptError(f"{path} is not an idx file of unsigned bytes (magic {data[:4].hex()}); {_REFETCH}")
    ndim = data[3]
    dims = tuple(int(v) for v in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise DataCorruptError(f"{path} is truncated: its header says {dims} = {int(np.prod(dims))} bytes, found "
                               f"{len(data) - offset}; {_REFETCH}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


@lru_cache(maxsize=8)
def _read_idx_set(stamp) -> Tuple[np.ndarray, ...]:
    xtr, ytr, xte, yte = (read_idx(Path(p)) for p, _ in stamp)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(f"image and label counts differ in {Path(stamp[0][0]).parent}")
    return xtr[:, None], ytr.astype(np.int64), xte[:, None], yte.astype(np.int64)


def _idx_dataset(name: str, root, subdirs, downloaded, mean: float, std: float) -> _Raw:
    extra = [DEBIAN_DIRS[name]] if name in DEBIAN_DIRS else []
    d = _find(name, root, subdirs, _idx_complete, extra, downloaded)
    xtr, ytr, xte, yte = _read_idx_set(_stamp([_idx_path(d, s) for s in IDX_FILES]))
    return _Raw(xtr, ytr, xte, yte, 10, 255.0, (mean,), (std,))


@register_dataset("fashion-mnist", (10, 1, 28))
def _fashion_mnist(root) -> _Raw:
    # the bare base folder too (``data/`` holding the four idx files); MNIST does not look there, as the two sets
    # share file names and a silent mix-up would be worse than a not-found error
    return _idx_dataset("fashion-mnist", root, ["fashion-mnist", "FashionMNIST/raw", ""], ["FashionMNIST/raw"],
                        0.2860, 0.3530)


@register_dataset("mnist", (10, 1, 28))
def _mnist(root) -> _Raw:
    return _idx_dataset("mnist", root, ["mnist", "MNIST/raw"], ["MNIST/raw"], 0.1307, 0.3081)


# ----------------------------------------------------------------------------- CIFAR pickles


def _numpy_globals() -> Dict[Tuple[str, str], object]:
    """The only callables a CIFAR batch may name: numpy's array, scalar and dtype reconstruction."""
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric

    def dtype(*args):
        t = np.dtype(*args)
        if t.hasobject:  # an object array would hold whatever the pickle builds
            raise pickle.UnpicklingError(f"object dtype {t} (a CIFAR batch holds numbers only)")
        return t

    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): dtype,
           ("_codecs", "encode"): _latin1_encode}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # as numpy 1 and numpy 2 pickle them
        out[(module, "_reconstruct")] = multiarray._reconstruct
        out[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # pickle protocol 5 (out-of-band buffers)
        out[(module, "_frombuffer")] = numeric._frombuffer
    return out


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2 (always latin-1); no other codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


class ForbiddenPickle(pickle.UnpicklingError):
    """A pickle asked for a callable outside the allowed ones; nothing of it was run."""


class CifarUnpickler(pickle.Unpickler):
    """A restricted unpickler: numpy arrays, dtypes, lists, dicts, bytes, str and numbers only.

    A pickle can call any importable function while it loads (``os.system`` included), so a planted
    ``data_batch_1`` would run its code before any check of its content; every name a pickle asks for
    goes through :meth:`find_class`, which knows only numpy's reconstruction functions (the pattern of
    the Python docs' "Restricting Globals")."""

    _allowed: Optional[Dict[Tuple[str, str], object]] = None

    def find_class(self, module: str, name: str):
        if CifarUnpickler._allowed is None:
            CifarUnpickler._allowed = _numpy_globals()
        found = CifarUnpickler._allowed.get((module, name))
        if found is None:
            raise ForbiddenPickle(f"it asks for {module}.{name}, which a CIFAR batch never holds "
                                         f"(refused unrun: numpy arrays, lists, dicts, bytes, str and numbers only)")
        return found


def safe_unpickle(f) -> object:
    """``pickle.load(f, encoding="bytes")`` through :class:`CifarUnpickler` (the CIFAR archives are
    Python 2 pickles: their str are bytes)."""
    return CifarUnpickler(f, encoding="bytes").load()


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = safe_unpickle(f)
    except ForbiddenPickle as e:
        raise DataCorruptError(f"{path} is not a CIFAR batch: {e}; {_REFETCH}") from None
    except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError) as e:
        raise DataCorruptError(f"{path} is truncated or not a CIFAR python pickle ({type(e).__name__}: {e}); "
                               f"{_REFETCH}") from e
    if not isinstance(d, dict):
        raise DataCorruptError(f"{path} holds a {type(d).__name__}, not a CIFAR batch dictionary; {_REFETCH}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


@lru_cache(maxsize=4)
def _read_cifar(stamp, label_key: str) -> Tuple[np.ndarray, ...]:
    def read(paths):
        xs, ys = [], []
        for p in paths:
            d = _unpickle(Path(p))
            if "data" not in d or label_key not in d:
                raise DataCorruptError(f"{p} has no {'data' if 'data' not in d else label_key!r} entry: not a CIFAR "
                                       f"batch of this dataset; {_REFETCH}")
            x = np.asarray(d["data"], dtype=np.uint8)
            y = np.asarray(d[label_key], dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(x) != len(y):
                raise DataCorruptError(f"{p}: expected data (N, 3072) and N labels, got {x.shape} and {y.shape}; "
                                       f"{_REFETCH}")
            xs.append(x.reshape(-1, 3, 32, 32))  # rows are 1024 R, then G, then B, each row-major
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    paths = [p for p, _ in stamp]  # the last file is the test split
    return (*read(paths[:-1]), *read(paths[-1:]))


def _cifar(name: str, root, folder: str, train_files, label_key: str, num_classes: int, mean, std) -> _Raw:
    files = [*train_files, "test"] if name == "cifar100" else [*train_files, "test_batch"]
    d = _find(name, root, [folder], lambda d: all((d / f).is_file() for f in files), (), [folder])
    xtr, ytr, xte, yte = _read_cifar(_stamp([d / f for f in files]), label_key)
    for y, split in ((ytr, "train"), (yte, "test")):
        if len(y) and not (0 <= y.min() and y.max() < num_classes):
            raise ValueError(f"{d}: {split} labels outside [0, {num_classes})")
    return _Raw(xtr, ytr, xte, yte, num_classes, 255.0, mean, std)


@register_dataset("cifar10", (10, 3, 32))
def _cifar10(root) -> _Raw:
    return _cifar("cifar10", root, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels", 10,
                  (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


@register_dataset("cifar100", (100, 3, 32))
def _cifar100(root) -> _Raw:
    return _cifar("cifar100", root, "cifar-100-python", ["train"], "fine_labels", 100,
                  (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


# ----------------------------------------------------------------------------- scikit-learn digits

DIGITS_SPLIT_SEED = 0  # fixed: the split is part of the dataset, not of the run
DIGITS_N_TRAIN = 1437


@lru_cache(maxsize=1)
def _read_digits() -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None]  # (1797, 1, 8, 8), values 0..16
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(x))
    tr, te = perm[:DIGITS_N_TRAIN], perm[DIGITS_N_TRAIN:]
    xtr = x[tr] / 16.0
    mean, std = (float(xtr.mean()),), (float(xtr.std()),)
    arrays = [x[tr], y[tr], x[te], y[te]]
    for a in arrays:
        a.setflags(write=False)  # shared by every caller through the cache
    return _Raw(*arrays, 10, 16.0, mean, std)


@register_dataset("digits", (10, 1, 8))
def _digits(root) -> _Raw:
    return _read_digits()  # bundled with scikit-learn: ``root`` is irrelevant


@register_dataset("tiny-imagenet", (200, 3, 64))
def _tiny_imagenet(root) -> _Raw:
    from pai.data import tiny_imagenet as tin

    found = tin.find(_bases(root))
    if isinstance(found, str):
        raise DataNotFoundError(found)
    announce("tiny-imagenet", found)
    a = tin.load_arrays(found.resolve(), tin.stamp(found.resolve()))
    return _Raw(a["x_train"], a["y_train"], a["x_test"], a["y_test"], tin.NUM_CLASSES, 255.0, tin.MEAN, tin.STD)
