"""pai/compendium/published.csv: schema, density conversions, spot values quoted from the sources, internal
consistency of the transcription (RReg's printed relative gains and averages), and paper_vs_ours."""
import math
import re

import pandas as pd
import pytest

from pai.data import dataset_names
from pai.models import model_names
from pai.compendium.published import OURS_METRIC, WORKS, format_table, load_published, paper_vs_ours
from pai import pruners

COLUMNS = ["work", "table_or_figure", "method", "paper_method", "model", "paper_model", "dataset", "density",
           "degree", "original_sparsity", "density_basis", "metric", "value", "spread", "spread_kind", "n_seeds",
           "derived", "source", "via", "note"]


@pytest.fixture(scope="module")
def table():
    return load_published()


def _one(table, **where):
    sel = table
    for k, v in where.items():
        if v is None:
            sel = sel[sel[k].isna()]
        elif k == "density":  # stored to 6 significant digits
            sel = sel[(sel[k] - v).abs() <= 1e-5 * v]
        else:
            sel = sel[sel[k] == v]
    assert len(sel) == 1, (where, len(sel))
    return sel.iloc[0]


def test_schema(table):
    assert list(table.columns) == COLUMNS
    assert set(table.work) == set(WORKS)
    assert table.value.between(0, 100).all() and table.value.notna().all()
    assert set(table.metric) <= set(OURS_METRIC) and set(table.density_basis) <= {"prunable", "all-params"}
    # iter-snip has no pai pruner; rigl and itop are dynamic sparse training (pai: the dst regime, method itop)
    assert set(table.method) <= set(pruners.names()) | {"dense", "iter-snip", "rigl", "itop"}
    assert set(table.model) <= set(model_names()) | {"wrn-18", "vgg16-tv"}  # two nets pai does not build
    assert set(table.dataset) <= set(dataset_names())
    dens = table.density.dropna()
    assert dens.between(0, 1, inclusive="right").all()
    # only the equal-parameter RReg rows lack both a density and a degree
    assert (table[table.density.isna()].table_or_figure.str.startswith("equal-parameter")).all()
    assert (table[table.method == "dense"].density.fillna(1) == 1).all()
    key = ["work", "table_or_figure", "method", "model", "dataset", "density", "degree", "metric"]
    assert not table.duplicated(key).any()
    assert (table.source != "").all()
    assert table.derived.sum() == 2  # RReg Tiny-ImageNet WRN-40-14, Random and RReg


def test_sources_are_public():
    """Every row names its public origin; none cites a document the repository does not hold (a working
    note, a shared folder)."""
    table = load_published()
    for column in ("source", "via"):
        text = table[column].str.lower()
        assert not text.str.contains(r"research brief|shared/|\.md\b|seeds/").any(), column
    repo_rows = table[table.work.isin(["synflow", "ramanujan", "mge-snn"])]
    assert repo_rows.source.str.match(r"[\w.-]+/[\w.-]+, \S").all()  # "owner/name, path"


def test_mge_snn_resnet20_cifar10(table):
    """eliacunegatti/mge-snn, unrolled.csv: ResNet-20 / CIFAR-10, mean of 3 seeds."""
    mge = table[table.work == "mge-snn"]
    assert len(mge) == 18 and set(mge.model) == {"resnet20"} and set(mge.dataset) == {"cifar10"}
    assert sorted(set(mge.density.round(6))) == [0.02, 0.05, 0.1] and (mge.n_seeds == 3).all()
    at98 = {r.method: r.value for r in mge[mge.density.round(6) == 0.02].itertuples()}
    assert at98 == {"snip": 75.94, "grasp": 77.13, "synflow": 76.22, "random-erk": 77.44, "rigl": 81.94,
                    "itop": 81.26}
    assert mge.source.str.startswith("eliacunegatti/mge-snn, graph_data/graph_metrics/unrolled/unrolled.csv").all()


def test_density_is_converted_from_the_printed_quantity(table):
    for _, row in table.iterrows():
        text = row.original_sparsity
        if m := re.match(r"sparsity ([\d.]+)%", text):
            assert row.density == pytest.approx(1 - float(m[1]) / 100, abs=5e-4), text
        if m := re.search(r"compression 10\^([\d.]+)", text):
            assert row.density == pytest.approx(10 ** -float(m[1]), rel=1e-5), text
        if m := re.match(r"PP ([\d.]+)%", text):
            assert row.density == pytest.approx(float(m[1]) / 100, rel=1e-9), text
        if m := re.match(r"density ([\d.]+)", text):
            assert row.density == float(m[1])


@pytest.mark.parametrize("where,value", [
    # RReg poster, CIFAR table (PP 0.79 at d = 3, 13.79 at d = 60)
    (dict(work="rreg", method="rreg", dataset="cifar10", degree=3), 87.02),
    (dict(work="rreg", method="random-graph", dataset="cifar10", degree=3), 85.81),
    (dict(work="rreg", method="xnet", dataset="cifar100", degree=3), 56.69),
    (dict(work="rreg", method="random-graph", dataset="cifar100", degree=60), 72.97),
    (dict(work="rreg", method="dense", dataset="cifar10", model="vgg16"), 94.24),
    # RReg poster, Tiny-ImageNet table
    (dict(work="rreg", method="rreg", model="mobilenet-v2", degree=3), 34.26),
    (dict(work="rreg", method="rreg", model="resnet152-tv", degree=3), 51.21),
    (dict(work="rreg", method="xnet", model="wrn-40-14"), 40.21),
    (dict(work="rreg", method="dense", model="resnet101-tv", table_or_figure="Tiny-ImageNet table"), 60.13),
    # NPB main figure, ResNet-20 / CIFAR-10
    (dict(work="npb", method="npb", model="resnet20", density=0.1), 87.61),
    (dict(work="npb", method="npb", model="resnet20", density=0.01), 70.70),
    (dict(work="npb", method="phew", model="resnet20", density=10 ** -1.5), 81.05),
    (dict(work="npb", method="random-erk", model="vgg19", density=10 ** -0.5), 70.92),
    # ICLR'23 official logs
    (dict(work="ramanujan", method="snip", model="resnet34-tv", dataset="cifar10"), 86.02),
    (dict(work="ramanujan", method="random", model="resnet34-tv", dataset="cifar100"), 41.28),
])
def test_spot_values(table, where, value):
    assert _one(table, **where).value == value


def test_synflow_vgg16_cifar10_curve(table):
    curve = table[(table.work == "synflow") & (table.method == "synflow") & (table.model == "vgg16")
                  & (table.dataset == "cifar10")].sort_values("density", ascending=False)
    assert curve.value.tolist() == [93.46, 93.49, 93.54, 93.44, 93.26, 92.74, 92.12, 91.21, 90.08, 88.51, 86.81,
                                    83.80, 80.39]
    assert curve.density.tolist() == pytest.approx([10 ** (-k / 4) for k in range(13)])
    assert (curve.metric == "best_test_acc").all()
    at99 = _one(curve, density=0.01)
    assert (at99.value, at99.spread) == (90.08, 0.08)
    assert _one(table, work="synflow", method="grasp", model="vgg16", dataset="cifar10", density=0.001).value == 70.93
    assert len(table[(table.work == "synflow") & (table.method == "synflow")]) == 12 * 13


# Printed relative gains vs Random, Delta_R = 100 (acc - acc_random) / acc_random, for X-Net and RReg:
# (degree, dataset) -> (X-Net, RReg).  They check both accuracies of each pair at once.
RREG_DELTA_R = {
    (60, "cifar10"): (-0.04, +0.00), (30, "cifar10"): (+0.15, +0.58), (15, "cifar10"): (+0.09, +0.22),
    (3, "cifar10"): (+0.29, +1.41), (60, "cifar100"): (-0.33, -0.34), (30, "cifar100"): (-0.01, +0.49),
    (15, "cifar100"): (+0.35, +1.71), (3, "cifar100"): (-0.51, +4.62),
}


def test_rreg_cifar_accuracies_agree_with_the_printed_gains(table):
    rreg = table[(table.work == "rreg") & (table.table_or_figure == "CIFAR-10/100 table")]
    for (degree, dataset), printed in RREG_DELTA_R.items():
        acc = {m: _one(rreg, method=m, degree=degree, dataset=dataset).value for m in ("random-graph", "xnet", "rreg")}
        for method, gain in zip(("xnet", "rreg"), printed):
            assert 100 * (acc[method] - acc["random-graph"]) / acc["random-graph"] == pytest.approx(gain, abs=0.011)


def test_rreg_tiny_imagenet_averages(table):
    tiny = table[(table.work == "rreg") & (table.table_or_figure == "Tiny-ImageNet table")]
    for method, printed in (("dense", 53.27), ("random-graph", 39.63), ("xnet", 39.16), ("rreg", 41.94)):
        values = tiny[tiny.method == method].value
        assert len(values) == 9 and values.mean() == pytest.approx(printed, abs=0.005)
    assert load_published("rreg", include_derived=False).pipe(lambda t: len(t)) == len(table[table.work == "rreg"]) - 2


def test_filters():
    assert len(load_published("npb")) == 72
    assert set(load_published(["npb", "synflow"], dataset="tiny-imagenet").work) == {"npb", "synflow"}
    assert set(load_published(method="rreg").work) == {"rreg"}
    with pytest.raises(ValueError, match="unknown work.*rreg"):
        load_published("rregg")


def _ours(rows):
    base = {"target_density": 1.0, "density": 1.0, "best_test_acc": math.nan, "opt_degree": math.nan}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_paper_vs_ours_matches_on_degree_and_density():
    ours = _ours(
        [dict(model="vgg16", dataset="cifar10", method="rreg", opt_degree=3, seed=s, final_test_acc=a)
         for s, a in enumerate((0.87, 0.88, 0.86))]
        + [dict(model="resnet20", dataset="cifar10", method="npb", target_density=d, density=d * 0.999, seed=s,
                final_test_acc=0.8) for s in (0, 1) for d in (0.3162, 0.1, 0.0316, 0.05)]
        + [dict(model="vgg16", dataset="cifar10", method="synflow", target_density=0.01, seed=0, final_test_acc=0.5,
                best_test_acc=0.9)])
    out = paper_vs_ours(ours)
    rreg = _one(out, work="rreg", method="rreg", degree=3, dataset="cifar10")
    assert (rreg.paper, rreg.n_seeds) == (87.02, 3)
    assert rreg.ours_mean == pytest.approx(87.0) and rreg.ours_spread == pytest.approx(1.0)
    assert rreg.delta == pytest.approx(-0.02) and rreg.ours == "87.00 ± 1.00"
    npb = out[out.work == "npb"].sort_values("density")
    assert npb.density.tolist() == pytest.approx([10 ** -1.5, 0.1, 10 ** -0.5])  # 0.05 matches no paper point
    assert (npb.n_seeds == 2).all() and npb.paper.tolist() == [80.55, 87.61, 90.69]
    sf = _one(out, work="synflow", method="synflow", density=0.01)
    assert (sf.ours_metric, sf.ours_mean, sf.n_seeds, sf.ours) == ("best_test_acc", 90.0, 1, "90.00")
    assert set(out.work) == {"rreg", "npb", "synflow"}
    text = format_table(out)
    assert "87.00 ± 1.00" in text and "-0.02" in text


def test_paper_vs_ours_tolerance_unmatched_and_ambiguity():
    near = _ours([dict(model="resnet20", dataset="cifar10", method="npb", target_density=0.1 * 1.019, seed=0,
                       final_test_acc=0.8)])
    far = near.assign(target_density=0.1 * 1.03)
    assert len(paper_vs_ours(near, work="npb")) == 1 and len(paper_vs_ours(far, work="npb")) == 0
    assert len(paper_vs_ours(far, work="npb", rtol=0.05)) == 1
    every = paper_vs_ours(near, work="npb", keep_unmatched=True)
    assert len(every) == 72 and (every.ours == "not run").sum() == 71 and (every.n_seeds == 0).sum() == 71
    twice = pd.concat([near, near.assign(opt_allocation="erk")])
    with pytest.raises(ValueError, match="ambiguous.*filter our table"):
        paper_vs_ours(twice, work="npb")
    # a degree-less run never matches a degree row, a degree run never a density row
    deg = _ours([dict(model="resnet20", dataset="cifar10", method="npb", target_density=0.1, opt_degree=3, seed=0,
                      final_test_acc=0.8)])
    assert len(paper_vs_ours(deg, work="npb")) == 0


def test_paper_table_is_one_function_for_every_stage():
    """pai.compendium.published.paper_table: faithful static runs only (a variant's label differs from its method),
    the excluded methods left out, and the published rows we did not run kept only on request."""
    from pai.compendium.published import paper_table
    from pai.compendium.stages import full_spectrum, node_path, phew

    rows = [dict(model="resnet20", dataset="cifar10", method="npb", label="npb", target_density=0.1, seed=s,
                 final_test_acc=0.8, regime="static") for s in (0, 1)]
    rows += [dict(model="resnet20", dataset="cifar10", method="npb", label="npb (paper normaliser)",
                  target_density=0.1, seed=0, final_test_acc=0.1, regime="static"),
             dict(model="resnet20", dataset="cifar10", method="npb", label="npb", target_density=0.1, seed=2,
                  final_test_acc=0.1, regime="dst")]
    ours = _ours(rows)
    out = paper_table(ours, "npb")
    row = _one(out, method="npb", model="resnet20", density=0.1)
    assert (row.n_seeds, row.ours_mean) == (2, pytest.approx(80.0))  # neither the variant nor the dst run
    assert len(paper_table(ours, "npb", exclude=["npb"])) == 0
    assert len(paper_table(ours, "npb", keep_unmatched=True)) == len(load_published("npb", dataset="cifar10"))
    for stage_table in (phew.paper_table, node_path.paper_table):
        assert stage_table(ours, "npb").equals(out)
    assert full_spectrum.paper_table(ours, "npb", "cifar10").equals(paper_table(ours, "npb", keep_unmatched=True))
