"""The framework-neutral watching core (`ebcore.watch.TicketWatch`) on a tiny ViT: the schedule, one scoring
pass shared by several detectors, ticket events, the state round trip, the RNG stream left alone, and
the Taylor gradient sum (the real `.grad` restored after scoring; cumulative by default, or reset after
each check with gradient_sum="interval")."""
from __future__ import annotations

import pytest
import torch

from ebcore.detector import EarlyBirdDetector
from ebcore.watch import TicketWatch, rng_untouched
from conftest import make_batch, make_model

RATIOS = (0.1, 0.3)


def detectors(criterion: str = "magnitude", threshold: float = 1.0) -> dict[str, EarlyBirdDetector]:
    return {"consecutive": EarlyBirdDetector(RATIOS, threshold, 2, criterion=criterion),
            "window": EarlyBirdDetector(RATIOS, threshold, 3, criterion=criterion)}


def backward(model: torch.nn.Module, seed: int) -> None:
    out = model(**make_batch("vit", seed=seed)).logits
    out.pow(2).mean().backward()


def test_schedule():
    steps = TicketWatch(detectors(), "window", every_steps=3)
    assert [s for s in range(1, 10) if steps.due_after_step(s)] == [3, 6, 9]
    assert not steps.due_at_epoch_end
    for every in (None, 0):
        epochs = TicketWatch(detectors(), "window", every_steps=every)
        assert epochs.due_at_epoch_end and not any(epochs.due_after_step(s) for s in range(1, 10))


def test_the_ruling_detector_must_be_named():
    with pytest.raises(ValueError, match="ruling"):
        TicketWatch(detectors())
    with pytest.raises(ValueError, match="not among"):
        TicketWatch(detectors(), "other")
    single = TicketWatch({"only": EarlyBirdDetector(RATIOS)})
    assert single.ruling == "only"


def test_one_scoring_pass_is_recorded_in_every_detector(monkeypatch):
    dets = detectors()
    calls = []
    real = dets["window"].draw_masks
    monkeypatch.setattr(dets["window"], "draw_masks", lambda model: calls.append(1) or real(model))
    monkeypatch.setattr(dets["consecutive"], "draw_masks", lambda model: pytest.fail("scored twice"))
    watch = TicketWatch(dets, "window")
    model = make_model("vit")
    event = watch.check(model, at=1)
    assert calls == [1] and event.at == 1 and set(event.masks) == set(RATIOS)
    for det in dets.values():
        assert det.history[-1].masks == event.masks


def test_ticket_events_per_detector():
    watch = TicketWatch(detectors(threshold=1.0), "window")
    model = make_model("vit")
    first, second, third, fourth = (watch.check(model, at=i) for i in range(4))
    assert first.updates["consecutive"].distances == {r: None for r in RATIOS}
    assert first.updates["consecutive"].consecutive == {r: None for r in RATIOS}
    assert second.updates["consecutive"].consecutive == {r: 0.0 for r in RATIOS}  # same weights, same masks
    assert second.updates["consecutive"].new_tickets == RATIOS and second.ruled.new_tickets == ()
    assert third.ruled.new_tickets == RATIOS and third.ruled is third.updates["window"]
    assert third.updates["consecutive"].new_tickets == () and fourth.ruled.new_tickets == ()
    assert watch.ruling_detector.ticket(0.3).at == 2


def test_state_round_trip_continues_exactly():
    model = make_model("vit")
    backward(model, seed=1)
    watch = TicketWatch(detectors("taylor", threshold=0.0), "window", every_steps=2, sum_gradients=True)
    watch.accumulate_gradients(model)
    watch.check(model, at=2)
    state = watch.state_dict()
    assert set(state) == {"detectors", "grad_sum", "gradient_sum"}
    assert set(state["detectors"]) == {"consecutive", "window"}
    assert state["gradient_sum"] == "cumulative"
    again = TicketWatch(detectors("taylor", threshold=0.0), "window", every_steps=2, sum_gradients=True)
    again.load_state_dict(state)
    for name in ("consecutive", "window"):
        assert again.detectors[name].state_dict() == watch.detectors[name].state_dict()
    assert again.grad_sum.keys() == watch.grad_sum.keys()
    backward(model, seed=2)
    for w in (watch, again):
        w.accumulate_gradients(model)
    a, b = watch.check(model, at=4), again.check(model, at=4)
    assert a.masks == b.masks and a.updates == b.updates


def test_checks_leave_the_rng_stream_alone():
    watch = TicketWatch(detectors(), "window")
    model = make_model("vit")
    torch.manual_seed(123)
    before = torch.get_rng_state()
    watch.check(model, at=0)
    assert torch.equal(torch.get_rng_state(), before)
    with rng_untouched():
        torch.rand(10)  # anything drawn inside is given back
    assert torch.equal(torch.get_rng_state(), before)


def test_taylor_sum_scores_with_the_summed_gradient_and_restores_grad():
    model = make_model("vit")
    watch = TicketWatch(detectors("taylor"), "window", every_steps=1, sum_gradients=True)
    grads = []
    for seed in (1, 2):
        model.zero_grad(set_to_none=True)
        backward(model, seed)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        watch.accumulate_gradients(model)
    for name, total in watch.grad_sum.items():
        torch.testing.assert_close(total, grads[0][name] + grads[1][name])
    real = {n: p.grad for n, p in model.named_parameters()}
    masks = watch.draw(model)
    assert all(p.grad is real[n] for n, p in model.named_parameters())  # the real gradient is back
    for name, p in model.named_parameters():  # the same masks as scoring with the sum by hand
        p.grad = watch.grad_sum[name].clone()
    assert masks == watch.ruling_detector.draw_masks(model)


def test_without_sum_the_gradients_are_used_as_they_are():
    model = make_model("vit")
    backward(model, seed=1)
    watch = TicketWatch(detectors("taylor"), "window", every_steps=1)
    watch.accumulate_gradients(model)
    assert watch.grad_sum == {}
    assert watch.draw(model) == watch.ruling_detector.draw_masks(model)


def _steps(watch: TicketWatch, model: torch.nn.Module, seeds: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Backward on each seed's batch and accumulate; the gradients of the steps summed by hand, in order."""
    total: dict[str, torch.Tensor] = {}
    for seed in seeds:
        model.zero_grad(set_to_none=True)
        backward(model, seed)
        watch.accumulate_gradients(model)
        for n, p in model.named_parameters():
            total[n] = p.grad.clone() if n not in total else total[n] + p.grad
    return total


def test_cumulative_is_the_default_and_never_resets():
    model = make_model("vit")
    default = TicketWatch(detectors("taylor"), "window", every_steps=1, sum_gradients=True)
    named = TicketWatch(detectors("taylor"), "window", every_steps=1, sum_gradients=True, gradient_sum="cumulative")
    assert default.gradient_sum == "cumulative"
    first = _steps(default, model, (1, 2))
    for n in first:
        named.grad_sum[n] = default.grad_sum[n].clone()
    a, b = default.check(model, at=2), named.check(model, at=2)
    assert a.masks == b.masks
    since = _steps(default, model, (3,))
    for n, total in default.grad_sum.items():  # bitwise: the same additions in the same order
        assert torch.equal(total, first[n] + since[n])


def test_interval_sum_restarts_after_each_check():
    model = make_model("vit")
    watch = TicketWatch(detectors("taylor"), "window", every_steps=2, sum_gradients=True, gradient_sum="interval")
    first = _steps(watch, model, (1, 2))
    for n, total in watch.grad_sum.items():
        assert torch.equal(total, first[n])
    real = {n: p.grad for n, p in model.named_parameters()}
    watch.check(model, at=2)
    assert watch.grad_sum == {}  # emptied by the check
    assert all(p.grad is real[n] for n, p in model.named_parameters())  # the real gradient is back
    since = _steps(watch, model, (3, 4))
    for n, total in watch.grad_sum.items():  # only the gradients since the check
        assert torch.equal(total, since[n])
    for name, p in model.named_parameters():  # the next check scores with that sum, nothing older
        p.grad = since[name].clone()
    expected = watch.ruling_detector.draw_masks(model)
    assert watch.check(model, at=4).masks == expected


def test_gradient_sum_round_trips_and_is_checked():
    model = make_model("vit")
    watch = TicketWatch(detectors("taylor"), "window", every_steps=2, sum_gradients=True, gradient_sum="interval")
    _steps(watch, model, (1,))
    state = watch.state_dict()
    assert state["gradient_sum"] == "interval"
    again = TicketWatch(detectors("taylor"), "window", every_steps=2, sum_gradients=True)
    again.load_state_dict(state)
    assert again.gradient_sum == "interval" and again.grad_sum.keys() == watch.grad_sum.keys()
    assert all(torch.equal(again.grad_sum[n], t) for n, t in watch.grad_sum.items())
    old = {k: v for k, v in state.items() if k != "gradient_sum"}  # saved before the option existed
    again.load_state_dict(old)
    assert again.gradient_sum == "cumulative"
    with pytest.raises(ValueError, match="gradient_sum"):
        TicketWatch(detectors("taylor"), "window", sum_gradients=True, gradient_sum="between")
    with pytest.raises(ValueError, match="gradient_sum"):
        again.load_state_dict(state | {"gradient_sum": "between"})


def test_dense_run_watch_passes_the_mode_through():
    from ebcore.study.dense_watch import DenseRunWatch
    for mode in ("cumulative", "interval"):
        watch = DenseRunWatch(detectors("taylor"), "window", None, every_steps=2, gradient_sum=mode)
        assert watch.watch.sum_gradients and watch.watch.gradient_sum == mode
        state = watch.state_dict()
        assert state["gradient_sum"] == mode
        again = DenseRunWatch(detectors("taylor"), "window", None, every_steps=2)
        again.load_state_dict(state)
        assert again.watch.gradient_sum == mode
