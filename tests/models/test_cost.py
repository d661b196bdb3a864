"""What one probe costs a model (:mod:`depara_core.models.cost`) and the shares of a computation
that progress estimates weight models by (:meth:`Workspace._work`)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from depara_core.engine.attribution import get_method
from depara_core.models import cost
from depara_core.models.cost import estimate_seconds, probe_seconds
from depara_core.models.sources import callable_spec
from depara_core.models.spec import load_model
from depara_core.models.toy import toy_models
from depara_core.probes.registry import load_builtin
from depara_core.session.config import Config, ProbeChoice
from depara_core.session.workspace import Workspace


class Refuses(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model takes 5 channels")


@pytest.fixture(autouse=True)
def fresh_measurements(monkeypatch):
    monkeypatch.setattr(cost, "_MEASURED", {})
    monkeypatch.setattr(cost, "_RUNS", {})


def test_one_probe_is_timed_once_per_architecture():
    probes = load_builtin("noise", 4)
    a, b = toy_models(2)  # one architecture, two seeds
    assert a.architecture == b.architecture and a.digest != b.digest
    first = probe_seconds(a, probes)
    assert first > 0 and probe_seconds(b, probes) == first and len(cost._MEASURED) == 1


def test_a_model_that_fails_costs_nothing_here_and_the_real_run_reports_it():
    refuses = load_model(callable_spec("refuses", Refuses))
    assert probe_seconds(refuses, load_builtin("noise", 4)) == 0.0


def test_shares_follow_the_layers_to_compute_and_unmeasured_models_get_the_median():
    nets = [*toy_models(2), load_model(callable_spec("refuses", Refuses))]
    probes = load_builtin("noise", 4)
    ws = Workspace(Config("", tuple(m.name for m in nets), ProbeChoice("builtin", "noise", 4)), nets, probes)
    shares = dict(ws._work([("m0", 1), ("m1", 3), ("refuses", 2)]))
    assert shares["m1"] == pytest.approx(3 * shares["m0"])
    assert shares["refuses"] == pytest.approx(2 * shares["m0"]), "an unmeasured model counts as a typical one"
    assert dict(ws._work([("m0", 0), ("m1", 2)]))["m0"] == 0.0


def test_estimates_use_real_runs_of_the_architecture_else_one_timed_probe_as_an_upper_figure():
    probes = load_builtin("noise", 4)
    a, b = toy_models(2)
    guess = estimate_seconds([(a, 8)], probes)
    assert not guess.measured and guess.seconds == pytest.approx(8 * probe_seconds(a, probes)) and guess.text().startswith("at most about")
    cost.record_run(a, probes, passes=10, seconds=5.0)
    known = estimate_seconds([(b, 8), (a, 0)], probes)  # b shares a's architecture; no work costs nothing
    assert known.measured and known.seconds == pytest.approx(4.0) and known.text() == "about 4 s"
    assert cost.CostEstimate(200.0, True).text() == "about 3 min 20 s"


def test_a_workspace_estimates_another_method_by_its_passes_from_its_own_measured_run():
    nets = toy_models(2)
    probes = load_builtin("noise", 6)
    ws = Workspace(Config("", ("m0", "m1"), ProbeChoice("builtin", "noise", 6)), nets, probes)
    ws.compute(build_terms=False)  # records how long Gradient*Input took per probe pass
    assert cost._RUNS, "the real run was recorded"
    per_pass = next(iter(cost._RUNS.values()))
    wanted = {"m0": [ws.encoder("m0")], "m1": [ws.encoder("m1")]}
    assert ws.estimate(wanted).seconds == 0.0  # computed here already
    other = Workspace(Config("", ("m0", "m1"), ProbeChoice("builtin", "noise", 6), method="smoothgrad"), nets, probes)
    smooth = other.estimate(wanted)
    passes = get_method("smoothgrad").passes()
    assert passes == 8 and get_method("integrated_gradients").passes() == 16 and get_method("gradient_x_input").passes() == 1
    assert smooth.measured and smooth.seconds == pytest.approx(2 * 6 * passes * per_pass)


def test_a_resumed_run_is_timed_by_the_probes_it_computed(monkeypatch, tmp_path):
    """A run stopped after 4 of 8 probes, then resumed from its checkpoint: the resumed run computes
    4 probes, and its time is recorded against those 4 passes, not all 8."""
    from depara_core.cache import GraphCache
    from depara_core.engine.graph import Cancelled

    net = toy_models(1)[0]
    probes = load_builtin("noise", 8)
    config = Config("", ("m0",), ProbeChoice("builtin", "noise", 8))
    recorded: list[int] = []
    monkeypatch.setattr("depara_core.session.workspace.record_run", lambda model, p, passes, seconds: recorded.append(passes))
    cache = GraphCache(tmp_path)
    with pytest.raises(Cancelled):
        Workspace(config, [net], probes, cache).compute(lambda r: r.model_fraction < 0.5, batch_size=2, build_terms=False)
    assert recorded == []  # a stopped model records nothing
    Workspace(config, [net], probes, cache).compute(lambda r: None, batch_size=2, build_terms=False)
    assert recorded == [4]
    Workspace(config, [net], load_builtin("noise", 8), GraphCache(tmp_path / "fresh")).compute(batch_size=2, build_terms=False)
    assert recorded == [4, 8]  # a whole run, without a progress sink
