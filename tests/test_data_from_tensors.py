"""``pai.data.Dataset.from_tensors``: a dataset of your own tensors, checked, and ``Dataset.coerce``."""
import numpy as np
import pytest
import torch

from pai.data import Dataset


def test_from_tensors_infers_or_takes_the_classes_and_keeps_the_tensors():
    x, y = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 2, 0, 1, 4])
    d = Dataset.from_tensors(x, y)
    assert d.num_classes == 5 and d.x_train is x and torch.equal(d.y_train, y)
    assert d.shape == (5, 3, 4) and d.input_shape == (3, 4, 4)
    assert d.x_test.shape == (0, 3, 4, 4) and d.y_test.shape == (0,)  # no test split: empty
    d = Dataset.from_tensors(x, y, x[:2], torch.tensor([7, 0]), num_classes=10, mean=(0.5,) * 3, std=(0.2,) * 3)
    assert d.num_classes == 10 and d.mean == (0.5, 0.5, 0.5) and len(d.y_test) == 2
    assert Dataset.from_tensors(x, y, x[:2], torch.tensor([7, 0])).num_classes == 8  # the test labels count
    flat = Dataset.from_tensors(np.zeros((4, 20), np.float32), np.arange(4))  # numpy arrays, non-image inputs
    assert flat.input_shape == (20,) and flat.in_channels is None and flat.image_size is None
    assert Dataset.from_tensors(torch.randn(2, 1, 3, 5), torch.tensor([0, 1])).image_size is None  # not square


@pytest.mark.parametrize("args, kwargs, match", [
    ((torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.arange(4)), {}, "x_train must be a float tensor"),
    ((torch.randn(4, 3), torch.arange(4.0)), {}, "y_train must be a 1-D integer tensor"),
    ((torch.randn(4, 3), torch.arange(3)), {}, "y_train has 3 labels for 4 inputs"),
    ((torch.randn(4, 3), torch.tensor([0, 1, -1, 2])), {}, "negative label"),
    ((torch.randn(4, 3), torch.arange(4)), {"num_classes": 3}, r"label 3 is outside \[0, 3\)"),
    ((torch.randn(4, 3), torch.arange(4), torch.randn(2, 3)), {}, "x_test and y_test together"),
    ((torch.randn(4, 3), torch.arange(4), torch.randn(2, 5), torch.arange(2)), {}, "x_test examples have shape"),
    ((torch.randn(0, 3), torch.arange(0)), {}, "no example"),
    (([[0.0]], torch.arange(1)), {}, "x_train must be a tensor"),
])
def test_from_tensors_refuses_what_is_not_what_it_claims(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Dataset.from_tensors(*args, **kwargs)


def test_coerce_reads_a_pair_and_a_loader_into_the_same_tensors():
    x, y = torch.randn(10, 2, 3, 3), torch.arange(10) % 3
    pair = Dataset.coerce((x, y))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=4)
    read = Dataset.coerce(loader)
    assert torch.equal(pair.x_train, read.x_train) and torch.equal(pair.y_train, read.y_train)
    assert pair.num_classes == read.num_classes == 3
    assert Dataset.coerce(pair) is pair


def test_train_refuses_data_that_is_not_a_dataset_naming_from_tensors():
    from pai.train import train

    x, y = torch.randn(8, 1, 28, 28), torch.arange(8) % 2
    with pytest.raises(TypeError, match=r"takes a pai.data.Dataset, got tuple.*Dataset.from_tensors"):
        train({"model": "lenet-300-100", "dataset": "fashion-mnist", "epochs": 1}, data=(x, y))
