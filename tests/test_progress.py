"""pai.utils.progress: a line per finished run with k/N, elapsed and an estimate that ignores cache hits."""
import io

import torch

from pai.utils.progress import Progress, progress_reporter


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_lines_count_elapsed_and_estimate():
    clock, out = Clock(), io.StringIO()
    p = Progress(5, "runs", stream=out, clock=clock)
    clock.t += 0.01  # a cache hit: back at once
    p.update()
    clock.t += 60  # two real runs of a minute each
    p.update()
    clock.t += 60
    p.update()
    clock.t += 30
    p.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0] == "runs 1/5 (1 cached) | elapsed 0s | time left unknown yet"
    assert lines[1] == "runs 2/5 (1 cached) | elapsed 1m00s | about 3m00s left"
    assert lines[3] == "runs 4/5 (1 cached) | elapsed 2m30s | about 50s left"  # 150 s over 3 real runs
    clock.t += 3600
    p.update()
    assert out.getvalue().splitlines()[-1] == "runs 5/5 (1 cached) | elapsed 1h02m30s | done"


def test_reporter_choice(capsys):
    quiet = progress_reporter(3, False)
    quiet.update()
    quiet.close()
    lines = progress_reporter(3, None, "sweep")  # pytest's stderr is no terminal: lines
    assert isinstance(lines, Progress)
    lines.update()
    assert capsys.readouterr().err.startswith("sweep 1/3")
    assert type(progress_reporter(3, True)).__name__ == "tqdm"


def test_local_executor_prints_a_line_per_run(tmp_path, capsys, monkeypatch):
    """The executor's hook: every finished run reports (run_one replaced by a stub)."""
    from pai.compendium import executors

    out = executors.local_executor(lambda spec: {"spec": spec}, [{"i": i} for i in range(3)], workers=1,
                                   desc="runs")
    assert [o["spec"]["i"] for o in out] == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" |")[0] for line in err] == ["runs 1/3 (1 cached)", "runs 2/3 (2 cached)",
                                                      "runs 3/3 (3 cached)"]


def test_runs_finishing_together_are_not_taken_for_cache_hits():
    # two parallel workers finish two real runs in the same instant: their own run times say they worked
    clock, out = Clock(), io.StringIO()
    p = Progress(4, "runs", stream=out, clock=clock)
    clock.t += 60
    p.update(seconds=60.0)
    p.update(seconds=59.9)  # same instant, the other worker
    p.update(seconds=0.01)  # a real cache hit
    lines = out.getvalue().splitlines()
    assert lines[1] == "runs 2/4 | elapsed 1m00s | about 1m00s left"
    assert lines[2].startswith("runs 3/4 (1 cached)")


def test_parallel_executor_reports_run_times(capsys):
    import time

    from pai.compendium import executors

    executors.local_executor(time.sleep, [0.3, 0.3], workers=2, desc="runs")
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" |")[0] for line in err] == ["runs 1/2", "runs 2/2"]


def test_inner_loops_print_a_line_per_interval_and_the_last(capsys):
    """Training steps off a terminal: the same rule as sweeps, throttled to one line per interval; a fast
    step is not a cache hit."""
    from pai.utils.progress import progress_reporter

    bar = progress_reporter(1000, None, "vgg/fashion-mnist", unit="step", interval=3600.0)
    for _ in range(1000):
        bar.update()
    bar.set_postfix(loss="0.123")
    bar.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("vgg/fashion-mnist 1000/1000 |") and "cached" not in err[0]
    assert progress_reporter(10, False, unit="step").update() is None and not capsys.readouterr().err


def test_training_off_a_terminal_reports_progress(capsys):
    """pai.train under DVC or papermill (stderr not a terminal) says how far it is, instead of nothing."""
    from pai.data import Dataset
    from pai.train import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=g), torch.randint(0, 2, (64,), generator=g)
    data = Dataset("toy", x, y, x[:16], y[:16], num_classes=2, in_channels=1, image_size=8, mean=(0.5,), std=(0.3,))
    train(TrainConfig(model="lenet-300-100", dataset="toy", epochs=1, batch_size=32, eval_every=1), data=data,
          model=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)))
    assert any(line.startswith("lenet-300-100/toy 2/2 |") for line in capsys.readouterr().err.splitlines())
