import math

import pytest
import torch

from dopr_lite import grpo as G


def test_group_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    a = G.group_advantages(r, "none")
    assert torch.allclose(a, torch.tensor([[.5, -.5, -.5, .5], [0.] * 4]))
    s = G.group_advantages(r, "group", eps=0.0)
    std = math.sqrt(1 / 3)  # unbiased std of [1, 0, 0, 1]
    assert torch.allclose(s[0], torch.tensor([.5, -.5, -.5, .5]) / std)
    assert torch.all(s[1] == 0)  # zero variance -> zero advantage, no NaN
    b = G.group_advantages(r, "batch", eps=0.0)
    assert torch.allclose(b, a / r.std())


def test_zero_std_fraction():
    r = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert G.zero_std_fraction(r) == 0.5


def test_loss_normalisers():
    m = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    g = G.loss_normaliser(m, "grpo", 4)
    assert torch.allclose(g[0], torch.tensor([.25, .25, 0, 0]))
    assert torch.allclose(g[1], torch.tensor([.125] * 4))
    d = G.loss_normaliser(m, "dr_grpo", 4)
    assert torch.allclose(d, m / 8.0)
    p = G.loss_normaliser(m, "dapo", 4)
    assert torch.allclose(p, m / 6.0)
    with pytest.raises(ValueError):
        G.loss_normaliser(m, "x", 4)


def test_clipped_objective_hand_computed():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))
    old = torch.zeros(1, 3)
    pos, clip = G.clipped_objective(logp, old, torch.tensor([1.0]), 0.2)
    # positive advantage: ratio capped at 1.2; below 1 is not clipped
    assert torch.allclose(pos, torch.tensor([[1.2, 0.5, 1.1]]))
    assert clip.tolist() == [[1.0, 0.0, 0.0]]
    neg, _ = G.clipped_objective(logp, old, torch.tensor([-1.0]), 0.2)
    assert torch.allclose(neg, torch.tensor([[-1.5, -0.8, -1.1]]))
    hi, _ = G.clipped_objective(logp, old, torch.tensor([1.0]), 0.2, 0.28)
    assert torch.allclose(hi, torch.tensor([[1.28, 0.5, 1.1]]))


def test_k3_kl_is_zero_at_equality_and_positive_elsewhere():
    x = torch.randn(10)
    assert torch.allclose(G.k3_kl(x, x), torch.zeros(10))
    assert torch.all(G.k3_kl(x, x + 0.3) > 0)


def test_loss_gradient_is_policy_gradient_at_ratio_one():
    # with old = logp.detach(), d loss / d logp = -A * weight
    logp = torch.zeros(2, 3, requires_grad=True)
    w = G.loss_normaliser(torch.ones(2, 3), "dapo", 3)
    loss, _ = G.grpo_loss(logp, logp.detach(), torch.tensor([1.0, -2.0]), w)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1.0] * 3, [2.0] * 3]) / 6)


def _tiny_batch(random_tiny_dir):
    from dopr_lite.policy import load_policy
    from dopr_lite.rollout import generate_rollouts

    pol = load_policy(model=random_tiny_dir, lora_r=4)
    torch.manual_seed(0)
    ro = generate_rollouts(pol.model, pol.tokenizer, ["1+2=?\n", "33-4=?\n"],
                           3, max_new_tokens=6)
    return pol, ro


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_micro_batching_gives_the_same_gradient(random_tiny_dir, loss_type):
    pol, ro = _tiny_batch(random_tiny_dir)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, 0.0])
    grads = []
    for mb in (6, 2):
        params = list(pol.trainable_parameters().values())
        opt = torch.optim.SGD(params, lr=0.0)  # keep weights fixed
        G.grpo_update(pol.model, opt, ro, adv, loss_type=loss_type,
                      max_new_tokens=6, micro_batch=mb, max_grad_norm=1e9)
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_kl_uses_disabled_adapter(random_tiny_dir):
    pol, ro = _tiny_batch(random_tiny_dir)
    params = list(pol.trainable_parameters().values())
    opt = torch.optim.SGD(params, lr=0.0)
    st = G.grpo_update(pol.model, opt, ro, torch.zeros(6), beta=0.1,
                       max_new_tokens=6)
    # LoRA B starts at zero: policy == reference, KL exactly 0
    assert st["kl"] == pytest.approx(0.0, abs=1e-7)


def test_non_finite_loss_skips_the_step(random_tiny_dir):
    pol, ro = _tiny_batch(random_tiny_dir)
    params = list(pol.trainable_parameters().values())
    before = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1.0)
    adv = torch.tensor([float("nan")] + [1.0] * 5)
    st = G.grpo_update(pol.model, opt, ro, adv, max_new_tokens=6)
    assert "non-finite" in st["skipped"]
    assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))


def test_settings_come_from_the_config_and_match_the_keywords(
        random_tiny_dir):
    from dopr_lite.config import DoprConfig
    cfg = DoprConfig(loss_type="dapo", epsilon=0.1, epsilon_high=0.3,
                     max_new_tokens=6, micro_batch=2)
    s = G.GRPOSettings.from_config(cfg)
    assert (s.loss_type, s.eps_low, s.eps_high, s.micro_batch) == (
        "dapo", 0.1, 0.3, 2)
    pol, ro = _tiny_batch(random_tiny_dir)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, 0.0])
    grads = []
    for settings, kw in ((s, {}), (None, {"loss_type": "dapo", "eps_low": 0.1,
                                          "eps_high": 0.3, "max_new_tokens": 6,
                                          "micro_batch": 2})):
        params = list(pol.trainable_parameters().values())
        opt = torch.optim.SGD(params, lr=0.0)
        G.grpo_update(pol.model, opt, ro, adv, settings, **kw)
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    assert torch.equal(grads[0], grads[1])
    with pytest.raises(TypeError):
        G.grpo_update(pol.model, opt, ro, adv, eps=0.1)
