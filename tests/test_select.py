import pytest

from dopr_lite.config import ConfigError
from dopr_lite.select import (FullBatch, PromptHistory, SelectContext,
                              make_selector)


def test_full_batch_selects_everything():
    ctx = SelectContext(step=0, history=PromptHistory())
    assert FullBatch().select([4, 1, 9], ctx) == [4, 1, 9]


def test_history_records_and_roundtrips():
    h = PromptHistory(window=3)
    h.record(5, [1, 0, 1, 1], step=2)
    h.record(5, [0, 0], step=3)
    assert h.visits[5] == 2 and h.trials[5] == 6
    assert h.success_rate(5) == pytest.approx(0.5)
    assert list(h.recent[5]) == [1.0, 0.0, 0.0]
    assert h.success_rate(6) is None
    g = PromptHistory()
    g.load_state_dict(h.state_dict())
    assert g.state_dict() == h.state_dict()


def test_unknown_selector_lists_choices():
    with pytest.raises(ConfigError, match="full"):
        make_selector("nope")
