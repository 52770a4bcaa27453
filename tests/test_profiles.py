"""Parameter profiles: switching copies a profile's files over the live ones; a focused profile (one
stage's file) reproduces only its notebook."""
import shutil
from pathlib import Path

import pytest

from pai.compendium import profiles
from pai.utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(ROOT / "params", tmp_path / "params")
    return tmp_path


def test_every_profile_sets_known_stages(tree):
    live = {p.stem for p in (tree / "params").glob("*.yaml")}
    for name in profiles.profiles(tree):
        assert set(profiles.stages(name, tree)) <= live, name


def test_use_copies_and_a_full_profile_reproduces_everything(tree):
    profiles.use("paper", tree)
    assert profiles.current(tree) == "paper"
    assert profiles.repro_targets("paper", tree) == []
    profiles.use("cpu", tree)
    assert profiles.current(tree) == "cpu"


def test_a_focused_profile_reproduces_its_notebook_only(tree):
    focused = tree / "params" / "profiles" / "paper-x-cifar10"
    focused.mkdir()
    shutil.copyfile(tree / "params" / "profiles" / "paper" / "node_path_balance.yaml", focused / "node_path_balance.yaml")
    assert profiles.repro_targets("paper-x-cifar10", tree) == ["--single-item", "notebook@node_path_balance"]
    with pytest.raises(UserError, match="valid"):
        profiles.stages("nope", tree)
