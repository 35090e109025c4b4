"""Early-bird detector: window and threshold semantics, several ratios, determinism, resumable state."""
import json

import pytest
import torch

import ebcore as eb
from ebcore.detector import EarlyBirdDetector
from conftest import make_model


def layer(keep_heads, keep_channels, heads=4, channels=10):
    return eb.LayerMask(tuple(keep_heads), tuple(keep_channels), heads, channels)


def m(*channels_kept):
    """A one-layer mask keeping heads 0, 1 and the given channels (out of 10)."""
    return eb.Mask((layer((0, 1), channels_kept),))


def test_consecutive_rule_with_window_two():
    det = EarlyBirdDetector(ratios=(0.5,), threshold=0.1, window=2, distance="channels")
    assert det.add_masks({0.5: m(0, 1, 2, 3, 4)}, at=0) == {0.5: None}
    assert det.add_masks({0.5: m(5, 6, 7, 8, 9)}, at=1) == {0.5: 1.0}
    assert det.ticket(0.5) is None
    d = det.add_masks({0.5: m(5, 6, 7, 8, 4)}, at=2)  # one channel moved both ways: 2/10
    assert d[0.5] == pytest.approx(0.2) and det.ticket(0.5) is None
    det.add_masks({0.5: m(5, 6, 7, 8, 4)}, at=3)  # identical: 0 <= 0.1
    t = det.ticket(0.5)
    assert t.at == 3 and t.check_index == 3 and t.distance == 0 and t.mask == m(4, 5, 6, 7, 8)
    det.add_masks({0.5: m(0, 1, 2, 3, 9)}, at=4)
    assert det.ticket(0.5).at == 3, "the first ticket stays the ticket"


def test_window_rule_needs_all_distances_to_newest_under_threshold():
    det = EarlyBirdDetector(ratios=(0.5,), threshold=0.2, window=3, distance="channels")
    det.add_masks({0.5: m(0, 1, 2, 3, 4)})
    det.add_masks({0.5: m(0, 1, 2, 3, 5)})   # window not full yet
    assert det.history[-1].distances[0.5] is None and det.history[-1].consecutive[0.5] == pytest.approx(0.2)
    det.add_masks({0.5: m(0, 1, 2, 5, 6)})   # to newest: 0.4 and 0.2 -> max 0.4 > 0.2
    assert det.ticket(0.5) is None and det.history[-1].distances[0.5] == pytest.approx(0.4)
    det.add_masks({0.5: m(0, 1, 2, 5, 6)})   # window = last 3: 0.2, 0 -> max 0.2 <= 0.2 -> ticket
    assert det.ticket(0.5).check_index == 3


def test_threshold_is_inclusive_and_several_ratios_are_independent():
    det = EarlyBirdDetector(ratios=(0.1, 0.5), threshold=0.1, window=2, distance="channels")
    a, b = m(0, 1, 2, 3, 4), m(0, 1, 2, 3, 5)
    det.add_masks({0.1: a, 0.5: a})
    det.add_masks({0.1: a, 0.5: b})
    assert det.ticket(0.1) is not None and det.ticket(0.5) is None and not det.found_all
    rows = det.records()
    assert len(rows) == 4 and {r["ratio"] for r in rows} == {0.1, 0.5}
    with pytest.raises(ValueError, match="expected masks for ratios"):
        det.add_masks({0.1: a})


@pytest.mark.parametrize("kwargs, match", [
    ({"window": 1}, "window"), ({"threshold": 1.5}, "threshold"), ({"ratios": (0.3, 1.0)}, r"\[0, 1\)"),
    ({"scope": "all"}, "scope"), ({"criterion": "fisher"}, "criterion"), ({"ratios": ()}, "non-empty"),
])
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyBirdDetector(**kwargs)


def _run(epochs, seed=0, detector=None, model=None, start=0, stop=None):
    """Train a tiny ViT on a fixed random task; the detector checks every epoch."""
    torch.manual_seed(seed)
    model = model or make_model("vit", seed=seed).train()
    detector = detector or EarlyBirdDetector(ratios=(0.3, 0.5), threshold=0.1, window=2)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 1, 16, 16, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(start, stop or epochs):
        torch.manual_seed(seed * 1000 + epoch)
        for i in range(0, 64, 16):
            loss = model(pixel_values=x[i:i + 16], labels=y[i:i + 16]).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        detector.check(model, at=epoch)
    return detector, model


def test_training_run_is_deterministic_and_finds_ticket_for_each_ratio():
    d1, _ = _run(8)
    d2, _ = _run(8)
    assert d1.state_dict() == d2.state_dict()
    for r in (0.3, 0.5):
        assert [x.hash() for x in d1.masks(r)] == [x.hash() for x in d2.masks(r)]
        t1, t2 = d1.ticket(r), d2.ticket(r)
        assert (t1 and t1.at) == (t2 and t2.at)
    assert any(d1.ticket(r) for r in (0.3, 0.5)), "SGD with a small LR settles: a ticket should appear"
    pair = d1.pairwise(0.3)
    assert pair.shape == (8, 8)


def test_state_round_trip_mid_run_gives_the_same_ticket():
    full, _ = _run(8)
    half, model = _run(8, stop=4)
    saved = json.loads(json.dumps(half.state_dict()))  # must be JSON-serializable
    resumed = EarlyBirdDetector.from_state_dict(saved)
    resumed, _ = _run(8, detector=resumed, model=model, start=4)
    assert resumed.state_dict() == full.state_dict()
    for r in (0.3, 0.5):
        assert (resumed.ticket(r) and resumed.ticket(r).at) == (full.ticket(r) and full.ticket(r).at)


def test_state_from_other_configuration_is_refused():
    det = EarlyBirdDetector(ratios=(0.3,), window=2)
    with pytest.raises(ValueError, match="saved with"):
        EarlyBirdDetector(ratios=(0.3,), window=5).load_state_dict(det.state_dict())


def test_check_draws_masks_for_all_ratios_from_one_model():
    model = make_model("swin")
    det = EarlyBirdDetector(ratios=(0.1, 0.3, 0.5), scope="global")
    det.check(model)
    masks = det.history[0].masks
    assert [round(masks[r].sparsity()["channels"], 1) for r in (0.1, 0.3, 0.5)] == [0.1, 0.3, 0.5]


def test_unprepared_gpt2_is_refused_instead_of_converted_under_the_optimizer():
    model = make_model("gpt2")  # still has transformers' Conv1D
    with pytest.raises(eb.UnsupportedModelError, match="prepare_model"):
        EarlyBirdDetector(ratios=(0.3,)).check(model)
    assert any(type(m).__name__ == "Conv1D" for m in model.modules()), "the detector must not swap parameters"
    eb.prepare_model(model)
    EarlyBirdDetector(ratios=(0.3,)).check(model)
