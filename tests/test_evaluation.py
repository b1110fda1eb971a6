import pytest
import torch

from dopr_lite.evaluation import evaluate, pass_at_k
from dopr_lite.rewards import exact_answer_reward
from dopr_lite.rollout import RolloutCounter
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
