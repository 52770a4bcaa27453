"""``python -m pai metrics``: table + summary for a saved mask, clear errors for a wrong one."""
from __future__ import annotations

import json
import math

import pytest
import torch

from pai.masks import prunable_parameters, save_mask
from pai.metrics import layer_metrics, network_metrics
from pai.metrics.cli import main
from pai.models import create_model

torch.set_num_threads(1)


@pytest.fixture()
def lenet_mask(tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    g = torch.Generator().manual_seed(0)
    mask = {k: torch.rand(p.shape, generator=g) < 0.3 for k, p in prunable_parameters(model).items()}
    path = tmp_path / "mask.pt"
    save_mask(mask, path)
    return path, model, mask


def test_cli_prints_table_and_summary(lenet_mask, tmp_path, capsys):
    path, model, mask = lenet_mask
    out_json = tmp_path / "m.json"
    rc = main(["--mask", str(path), "--model", "lenet5", "--dataset", "fashion-mnist", "--samples", "100",
               "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 0
    for name in ("conv1.weight", "fc1.weight", "fc.weight"):
        assert name in out
    assert "log10_paths" in out and "delta_r_norm" in out
    data = json.loads(out_json.read_text())
    assert len(data["layers"]) == 5 and data["summary"]["kept"] == sum(int(m.sum()) for m in mask.values())
    # same numbers as the library with the same seeded init
    expect = network_metrics(model, mask, include=["paths"])
    assert data["summary"]["log10_paths"] == pytest.approx(expect["log10_paths"])


def test_cli_explicit_shape_and_wrong_model(lenet_mask, capsys):
    path, _, _ = lenet_mask
    assert main(["--mask", str(path), "--model", "lenet5", "--in-channels", "1", "--image-size", "28",
                 "--num-classes", "10", "--include", "spectral"]) == 0
    capsys.readouterr()
    assert main(["--mask", str(path), "--model", "lenet-300-100", "--dataset", "mnist"]) == 2
    assert "hidden.0.weight" in capsys.readouterr().err
    assert main(["--mask", str(path), "--model", "lenet5", "--in-channels", "1"]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_layer_metrics_rows_and_robustness():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=3, image_size=8)
    params = prunable_parameters(model)
    mask = {k: torch.zeros(p.shape, dtype=torch.bool) for k, p in params.items()}  # all-zero mask: refused
    with pytest.raises(ValueError, match="degenerate: it keeps no weight at all"):
        layer_metrics(model, mask, expansion_samples=50)
    mask[list(mask)[-1]][0, 0] = True  # one weight in the classifier, every other layer empty
    rows = layer_metrics(model, mask, expansion_samples=50)
    assert len(rows) == len(params)
    assert all(r["kept"] == 0 and r["eff_weights"] == 0 and math.isnan(r["delta_r"]) for r in rows[:-1])
    assert all(r["fs_norm"] == 0.0 and r["sigma1"] == 0.0 for r in rows[:-1])
    assert rows[-1]["kept"] == 1 and rows[-1]["eff_weights"] == 0
    net = network_metrics(model, mask, expansion_samples=50, rows=rows)
    assert net["log10_paths"] == -math.inf and net["effective_nodes"] == 0 and math.isnan(net["delta_r_norm"])
    with pytest.raises(ValueError, match="metric group"):
        layer_metrics(model, mask, include=["spectrum"])
