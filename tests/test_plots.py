from dopr_lite.plots import plot_runs, save_figure
from dopr_lite.runlog import RunResult


def test_save_figure_writes_png(tmp_path):
    r = RunResult(out_dir=tmp_path)
    r.evals = [{"step": 0, "rollouts": 0, "accuracy": 0.2,
                "sampled_accuracy": 0.3},
               {"step": 1, "rollouts": 64, "accuracy": 0.4,
                "sampled_accuracy": 0.5}]
    r.metrics = [{"rollouts": 64, "reward_mean": 0.5,
                  "frac_reward_zero_std": 0.25}]
    fig = plot_runs({"grpo": r}, title="t")
    path = save_figure(fig, "00_test", folder=tmp_path)
    assert path.name == "00_test.png" and path.stat().st_size > 1000
