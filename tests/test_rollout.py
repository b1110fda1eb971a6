import pytest
import torch

from dopr_lite.config import DoprConfig
from dopr_lite.rollout import (RolloutCounter, completion_mask,
                               concat_rollouts, generate_rollouts,
                               generation_config, greedy_config, is_eos,
                               prompt_entropy, sampling_config,
                               select_groups, sequence_logprobs, take_rows)


def test_completion_mask_stops_after_first_eos():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0]])
    m = completion_mask(ids, eos_id=2)
    assert m.tolist() == [[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]]
    m2 = completion_mask(ids, eos_id=[7, 2])
    assert m2[0].tolist() == [1, 1, 1, 0, 0]
    # the one EOS test: the mask stops at it, truncation is its absence
    assert is_eos(ids, [7, 2]).any(1).tolist() == [True, False, True]


def test_one_generation_config_holds_the_runs_sampling_settings():
    cfg = DoprConfig(max_new_tokens=12, temperature=0.7, top_p=0.9, top_k=5)
    gen = generation_config(cfg)
    assert (gen.max_new_tokens, gen.do_sample, gen.temperature, gen.top_p,
            gen.top_k) == (12, True, 0.7, 0.9, 5)
    assert generation_config(DoprConfig()).top_k == 0  # off, not HF's 50
    argmax = greedy_config(gen)
    assert not argmax.do_sample and argmax.max_new_tokens == 12
    assert gen.do_sample  # the run's config is left as it was


def test_counter_counts_by_kind_and_roundtrips():
    c = RolloutCounter()
    c.add("train", 8, 100)
    c.add("probe", 2, 10)
    c.add("eval", 50, 500)
    assert c.cost == 10 and c.cost_tokens == 110
    d = RolloutCounter()
    d.load_state_dict(c.state_dict())
    assert d == c


def test_rollouts_shapes_grouping_and_exact_counts(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    counter = RolloutCounter()
    prompts = ["1+2=?\n", "33-14+5=?\n", "7=?\n"]
    torch.manual_seed(0)
    ro = generate_rollouts(pol.model, pol.tokenizer, prompts, 4,
                           max_new_tokens=7, counter=counter)
    assert len(ro) == 12 and ro.group.tolist() == sum(
        ([i] * 4 for i in range(3)), [])
    assert ro.completion_ids.shape[1] <= 7
    assert counter.sequences["train"] == 12
    assert counter.tokens["train"] == int(ro.completion_mask.sum())
    # left padding: the last prompt column is never padding
    assert torch.all(ro.prompt_mask[:, -1] == 1)
    # masked-out completion positions hold the pad token
    pad = pol.tokenizer.pad_token_id
    assert torch.all(ro.completion_ids[ro.completion_mask == 0] == pad)
    lp = sequence_logprobs(pol.model, ro, micro_batch=5)
    assert lp.shape == ro.completion_ids.shape
    assert torch.all(lp <= 0)


def test_one_call_holds_a_group_and_probes_counted_apart(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    counter = RolloutCounter()
    torch.manual_seed(0)
    ro = generate_rollouts(pol.model, pol.tokenizer,
                           ["1+2=?\n", "33-14+5=?\n", "7=?\n"], [4, 1, 1],
                           max_new_tokens=7, counter=counter,
                           kind=["train", "probe", "probe"])
    assert len(ro) == 6 and ro.num_generations == 0  # mixed groups
    assert ro.group.tolist() == [0, 0, 0, 0, 1, 2]
    tokens = ro.completion_mask.sum(1).tolist()
    assert counter.calls == 1
    assert counter.sequences == {"train": 4, "probe": 2, "eval": 0}
    assert counter.tokens["train"] == sum(tokens[:4])
    assert counter.tokens["probe"] == sum(tokens[4:])
    group = take_rows(ro, [0, 1, 2, 3], 4)
    assert group.num_generations == 4 and group.texts == ro.texts[:4]
    assert group.group.tolist() == [0] * 4
    probes = take_rows(ro, [4, 5], 1)
    assert probes.group.tolist() == [0, 1] and len(probes) == 2
    with pytest.raises(ValueError, match="do not make groups of 4"):
        take_rows(ro, [0, 1, 2], 4)
    with pytest.raises(ValueError, match="one count >= 1 and one kind"):
        generate_rollouts(pol.model, pol.tokenizer, ["1=?\n"], [2, 2])


def test_greedy_rollouts_match_bare_generate(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    tok, model = pol.tokenizer, pol.model
    prompts = ["12+3=?\n", "5=?\n"]
    ro = generate_rollouts(model, tok, prompts, 1, max_new_tokens=6,
                           do_sample=False)
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    bare = tok.batch_decode(out[:, enc["input_ids"].shape[1]:],
                            skip_special_tokens=True)
    assert ro.texts == bare


def test_a_models_own_sampling_defaults_never_leak_in(random_tiny_dir,
                                                      capfd):
    """A chat model's generation config samples (temperature, top_k...):
    greedy decoding stays greedy, and sampling uses our settings only,
    whether they come as a GenerationConfig or as keywords."""
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    model, tok, prompts = pol.model, pol.tokenizer, ["12+3=?\n", "5=?\n"]
    gen = sampling_config(6, temperature=1.3, top_p=0.9, top_k=4)

    def both():
        argmax = generate_rollouts(model, tok, prompts, 1,
                                   generation_config=greedy_config(gen))
        torch.manual_seed(0)
        sampled = generate_rollouts(model, tok, prompts, 3,
                                    generation_config=gen)
        torch.manual_seed(0)
        by_hand = generate_rollouts(model, tok, prompts, 3,
                                    max_new_tokens=6, temperature=1.3,
                                    top_p=0.9, top_k=4)
        assert torch.equal(sampled.completion_ids, by_hand.completion_ids)
        return argmax.texts, sampled.completion_ids

    clean = both()
    model.generation_config.update(do_sample=True, temperature=0.3,
                                   top_p=0.5, top_k=2)
    texts, ids = both()
    assert texts == clean[0] and torch.equal(ids, clean[1])
    assert "not valid" not in capfd.readouterr().err  # no flag warnings
    with pytest.raises(TypeError, match="not both"):
        generate_rollouts(model, tok, prompts, 1, generation_config=gen,
                          max_new_tokens=4)


def test_min_new_tokens_forces_length(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    ro = generate_rollouts(pol.model, pol.tokenizer, ["1=?\n"], 2,
                           max_new_tokens=9, min_new_tokens=9)
    assert ro.completion_ids.shape[1] == 9


def test_behaviour_logprobs_match_a_rescore(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    torch.manual_seed(1)
    ro = generate_rollouts(pol.model, pol.tokenizer, ["4+4=?\n"], 3,
                           max_new_tokens=5, temperature=0.7,
                           with_logprobs=True, micro_batch=2)
    again = sequence_logprobs(pol.model, ro, temperature=0.7)
    assert torch.allclose(ro.old_logprobs, again, atol=1e-5)
    assert torch.all(ro.old_logprobs[ro.completion_mask.bool()] < 0)


def test_concat_and_select_groups_keep_every_logprob(random_tiny_dir):
    """Re-padding rollouts from two generate calls changes no log-prob."""
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    m, tok = pol.model, pol.tokenizer
    torch.manual_seed(0)
    a = generate_rollouts(m, tok, ["1+2=?\n", "7=?\n"], 2, max_new_tokens=5)
    b = generate_rollouts(m, tok, ["33-14+5=?\n"], 2, max_new_tokens=9)
    both = concat_rollouts([a, b], tok.pad_token_id)
    assert len(both) == 6 and both.group.tolist() == [0, 0, 1, 1, 2, 2]
    assert both.texts == a.texts + b.texts
    lp = sequence_logprobs(m, both)
    for part, rows in ((a, slice(0, 4)), (b, slice(4, 6))):
        own = sequence_logprobs(m, part)
        mask = part.completion_mask.bool()
        width = own.shape[1]
        got = lp[rows][:, :width]
        assert torch.allclose(got[mask], own[mask], atol=1e-5)
        assert both.completion_mask[rows][:, width:].sum() == 0
    kept = select_groups(both, [2, 0])
    assert kept.texts == b.texts + a.texts[:2]
    assert kept.group.tolist() == [0, 0, 1, 1]


def test_prompt_entropy_is_one_forward_pass_per_prompt(random_tiny_dir):
    from dopr_lite.policy import load_policy

    pol = load_policy(model=random_tiny_dir, use_lora=False)
    prompts = ["1+2=?\n", "33-14+5=?\n"]
    ent = prompt_entropy(pol.model, pol.tokenizer, prompts)
    alone = prompt_entropy(pol.model, pol.tokenizer, prompts[1:])
    vocab = pol.model.config.vocab_size
    assert ent.shape == (2,) and torch.all(ent >= 0)
    assert torch.all(ent <= torch.log(torch.tensor(float(vocab))) + 1e-4)
    assert torch.allclose(ent[1:], alone, atol=1e-4)  # padding-invariant


def test_a_large_greedy_batch_decodes_as_one_call_would(monkeypatch):
    """An evaluation-sized greedy batch runs in prompt-length buckets and
    two rounds (rows that ended are no longer decoded); its tokens, masks
    and counts are those of one ``generate`` call."""
    from dopr_lite import rollout
    from dopr_lite.policy import load_policy
    from dopr_lite.rollout import generate_rollouts, sampling_config
    from dopr_lite.task import task_dataset

    pol = load_policy()
    prompts = [r["prompt"] for r in task_dataset("test", 96)]
    gen = sampling_config(48, do_sample=False)
    runs = {}
    for rows in (rollout.COMPACT_ROWS, 10**9):  # buckets; one call
        monkeypatch.setattr(rollout, "COMPACT_ROWS", rows)
        counter = RolloutCounter()
        runs[rows] = (generate_rollouts(pol.model, pol.tokenizer, prompts,
                                        generation_config=gen,
                                        counter=counter, kind="eval"),
                      counter)
    (parts, c1), (one, c2) = runs.values()
    lengths = one.completion_mask.sum(1)
    assert lengths.min() < 24 < lengths.max()  # both rounds are exercised
    assert parts.texts == one.texts
    assert torch.equal(parts.completion_mask, one.completion_mask)
    assert torch.equal(parts.truncated, one.truncated)
    assert c1.state_dict() == c2.state_dict()  # one call, the same tokens
