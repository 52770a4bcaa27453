"""Fixtures shared by more than one test file."""
import pytest


@pytest.fixture(scope="session")
def mask_file(tmp_path_factory):
    """A random 30% mask of lenet-300-100 written by ``python -m pai prune`` (the digits data, no download)."""
    from pai.pruners import cli as prune_cli

    path = tmp_path_factory.mktemp("mask") / "mask.pt"
    assert prune_cli.main(["--model", "lenet-300-100", "--method", "random", "--density", "0.3", "--out", str(path),
                           "--dataset", "digits", "--quiet"]) == 0
    return path
