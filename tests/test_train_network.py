"""``train(model=...)`` records the network it trained, and a run directory is never reused as, or
rebuilt into, another network."""
import pytest
import torch
from torch import nn

from pai.train.checkpoint import network_record
from pai.train.config import TrainConfig
from pai.data import Dataset
from pai.utils.io import load_json
from pai.models import create_model
from pai.train.rundir import RunDir
from pai.train import train


def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 1, 28, 28, generator=g)
    y = torch.arange(24) % 10
    return Dataset.from_tensors(x, y, x[:8], y[:8])


def own_net(width=16):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, 10))


CFG = TrainConfig(epochs=1, batch_size=8, device="cpu", threads=1)  # config model: lenet-300-100


def test_a_given_network_is_recorded_and_never_rebuilt_as_the_config_model(tmp_path):
    net = own_net()
    r = train(CFG, model=net, data=tiny_data(), run_dir=tmp_path)
    rec = load_json(RunDir(tmp_path).result)["meta"]["network"]
    assert rec["class"] == "torch.nn.modules.container.Sequential" and rec["source"] == "given"
    assert len(rec["structure"]) == 16
    # reused with no model: the record names another network than the config's lenet-300-100
    with pytest.raises(ValueError, match=r"holds a run of torch\.nn\.modules\.container\.Sequential .*not of config "
                                         r"model 'lenet-300-100'.*pass the network it trained as model="):
        train(CFG, data=tiny_data(), run_dir=tmp_path)
    # reused with another architecture: named as such, not only "fingerprints differ"
    with pytest.raises(ValueError, match=r"not of the model= network, a torch\.nn\.modules\.container\.Sequential"):
        train(CFG, model=own_net(width=8), data=tiny_data(), run_dir=tmp_path)
    # reused with the network it trained: the trained weights come back into it
    again = own_net()
    reused = train(CFG, model=again, data=tiny_data(), run_dir=tmp_path)
    assert reused.model is again and reused.history == r.history
    assert torch.equal(again[1].weight, r.model[1].weight)


def test_a_config_built_network_is_recorded_with_its_structure(tmp_path):
    train(CFG, data=tiny_data(), run_dir=tmp_path)
    rec = load_json(RunDir(tmp_path).result)["meta"]["network"]
    assert rec["source"] == "config" and rec["class"] == "pai.models.mlp.MLP"
    assert rec["structure"] == network_record(create_model("lenet-300-100", 10, 1, 28), "config")["structure"]
    assert train(CFG, data=tiny_data(), run_dir=tmp_path).final_test_acc is not None  # reused as it is
