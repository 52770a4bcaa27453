"""DVC experiments keep every stage's metrics: ``runs/<stage>/metrics.json`` is ``cache: false``, so git
must hold it (``.gitignore`` ignores the rest of ``runs/``) for ``dvc exp run`` to commit it with the
experiment, and ``dvc exp show`` / ``dvc metrics diff`` to read it back.

One test runs a real ``dvc exp run -S`` on a tiny stage built like ours (the same ``foreach`` template,
params file, outs and metrics entries, and this repository's ``.gitignore``) in a temporary git repo.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).with_name("dvc")
STAGES = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["notebook"]["foreach"])


def test_stage_metrics_are_kept_by_git_and_outputs_are_not():
    for stage in STAGES:
        entry = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["notebook"]["do"]["metrics"][0]
        assert entry == {"runs/${key}/metrics.json": {"cache": False}}
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"runs/{stage}/metrics.json"], cwd=ROOT)
        assert ignored.returncode == 1, f"runs/{stage}/metrics.json is git-ignored: dvc exp would lose it"
        for out in ("results.csv", "notebook.ipynb", "runs/abc/run.json"):
            assert subprocess.run(["git", "check-ignore", "-q", "--no-index", f"runs/{stage}/{out}"],
                                  cwd=ROOT).returncode == 0, out


STAGE = """\
stages:
  notebook:
    foreach:
      tiny: {notebook: tiny}
    do:
      cmd: python write.py ${key}
      params:
        - params/${key}.yaml:
      outs:
        - runs/${key}/results.csv
      metrics:
        - runs/${key}/metrics.json:
            cache: false
"""
WRITER = """\
import sys, yaml
from pai.utils.io import save_json, save_text
key = sys.argv[1]
lr = yaml.safe_load(open(f"params/{key}.yaml"))["lr"]
save_json({"lenet5/random/0.1/0": {"final_test_acc": lr * 2}}, f"runs/{key}/metrics.json")
save_text(f"final_test_acc\\n{lr * 2}\\n", f"runs/{key}/results.csv")
"""


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, (cmd, out.stdout, out.stderr)
    return out.stdout


@pytest.mark.skipif(not DVC.exists() or shutil.which("git") is None, reason="needs dvc and git")
def test_dvc_exp_run_keeps_metrics_and_params(tmp_path):
    import os

    repo = tmp_path / "repo"
    (repo / "params").mkdir(parents=True)
    shutil.copyfile(ROOT / ".gitignore", repo / ".gitignore")
    (repo / "dvc.yaml").write_text(STAGE)
    (repo / "write.py").write_text(WRITER)
    (repo / "params" / "tiny.yaml").write_text("lr: 0.1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    _run(["git", "init", "-q"], repo, env)
    _run([str(DVC), "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "base"], repo, env)
    _run([str(DVC), "exp", "run", "-q", "-S", "params/tiny.yaml:lr=0.2"], repo, env)
    shown = json.loads(_run([str(DVC), "exp", "show", "--json", "--no-pager"], repo, env))
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    assert exps, shown
    data = exps[0]["revs"][0]["data"]
    assert data["params"]["params/tiny.yaml"]["data"] == {"lr": 0.2}
    assert data["metrics"]["runs/tiny/metrics.json"]["data"] == {"lenet5/random/0.1/0": {"final_test_acc": 0.4}}
    name = exps[0]["revs"][0]["name"] or exps[0]["revs"][0]["rev"]
    diff = json.loads(_run([str(DVC), "metrics", "diff", "--json", "HEAD", name], repo, env))
    assert diff["runs/tiny/metrics.json"]["lenet5/random/0.1/0.final_test_acc"]["new"] == 0.4
