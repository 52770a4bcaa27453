"""Legends, keys and text boxes that cover no data.

Matplotlib's ``loc="best"`` minimises overlap with data but accepts some; a reviewer does not.  Here a
box is tried at each corner and edge of the axes, measured after layout in display coordinates against
every data artist (scatter markers with their radius, line paths and markers, bars and bands as filled
areas, error bars), and kept at the first place where it touches nothing; if no place inside is free it
goes outside the axes (legends to the right, text boxes into the title).  Call these last in a cell,
once the data and limits are final.  :func:`data_overlaps` is the measure, exported for tests.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from matplotlib.collections import Collection, PathCollection
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

LOCATIONS = ("upper right", "upper left", "lower left", "lower right", "center right", "center left",
             "upper center", "lower center")
_CORNERS = {"upper left": (0.02, 0.98, "left", "top"), "upper right": (0.98, 0.98, "right", "top"),
            "lower left": (0.02, 0.02, "left", "bottom"), "lower right": (0.98, 0.02, "right", "bottom"),
            "center left": (0.02, 0.5, "left", "center"), "center right": (0.98, 0.5, "right", "center"),
            "upper center": (0.5, 0.98, "center", "top"), "lower center": (0.5, 0.02, "center", "bottom")}


def _renderer(fig):
    fig.canvas.draw()  # runs the layout engine: positions measured now are the saved ones
    return fig.canvas.get_renderer()


def _padded(bbox: Bbox, px: float) -> Bbox:
    return Bbox.from_extents(bbox.x0 - px, bbox.y0 - px, bbox.x1 + px, bbox.y1 + px)


def _is_data(artist, skip) -> bool:
    return artist.get_visible() and artist not in skip and not isinstance(artist, (Legend, Text))


def data_overlaps(ax, bbox: Bbox, *, skip: Sequence = ()) -> int:
    """How many data elements of ``ax`` (markers, line paths, bars, bands) intersect ``bbox`` (display
    coordinates).  Markers count with their drawn radius."""
    fig = ax.figure
    px_per_pt = fig.dpi / 72.0
    hits = 0
    for coll in ax.collections:
        if not _is_data(coll, skip):
            continue
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):  # scatter
            pts = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), float))
            sizes = np.broadcast_to(np.asarray(coll.get_sizes(), float) if len(coll.get_sizes()) else [36.0],
                                    (len(pts),))
            r = np.sqrt(sizes) / 2 * px_per_pt
            ok = np.isfinite(pts).all(axis=1)
            hits += int(np.sum(ok & (pts[:, 0] + r >= bbox.x0) & (pts[:, 0] - r <= bbox.x1)
                               & (pts[:, 1] + r >= bbox.y0) & (pts[:, 1] - r <= bbox.y1)))
        elif isinstance(coll, Collection):  # bands (fill_between), error bars, bar collections
            trans = coll.get_transform()
            filled = len(coll.get_facecolor()) > 0 and np.any(np.asarray(coll.get_facecolor())[:, 3] > 0)
            for path in coll.get_paths():
                if len(path.vertices) and path.transformed(trans).intersects_bbox(bbox, filled=filled):
                    hits += 1
    for line in ax.lines:
        if not _is_data(line, skip):
            continue
        path = line.get_transform().transform_path(line.get_path())
        if line.get_linestyle() not in ("None", "none", "", " ") and len(path.vertices) > 1:
            if path.intersects_bbox(_padded(bbox, line.get_linewidth() * px_per_pt / 2), filled=False):
                hits += 1
                continue
        if line.get_marker() not in (None, "None", "none", "", " "):
            pts = path.vertices[np.isfinite(path.vertices).all(axis=1)]
            r = line.get_markersize() / 2 * px_per_pt
            big = _padded(bbox, r)
            hits += int(np.sum((pts[:, 0] >= big.x0) & (pts[:, 0] <= big.x1) & (pts[:, 1] >= big.y0)
                               & (pts[:, 1] <= big.y1)))
    for patch in ax.patches:  # bars
        if _is_data(patch, skip) and patch.get_window_extent().overlaps(bbox):
            hits += 1
    return hits


def _boxes(ax, renderer, skip) -> List[Bbox]:
    """Boxes already placed in ``ax`` (legends, text boxes) that a new one must not cover either."""
    out = []
    for leg in [a for a in ax.get_children() if isinstance(a, Legend)]:
        if leg not in skip and leg.get_visible():
            out.append(leg.get_window_extent(renderer))
    for t in ax.texts:
        if t not in skip and t.get_visible() and t.get_text():
            out.append(_extent(t, renderer))
    return out


def _extent(artist, renderer) -> Bbox:
    if isinstance(artist, Text) and artist.get_bbox_patch() is not None:
        artist.update_bbox_position_size(renderer)  # the box is sized at draw time; size it now
        return artist.get_bbox_patch().get_window_extent(renderer)
    return artist.get_window_extent(renderer)


def _free(ax, artist, renderer, skip=()) -> bool:
    """Inside the axes, on no data, on no other legend or text box."""
    box = _extent(artist, renderer)
    frame = ax.get_window_extent(renderer)
    if not (frame.contains(box.x0 + 1, box.y0 + 1) and frame.contains(box.x1 - 1, box.y1 - 1)):
        return False
    if data_overlaps(ax, box, skip=(artist,)):
        return False
    return not any(box.overlaps(b) for b in _boxes(ax, renderer, skip=(artist, *skip)))


def place_legend(ax, handles=None, labels=None, *, keep: bool = False, locations: Sequence[str] = LOCATIONS,
                 **kwargs) -> Optional[Legend]:
    """A legend of ``ax`` (its labelled artists, or ``handles``/``labels``) at the first location in
    ``locations`` where it covers no data and no other box; outside to the right when none is free.
    ``keep=True`` adds it beside the axes' main legend instead of replacing it (a size key, say)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if not handles:
        return None  # nothing labelled: no legend (matplotlib would draw an empty box and warn)
    replaced = () if keep or ax.get_legend() is None else (ax.get_legend(),)
    renderer = _renderer(ax.figure)
    where = None
    for loc in locations:
        trial = Legend(ax, handles, labels, loc=loc, **kwargs)
        ax.add_artist(trial)
        free = _free(ax, trial, renderer, skip=replaced)
        trial.remove()
        if free:
            where = {"loc": loc}
            break
    if where is None:  # outside, to the right; under any box already there
        ax_box = ax.get_window_extent(renderer)
        outside = [b for b in _boxes(ax, renderer, skip=replaced) if b.x0 >= ax_box.x1 - 1]
        y = 1.0
        if outside:
            y = ax.transAxes.inverted().transform((0, min(b.y0 for b in outside)))[1] - 0.04
        where = {"loc": "upper left", "bbox_to_anchor": (1.02, y), "borderaxespad": 0.0}
    if keep:
        leg = Legend(ax, handles, labels, **where, **kwargs)
        ax.add_artist(leg)
        return leg
    return ax.legend(handles, labels, **where, **kwargs)


def place_text(ax, text: str, *, locations: Sequence[str] = LOCATIONS, fontsize: float = 8, **kwargs) -> Text:
    """A boxed text (a statistics box) at the first location inside ``ax`` that covers no data or other
    box; when none is free the text becomes a line under the axes' title instead."""
    renderer = _renderer(ax.figure)
    bbox = kwargs.pop("bbox", dict(boxstyle="round", fc="white", ec="#cccccc", alpha=0.9))
    for loc in locations:
        x, y, ha, va = _CORNERS[loc]
        t = ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=fontsize, bbox=bbox, **kwargs)
        if _free(ax, t, renderer):
            return t
        t.remove()
    title = ax.get_title()
    ax.set_title(f"{title}\n{text}" if title else text, fontsize=fontsize)
    return ax.title


def covered(fig) -> List[str]:
    """Every legend and boxed text of ``fig`` that covers data, after layout: ``"<axes title>: <what>"``
    (empty when the figure is clean).  ``pai.compendium.plots.finish`` warns with it before saving."""
    renderer = _renderer(fig)
    out = []
    for i, ax in enumerate(fig.axes):
        name = ax.get_title() or f"axes {i}"
        boxes = [a for a in ax.get_children() if isinstance(a, Legend)]
        boxes += [t for t in ax.texts if t.get_bbox_patch() is not None and t.get_text()]
        for art in boxes:
            if art.get_visible() and data_overlaps(ax, _extent(art, renderer), skip=(art,)):
                kind = "legend" if isinstance(art, Legend) else f"text {art.get_text().splitlines()[0]!r}"
                out.append(f"{name}: {kind}")
    return out


def thin_tick_labels(fig, *, pad: float = 3.0) -> int:
    """Blank each x tick label that would overprint the one before it (ticks placed at data levels, such
    as the densities two methods keep, can sit closer than their labels are wide); the tick mark stays.
    Returns how many labels were blanked.  ``pai.compendium.plots.finish`` calls it before saving."""
    renderer = _renderer(fig)
    blanked = 0
    for ax in fig.axes:
        ticks, labels = ax.get_xticks(), ax.get_xticklabels()
        if len(ticks) != len(labels):
            continue
        texts = [t.get_text() for t in labels]
        order = sorted((i for i, t in enumerate(labels) if t.get_visible() and texts[i]),
                       key=lambda i: labels[i].get_window_extent(renderer).x0)
        right, before = -np.inf, blanked
        for i in order:
            box = labels[i].get_window_extent(renderer)
            if box.x0 < right + pad:
                texts[i] = ""
                blanked += 1
            else:
                right = box.x1
        if blanked > before:
            ax.set_xticks(ticks, texts)
    return blanked


def legend_outside(fig, axes=None, *, loc: str = "outside right upper", **kwargs) -> Optional[Legend]:
    """One figure-level legend for every labelled artist of ``axes`` (default: all), each label once,
    outside the axes (constrained layout makes room for it).  None when nothing is labelled."""
    handles, labels = [], []
    for ax in (axes if axes is not None else fig.axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return None
    engine = fig.get_layout_engine()
    if engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine":
        return fig.legend(handles, labels, loc=loc, **kwargs)
    return fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), **kwargs)


def size_handles(sizes, *, fmt: str = "{:g}", color: str = "#999999") -> tuple:
    """Legend handles for marker sizes (``{value: scatter size s}``): the key for a size-coded variable."""
    handles = [Line2D([], [], ls="", marker="o", markersize=float(np.sqrt(s)), color=color,
                      markeredgecolor="black", markeredgewidth=0.3) for s in sizes.values()]
    return handles, [fmt.format(v) for v in sizes]


def size_key(ax, sizes, *, title: str = "density", fmt: str = "{:g}", **kwargs) -> Legend:
    """A key of marker sizes beside the axes' legend, placed where it covers no data."""
    handles, labels = size_handles(sizes, fmt=fmt)
    return place_legend(ax, handles, labels, keep=True, title=title, **kwargs)


def patch_handle(color: str, label: str, hatch: Optional[str] = None) -> Patch:
    return Patch(facecolor=color, edgecolor="black", linewidth=0.4, hatch=hatch, label=label)
