import pytest
import torch

from dopr_lite.config import DoprConfig
from dopr_lite.evaluation import (evaluate, expected_shares, group_shares,
                                  pass_at_k)
from dopr_lite.rewards import exact_answer_reward
from dopr_lite.rollout import RolloutCounter, generation_config
from dopr_lite.task import task_dataset


def test_pass_at_k_values():
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_evaluation_leaves_training_rng_untouched(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    ds = task_dataset("test", 6)
    counter = RolloutCounter()
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    out = evaluate(pol.model, pol.tokenizer, ds, exact_answer_reward, k=2,
                   max_new_tokens=5, batch_size=4, counter=counter)
    assert torch.equal(torch.rand(3), expected)
    assert set(out) >= {"accuracy", "pass@2", "sampled_accuracy"}
    assert counter.sequences["eval"] == 6 + 12 and counter.cost == 0


def test_pass_at_k_samples_with_the_runs_top_k(random_tiny_dir):
    """The sampled pass draws as the run's GenerationConfig says (it used
    to ignore top_p/top_k): with top_k = 1 every sample is the greedy
    completion."""
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    ds = task_dataset("test", 5)
    gen = generation_config(DoprConfig(top_k=1, max_new_tokens=6))
    seen = []

    def record(completions, **columns):
        seen.append(list(completions))
        return [0.0] * len(completions)

    for how in ({"generation_config": gen},
                {"top_k": 1, "max_new_tokens": 6}):
        seen.clear()
        evaluate(pol.model, pol.tokenizer, ds, record, k=3, **how)
        greedy, sampled = seen
        assert sampled == [t for t in greedy for _ in range(3)]
    seen.clear()  # without top_k the samples differ: the test can fail
    evaluate(pol.model, pol.tokenizer, ds, record, k=3, max_new_tokens=6)
    assert seen[1] != [t for t in seen[0] for _ in range(3)]


def test_group_shares_are_the_observed_ones():
    s = group_shares(torch.tensor([0, 0, 3, 4, 2]), 4)
    assert s == pytest.approx({"all_wrong": 0.4, "all_right": 0.2,
                               "mixed": 0.4})
    boot = expected_shares([1.0, 0.0, 0.5], [0.0, 1.0, 0.25], bootstrap=200)
    assert boot["mixed"] == pytest.approx(0.25 / 3)
    for name in ("all_wrong", "all_right", "mixed"):
        lo, hi = boot[f"{name}_95"]
        assert lo <= boot[name] <= hi
