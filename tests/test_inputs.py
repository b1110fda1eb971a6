import pytest

from dopr_lite import inputs
from dopr_lite.config import DoprConfig
from dopr_lite.errors import ConfigError, DataError, PolicyLoadError
from dopr_lite.inputs import load_inputs


@pytest.fixture
def loads(monkeypatch):
    """The configs the model was loaded for (no model is loaded)."""
    calls = []
    monkeypatch.setattr(inputs, "load_policy",
                        lambda cfg: calls.append(cfg) or "policy")
    return calls


def test_a_bad_source_row_or_check_fails_before_the_model_loads(
        tmp_path, loads):
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_inputs(DoprConfig(model=str(tmp_path / "nope")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" * 5)
    with pytest.raises(DataError, match="line 1"):
        load_inputs(DoprConfig(dataset=str(bad), n_test=1))

    def refuse(data):
        raise ConfigError("a bad pre-flight file")

    cfg = DoprConfig(n_train=16, n_test=4)
    with pytest.raises(ConfigError, match="bad pre-flight"):
        load_inputs(cfg, check=refuse)
    assert not loads
    policy, data, checked = load_inputs(cfg, check=lambda d: len(d.train))
    assert policy == "policy" and checked == len(data.train) == 16
    assert loads == [cfg]


def test_what_is_given_is_used_as_it_is(loads):
    cfg = DoprConfig(model="/no/such/model", n_train=16, n_test=4)
    data = load_inputs(DoprConfig(n_train=16, n_test=4))[1]
    loads.clear()
    given = object()
    assert load_inputs(cfg, policy=given, data=data) == (given, data, None)
    assert not loads
