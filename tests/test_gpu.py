"""Checks that need a CUDA GPU (``pytest -m gpu``; scripts/device_check.sh
runs them on the device machine).  Skipped elsewhere."""

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_4bit_lora_step_on_cuda(tmp_path):
    from dopr_lite import archs
    from dopr_lite.config import DoprConfig
    from dopr_lite.policy import load_policy
    from dopr_lite.rollout import generate_rollouts

    archs.build("small", tmp_path, dtype="bfloat16")
    cfg = DoprConfig.consumer_gpu(model=str(tmp_path),
                                  tokenizer="embedded:tiny", lora_r=4)
    pol = load_policy(cfg)
    assert pol.device.type == "cuda"
    assert any("4bit" in type(m).__name__ for m in pol.model.modules())
    ro = generate_rollouts(pol.model, pol.tokenizer, ["1+2=?"], 4,
                           max_new_tokens=8, min_new_tokens=8)
    assert ro.completion_ids.is_cuda and ro.completion_mask.sum() == 32


def test_a_real_out_of_memory_names_the_knobs():
    from dopr_lite.config import DoprConfig
    from dopr_lite.errors import OutOfMemory
    from dopr_lite.guards import oom_advice
    from dopr_lite.select import FullBatch

    with pytest.raises(OutOfMemory, match=r"peak .* of .* GB.*micro_batch"):
        with oom_advice(DoprConfig(), "update", FullBatch().shape):
            torch.empty(10**14, dtype=torch.uint8, device="cuda")
