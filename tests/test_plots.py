"""pai.compendium.plots / pai.compendium.placement: legends, keys and stats boxes never cover data; one colour per method.

The overlap checks here are computed independently of ``pai.compendium.placement``: data coordinates through
``ax.transData`` (markers with their radius) and bar rectangles, against the legend's window extent
after the figure is drawn (Agg) - the positions the saved figure has.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pai.compendium import plots  # noqa: E402
from pai.compendium.variants import register_variant  # noqa: E402

plots.style()


def _drawn(fig):
    fig.savefig(io.BytesIO(), format="png")  # the saved layout, then measure on it
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _points_under(ax, box, x, y, size=16.0):
    pts = ax.transData.transform(np.column_stack([x, y]))
    r = np.sqrt(size) / 2 * ax.figure.dpi / 72
    return int(np.sum((pts[:, 0] + r >= box.x0) & (pts[:, 0] - r <= box.x1)
                      & (pts[:, 1] + r >= box.y0) & (pts[:, 1] - r <= box.y1)))


def _bars_under(ax, box):
    return sum(p.get_window_extent().overlaps(box) for p in ax.patches)


def _scatter_panel(seed=0):
    """Three clouds in three corners of the axes; the fourth corner is free."""
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(4, 3))
    xs, ys = [], []
    for k, (cx, cy) in enumerate([(0.1, 0.9), (0.9, 0.9), (0.1, 0.1)]):
        x, y = cx + rng.normal(0, 0.05, 40), cy + rng.normal(0, 0.05, 40)
        ax.scatter(x, y, s=16, label=f"method {k}", color=plots.color(["rreg", "xnet", "random-graph"][k]))
        xs.append(x)
        ys.append(y)
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(-0.1, 1.1)
    return fig, ax, np.concatenate(xs), np.concatenate(ys)


def test_scatter_legend_covers_no_point_and_the_check_can_fail():
    fig, ax, x, y = _scatter_panel()
    naive = ax.legend(loc="upper left")  # on a cloud: the check must see it
    _drawn(fig)
    assert _points_under(ax, naive.get_window_extent(), x, y) > 0
    leg = plots.place_legend(ax)
    r = _drawn(fig)
    assert ax.get_legend() is leg and len(leg.get_texts()) == 3
    box = leg.get_window_extent(r)
    assert _points_under(ax, box, x, y) == 0
    assert plots.data_overlaps(ax, box) == 0 and plots.data_overlaps(ax, naive.get_window_extent(r)) > 0
    assert ax.get_window_extent(r).contains(box.x0 + 1, box.y0 + 1)  # it found the free corner inside
    assert plots.covered(fig) == []
    plt.close(fig)


def test_finish_warns_when_a_box_covers_data(tmp_path):
    fig, ax, x, y = _scatter_panel()
    ax.set_title("clouds")
    ax.legend(loc="upper left")
    with pytest.warns(UserWarning, match="clouds: legend"):
        plots.finish(fig, tmp_path, "naive", title="t", caption_text="c")
    plots.place_legend(ax)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.finish(fig, tmp_path, "placed", title="t", caption_text="c")
    plt.close(fig)


def test_scatter_fully_covered_puts_the_legend_outside():
    rng = np.random.default_rng(1)
    fig, ax = plt.subplots(figsize=(4, 3))
    gx, gy = np.meshgrid(np.linspace(0, 1, 25), np.linspace(0, 1, 25))
    x, y = gx.ravel() + rng.normal(0, 0.005, gx.size), gy.ravel()
    ax.scatter(x, y, s=16, label="dense cloud")
    leg = plots.place_legend(ax)
    r = _drawn(fig)
    box = leg.get_window_extent(r)
    assert _points_under(ax, box, x, y) == 0 and box.x0 >= ax.get_window_extent(r).x1 - 1
    plt.close(fig)


@pytest.mark.parametrize("tall", [False, True])
def test_bar_legend_covers_no_bar(tall):
    fig, ax = plt.subplots(figsize=(4, 3))
    series = {m: [[0.9, 0.92, 0.91] if tall else [0.5, 0.52], [0.88, 0.9] if tall else [0.45, 0.47],
                  [0.85, 0.87] if tall else [0.6, 0.61]] for m in ["phew", "synflow", "synflow-l2", "snip"]}
    plots.grouped_bars(ax, ["conv", "fc1", "fc2"], series, ylabel="fraction")
    ax.set_ylim(0, 1.0 if tall else 1.2)
    leg = plots.place_legend(ax)
    r = _drawn(fig)
    box = leg.get_window_extent(r)
    assert _bars_under(ax, box) == 0
    inside = ax.get_window_extent(r).contains(box.x1 - 1, box.y1 - 1)
    assert bool(inside) == (not tall)  # room above short bars; none above tall ones
    labels = [t.get_text() for t in leg.get_texts()]
    assert labels == list(series)  # one entry per series
    colors = {tuple(np.round(h.get_facecolor(), 3)) for h in leg.legend_handles}
    assert len(colors) == 4
    plt.close(fig)


def test_stats_box_and_legend_cover_no_point_nor_each_other():
    fig, ax, x, y = _scatter_panel(seed=2)
    st = plots.correlation_scatter(ax, x, y, groups=np.repeat(["rreg", "xnet", "random-graph"], 40), fit=False,
                                   within=np.tile([0.1, 0.01], 60))
    leg = plots.place_legend(ax)
    r = _drawn(fig)
    texts = [t for t in ax.texts if t.get_text().startswith("Pearson")]
    assert len(texts) == 1 and "within density" in texts[0].get_text()
    tbox = texts[0].get_bbox_patch().get_window_extent(r)
    lbox = leg.get_window_extent(r)
    assert _points_under(ax, tbox, x, y) == 0 and _points_under(ax, lbox, x, y) == 0
    assert not tbox.overlaps(lbox)
    assert st["low"] < st["rho"] < st["high"] and np.isfinite(st["rho_within"])
    plt.close(fig)


def test_size_key_and_figure_legend():
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    sizes = {0.01: 12.0, 0.1: 40.0, 0.3: 72.0}
    for ax in axes:
        for m, dy in [("npb", 0), ("synflow", 1)]:
            ax.scatter([1, 2, 3], [dy, dy + 0.5, dy + 1], s=list(sizes.values()), label=m, color=plots.color(m))
    key = plots.size_key(axes[0], sizes, title="density")
    leg = plots.legend_outside(fig)
    r = _drawn(fig)
    assert [t.get_text() for t in key.get_texts()] == ["0.01", "0.1", "0.3"]
    assert [h.get_markersize() for h in key.legend_handles] == pytest.approx(np.sqrt(list(sizes.values())))
    assert plots.data_overlaps(axes[0], key.get_window_extent(r)) == 0
    fbox = leg.get_window_extent(r)
    assert [t.get_text() for t in leg.get_texts()] == ["npb", "synflow"]  # each label once
    assert not any(fbox.overlaps(ax.get_window_extent(r)) for ax in axes)
    plt.close(fig)


def test_one_colour_per_method_and_variants_share_it(monkeypatch):
    from pai.compendium import variants

    monkeypatch.setattr(variants, "_VARIANTS", [])  # this test's registrations stay in this test
    register_variant("synflow", "synflow (exact count)", options={"exact_count": True})
    a, b = plots.style_of("synflow"), plots.style_of("synflow (exact count)")
    assert a["color"] == b["color"] == plots.PALETTE["synflow"]
    assert a["linestyle"] != b["linestyle"] and a["marker"] != b["marker"] and a["hatch"] != b["hatch"]
    assert plots.color("phew (graph walk)") == plots.color("phew")  # unregistered suffix: still the base
    assert plots.color("some-new-method") == plots.color("some-new-method")  # stable, not hash-salted
    fig, ax = plt.subplots()
    rows = [{"label": lab, "density": d, "acc": acc} for lab, off in [("synflow", 0), ("synflow (exact count)", .1)]
            for d, acc in [(0.01, 0.5 + off), (0.1, 0.8 + off)]]
    plots.density_curves(ax, rows, y="acc", by="label")
    assert [ln.get_label() for ln in ax.lines] == ["synflow", "synflow (exact count)"]
    assert ax.lines[0].get_color() == ax.lines[1].get_color() and ax.lines[0].get_linestyle() == "-"
    assert ax.lines[1].get_linestyle() == "--"
    plt.close(fig)


def test_integer_epoch_ticks():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [0.5, 0.4, 0.3])
    plots.integer_ticks(ax)
    _drawn(fig)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    plt.close(fig)


def test_tick_labels_that_would_overprint_are_blanked():
    # the expander sweep's MLP levels: 0.00783 and 0.0108 sit closer on a log axis than their labels are wide
    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.set_xscale("log")
    ax.plot([0.0078, 0.03], [0, 1])
    ticks = [0.00783, 0.0108, 0.0307]
    ax.set_xticks(ticks, ["0.00783", "0.0108", "0.0307"])
    r = _drawn(fig)
    boxes = [t.get_window_extent(r) for t in ax.get_xticklabels()]
    assert boxes[0].x1 > boxes[1].x0  # they overprint as set
    assert plots.thin_tick_labels(fig) == 1
    r = _drawn(fig)
    shown = [(t.get_text(), t.get_window_extent(r)) for t in ax.get_xticklabels() if t.get_text()]
    assert [s for s, _ in shown] == ["0.00783", "0.0307"] and list(ax.get_xticks()) == ticks
    assert all(a.x1 < b.x0 for (_, a), (_, b) in zip(shown, shown[1:]))
    assert plots.thin_tick_labels(fig) == 0  # nothing left to blank
    plt.close(fig)


def test_density_curves_average_the_seeds_of_one_level():
    # a Bernoulli mask keeps a different density in every seed: one point per target, at the mean kept density
    rows = [{"method": "random-graph", "target_density": t, "density": t * f, "acc": a}
            for t, fs, accs in [(0.02, (0.9, 1.0, 1.1), (0.1, 0.6, 0.5)), (0.05, (0.98, 1.0, 1.02), (0.8, 0.7, 0.9))]
            for f, a in zip(fs, accs)]
    fig, ax = plt.subplots()
    plots.density_curves(ax, rows, y="acc")
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0.02, 0.05])
    np.testing.assert_allclose(line.get_ydata(), [0.4, 0.8])
    plt.close(fig)


def test_error_bars_of_equal_seeds_do_not_go_negative():
    # three seeds with the same node count (every node alive): their float mean sits one rounding step
    # below their min, which made matplotlib refuse the node-path figure on the cpu profile
    import pandas as pd

    from pai.compendium.stages.node_path import draw_paths_vs_nodes

    a = float(np.log(355.0))
    assert pd.Series([a] * 3).mean() < a  # the rounding this guards against
    geo = pd.DataFrame([{"label": lab, "target_density": d, "seed": s, "log10_paths": 10 * d + s / 100,
                         "ln_effective_nodes": a if d > 0.05 else 4.0 + s / 10}
                        for lab in ("npb", "synflow") for d in (0.01, 0.1, 0.3) for s in range(3)])
    fig, ax = plt.subplots()
    numbers = draw_paths_vs_nodes(ax, geo, ["npb", "synflow"])
    assert len(numbers) == 6
    lo, hi = plots.error_span([a, 1.0], [a, 0.5], [a, 2.0])
    assert (lo >= 0).all() and (hi >= 0).all() and hi[1] == 1.0 and lo[1] == 0.5
    plt.close(fig)


def _pdf_font_subtypes(data: bytes) -> set:
    """The /Subtype of every /Type /Font dictionary in a PDF (matplotlib writes font objects uncompressed)."""
    import re

    return {m.group(1).decode() for m in re.finditer(rb"/Type\s*/Font\b[^>]*?/Subtype\s*/(\w+)", data)} | \
        {m.group(1).decode() for m in re.finditer(rb"/Subtype\s*/(\w+)[^>]*?/Type\s*/Font\b", data)}


def test_saved_pdf_embeds_truetype_not_type3_fonts(tmp_path):
    """Publishers' PDF checks refuse Type 3 fonts (matplotlib's default): the saved PDF embeds TrueType,
    even when the caller never ran ``plots.style()``."""
    import shutil
    import subprocess

    with plt.rc_context({"pdf.fonttype": 3}):  # matplotlib's own default
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([1, 2, 3], [3, 1, 2], label="ρ, λ, σ₁")
        ax.set_xlabel("density (fraction of weights kept)")
        ax.legend()
        plots.caption(fig, "fashion-mnist; lenet-300-100; 6 epochs; seeds 0, 1, 2.")
        png, pdf = plots.save(fig, tmp_path / "fonts")
    plt.close(fig)
    assert png.stat().st_size > 1000
    subtypes = _pdf_font_subtypes(pdf.read_bytes())
    # TrueType, or its CID form for glyphs beyond Latin-1 (Type0 wrapping CIDFontType2: TrueType outlines)
    assert subtypes and "Type3" not in subtypes and subtypes <= {"TrueType", "Type0", "CIDFontType2"}, subtypes
    if shutil.which("pdffonts"):  # poppler's own reading of the font table, where installed
        listing = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
        rows = listing.splitlines()[2:]
        assert rows and all("TrueType" in r and "Type 3" not in r for r in rows), listing  # "CID TrueType" too


def test_backend_is_agg_in_scripts_and_the_kernels_own_in_jupyter():
    """A script without a display gets Agg; a Jupyter kernel (ipykernel sets MPLBACKEND to the inline
    backend) keeps it, so ``plt.show()`` draws the figure into the notebook; a process the kernel
    started, inheriting the variable outside a kernel, gets Agg."""
    import os
    import subprocess
    import sys

    code = "import pai.compendium.plots, matplotlib; print(matplotlib.get_backend())"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    script = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert script.stdout.strip().lower() == "agg"
    inline = "module://matplotlib_inline.backend_inline"
    kernel = subprocess.run([sys.executable, "-c", "import ipykernel; " + code], env={**env, "MPLBACKEND": inline},
                            capture_output=True, text=True, check=True)
    assert kernel.stdout.strip() == inline
    # a worker a kernel started inherits MPLBACKEND but is no kernel: files only
    worker = subprocess.run([sys.executable, "-c", code], env={**env, "MPLBACKEND": inline}, capture_output=True,
                            text=True, check=True)
    assert worker.stdout.strip().lower() == "agg"
