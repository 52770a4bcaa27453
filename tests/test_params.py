"""Spec grids: the same specs (ids, JSON, option order) as the comprehensions the notebooks wrote before."""
import pytest

from pai.compendium.params import StageParams, find, grid, over, unique
from pai.compendium.runs import make_spec, run_id

P = StageParams({"dataset": "fashion-mnist", "models": ["lenet-300-100", "lenet5"], "seeds": [0, 1],
                 "epochs": {"lenet-300-100": 5, "lenet5": 3}, "train_subset": {"lenet-300-100": None, "lenet5": 15000},
                 "lr": 0.05, "schedule": "cosine"})


def _same(a, b):
    assert [run_id(s) for s in a] == [run_id(s) for s in b]
    assert [list(s.prune.options) for s in a] == [list(s.prune.options) for s in b]  # column order of tables


def test_grid_is_the_nested_loop_of_make_spec():
    old = [make_spec(model=m, dataset="fashion-mnist", method=meth, density=d, prune_seed=s, seed=s,
                     prune_options={"allocation": "uniform"}, **P.train(m))
           for m in P.models for meth in ("xnet", "rreg") for d in (0.2, 0.05) for s in (0, 1)]
    _same(P.grid(methods=["xnet", "rreg"], densities=[0.2, 0.05], options={"allocation": "uniform"}), old)
    dense = [make_spec(model=m, dataset="fashion-mnist", method="dense", density=1.0, prune_seed=s, seed=s,
                       **P.train(m)) for m in P.models for s in (0, 1)]
    _same(P.grid(methods=["dense"]), dense)


def test_degrees_replace_densities():
    old = [make_spec(model="lenet5", dataset="fashion-mnist", method="rreg", density=1.0, prune_seed=s, seed=s,
                     prune_options={"degree": d}, **P.train("lenet5")) for d in (3, 15) for s in (0, 1)]
    _same(P.grid(models=["lenet5"], methods=["rreg"], degrees=[3, 15]), old)


def test_option_axes_and_method_options():
    old = [make_spec(model="lenet5", dataset="fashion-mnist", method=k, density=0.01, prune_seed=s, seed=s,
                     prune_options={"generator": g, "candidates": 20, **({"pretrain_iterations": 200} if k == "pegs"
                                                                         else {})}, **P.train("lenet5"))
           for k in ("pags", "pegs") for g in ("snip", "grasp") for s in (0, 1)]
    new = P.grid(models=["lenet5"], methods=["pags", "pegs"], densities=[0.01],
                 options={"generator": over(["snip", "grasp"]), "candidates": 20},
                 method_options={"pegs": {"pretrain_iterations": 200}})
    _same(new, old)
    listed = grid(dataset="digits", models=["lenet5"], seeds=[0], methods=["x"], options={"sizes": [1, 2]})
    assert len(listed) == 1 and listed[0].prune.options == {"sizes": [1, 2]}  # a plain list is one value


def test_regime_grid_and_unique():
    itop = P.grid(models=["lenet5"], methods=["random-erk"], densities=[0.1], regime="dst",
                  regime_options={"update_interval": 100})
    assert all(s.regime == "dst" and s.regime_options == {"update_interval": 100} for s in itop)
    a = P.grid(models=["lenet5"], methods=["snip"], densities=[0.1, 0.01])
    b = P.grid(models=["lenet5"], methods=["snip"], densities=[0.01])
    assert [run_id(s) for s in unique(a, b)] == [run_id(s) for s in a]


def test_find_picks_one_spec():
    specs = P.grid(methods=["xnet", "rreg"], degrees=[3, 15]) + P.grid(methods=["snip"], densities=[0.05])
    assert find(specs, model="lenet5", method="rreg", seed=1, degree=15).prune.options == {"degree": 15}
    assert find(specs, model="lenet5", method="snip", seed=0, density=0.05 + 1e-12).prune.density == 0.05
    with pytest.raises(LookupError, match="2 specs"):
        find(specs, model="lenet5", method="rreg", degree=3)


# ----------------------------------------------------------------------------- every value checked up front

from pathlib import Path  # noqa: E402

from pai.compendium import notebook as nb  # noqa: E402
from pai.utils.errors import UserError  # noqa: E402
from pai.compendium.params import RULES, check_params  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _schema(name):
    return nb.parameter_schema(next(NOTEBOOKS.glob(f"{name}*.py")))


def test_every_notebook_parameter_has_a_rule():
    for path in sorted(NOTEBOOKS.glob("[0-9]*.py")):
        schema = nb.parameter_schema(path)
        assert set(schema) <= set(RULES), (path.name, sorted(set(schema) - set(RULES)))
        check_params(schema, schema)  # the notebook's own defaults pass


@pytest.mark.parametrize("notebook,params,needle", [
    ("03", {"densities": [-0.1]}, "densities item 0: must be a number in (0, 1]"),
    ("01", {"densities": {"vgg11-w0.25": [0.05, 1.5]}}, "densities [vgg11-w0.25]: item 1"),
    ("01", {"dense_first": "no"}, "dense_first must be true or false"),
    ("01", {"workers": 0}, "workers must be an integer >= 1"),
    ("01", {"methods": ["rreg", "rregg"]}, "unknown pruner 'rregg'"),
    ("01", {"stem_check": ["vgg"]}, "unknown model 'vgg'"),
    ("01", {"seeds": [0, 0]}, "seeds lists a value twice"),
    ("01", {"allocation": "erk2"}, "unknown allocation 'erk2'"),
    ("01", {"published_work": "rregg"}, "unknown published work"),
    ("01", {"epochs": {"lenet-300-100": 0}}, "epochs [lenet-300-100]: must be a positive int"),
    ("02", {"itop_update_interval": 0}, "itop_update_interval must be an integer >= 1"),
    ("02", {"itop_drop_fraction": 1.5}, "itop_drop_fraction must be a number in [0, 1]"),
    ("02", {"lth_rate": 1.0}, "lth_rate must be a number in (0, 1)"),
    ("02", {"pags_candidates": 0}, "pags_candidates must be an integer >= 1"),
    ("02", {"itop_generator": "snipp"}, "unknown pruner 'snipp'"),
    ("02", {"executor": "slurm"}, "unknown executor 'slurm'"),
    ("04", {"method_options": {"npb": {"alphaa": 0.1}}}, "has no option 'alphaa'"),
    ("04", {"geometry_densities": [0.3, 0.0]}, "geometry_densities item 1"),
])
def test_a_bad_parameter_value_is_refused_before_the_kernel(notebook, params, needle):
    with pytest.raises(UserError) as e:
        check_params(params, _schema(notebook), where="params/x.yaml")
    assert needle in str(e.value) and "params/x.yaml" in str(e.value)


def test_a_density_written_as_a_string_is_one_run_with_one_id():
    schema = _schema("01")
    as_text = check_params({"densities": {"lenet-300-100": ["0.1"]}, "spectral_density": {"lenet-300-100": "0.1"}},
                           schema)
    assert as_text == {"densities": {"lenet-300-100": [0.1]}, "spectral_density": {"lenet-300-100": 0.1}}
    text = grid(dataset="digits", models=["lenet-300-100"], seeds=[0], methods=["random"],
                densities=as_text["densities"]["lenet-300-100"])
    number = grid(dataset="digits", models=["lenet-300-100"], seeds=[0], methods=["random"], densities=[0.1])
    assert [run_id(s) for s in text] == [run_id(s) for s in number]
