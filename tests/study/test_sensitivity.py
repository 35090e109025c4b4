"""Ticket stability and threshold sensitivity replayed from stored masks: the replay is the detector's rule,
tickets move monotonically with the threshold, stability distances are bounded by 2p, and the figure/table."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

import ebcore as eb
from ebcore.detector import EarlyBirdDetector
from ebcore.scores import LayerScores, Scores
from ebcore.study import sensitivity as sens
from ebcore.study.plots.sensitivity import threshold_sensitivity_figure


def m(*channels_kept):
    """A one-layer mask keeping heads 0, 1 of 4 and the given channels of 10 (ratio 0.5)."""
    return eb.Mask((eb.LayerMask((0, 1), tuple(channels_kept), 4, 10),))


A, B, C, D = m(0, 1, 2, 3, 4), m(5, 6, 7, 8, 9), m(4, 5, 6, 7, 8), m(0, 1, 2, 3, 9)
SEQUENCE = [A, B, C, C, D, D, D]   # channel distances to previous: -, 1.0, 0.2, 0, 1.0, 0, 0
EPOCHS = [0.5 * (i + 1) for i in range(len(SEQUENCE))]


def known_detectors(threshold=0.1):
    dets = {"consecutive": EarlyBirdDetector(ratios=(0.5,), threshold=threshold, window=2, distance="channels"),
            "window": EarlyBirdDetector(ratios=(0.5,), threshold=threshold, window=3, distance="channels")}
    for i, mask in enumerate(SEQUENCE):
        for det in dets.values():
            det.add_masks({0.5: mask}, at=i)
    return {0: dets}


def converging_detectors(seeds=(0, 1, 2), checks=12, ratios=(0.3, 0.5), windows=(2, 5), threshold=0.1):
    """Detectors fed masks drawn from scores whose noise shrinks over the checks (as training settles);
    10 heads and 20 channels so that both ratios prune exactly p of each."""
    out = {}
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        base_h, base_c = torch.rand(10, generator=gen), torch.rand(20, generator=gen)
        dets = {rule: EarlyBirdDetector(ratios=ratios, threshold=threshold, window=w)
                for rule, w in zip(("consecutive", "window"), windows)}
        for i in range(checks):
            noise = 0.6 * 0.7 ** i
            scores = Scores([LayerScores(base_h + noise * torch.rand(10, generator=gen),
                                         base_c + noise * torch.rand(20, generator=gen))],
                            criterion="magnitude", head_dims=[2])
            masks = dets["consecutive"].draw_masks(scores)
            for det in dets.values():
                det.add_masks(masks, at=i)
        out[seed] = dets
    return out


def test_window_distances_are_the_detectors_recorded_ones():
    dets = converging_detectors()
    for by_rule in dets.values():
        for det in by_rule.values():
            for r in det.ratios:
                recorded = [np.nan if rec.distances[r] is None else rec.distances[r] for rec in det.history]
                np.testing.assert_array_equal(sens.window_distances(det, r), np.array(recorded, dtype=float))


def test_known_sequence_tickets_at_each_threshold():
    frame = sens.threshold_sensitivity(known_detectors(), thresholds=[0.0, 0.1, 0.2, 0.9, 1.0],
                                       epochs={0: EPOCHS})
    got = {(row.rule, row.threshold): (None if not row.found else int(row.check)) for row in frame.itertuples()}
    assert got == {("consecutive", 0.0): 3, ("consecutive", 0.1): 3, ("consecutive", 0.2): 2,
                   ("consecutive", 0.9): 2, ("consecutive", 1.0): 1,
                   ("window", 0.0): 6, ("window", 0.1): 6, ("window", 0.2): 3, ("window", 0.9): 2,
                   ("window", 1.0): 2}
    row = frame[(frame["rule"] == "consecutive") & (frame["threshold"] == 0.2)].iloc[0]
    assert row["epoch"] == EPOCHS[2] and row["at"] == 2
    never = sens.threshold_sensitivity(known_detectors(), thresholds=[0.0], windows={"window": 7})
    assert not never[never["rule"] == "window"]["found"].any(), "window 7 needs 7 checks with distance 0"
    assert never[never["rule"] == "window"]["epoch"].isna().all()


@pytest.mark.parametrize("threshold", [0.02, 0.1, 0.25])
def test_replay_at_the_detectors_threshold_is_the_detectors_ticket(threshold):
    dets = converging_detectors(threshold=threshold)
    frame = sens.threshold_sensitivity(dets, thresholds=[threshold])
    assert len(frame) == 3 * 2 * 2
    for row in frame.itertuples():
        ticket = dets[row.seed][row.rule].ticket(row.ratio)
        assert row.found == (ticket is not None)
        if ticket is not None:
            assert row.check == ticket.check_index and row.at == ticket.at
    assert frame["found"].any(), "the converging masks give some tickets"


def test_default_grid_includes_the_study_thresholds_and_each_detectors():
    grid = sens.default_thresholds()
    assert {0.01, 0.1} <= set(grid) and min(grid) == 0.005 and max(grid) == 0.3 and list(grid) == sorted(grid)
    frame = sens.threshold_sensitivity(converging_detectors(seeds=(0,), threshold=0.123))
    assert 0.123 in set(frame["threshold"]) and set(grid) <= set(frame["threshold"])


def test_a_smaller_threshold_never_gives_an_earlier_ticket():
    frame = sens.threshold_sensitivity(converging_detectors(), thresholds=np.geomspace(0.001, 0.5, 25))
    for _, g in frame.groupby(["seed", "rule", "ratio"]):
        checks = g.sort_values("threshold")["check"].to_numpy()  # NaN (no ticket) is latest of all
        checks = np.where(np.isnan(checks), 10**6, checks)
        assert (np.diff(checks) <= 0).all()
    assert frame["found"].any() and not frame["found"].all()


def test_stability_of_known_tickets():
    frame = sens.ticket_stability(known_detectors(), {0: EPOCHS})
    cons = frame[frame["rule"] == "consecutive"].iloc[0]
    assert cons["check"] == 3 and cons["epoch"] == EPOCHS[3] and cons["final_epoch"] == EPOCHS[-1]
    assert cons["distance_to_final"] == 1.0 and cons["max_distance"] == 1.0  # C vs D: every channel differs
    assert cons["relative_distance_to_final"] == 1.0
    win = frame[frame["rule"] == "window"].iloc[0]
    assert win["check"] == 6 and win["distance_to_final"] == 0 and win["relative_distance_to_final"] == 0


def test_stability_is_zero_for_the_final_mask_and_at_most_2p():
    frame = sens.ticket_stability(converging_detectors(checks=15))
    found = frame[frame["found"]]
    assert len(found) > 0 and found["epoch"].isna().all()  # no epochs given
    assert (found["distance_to_final"] <= 2 * found["ratio"] + 1e-12).all()
    assert (found["max_distance"] == 2 * found["ratio"]).all()  # both masks prune exactly p
    assert (found["relative_distance_to_final"] <= 1 + 1e-12).all()
    assert frame.loc[~frame["found"], "distance_to_final"].isna().all()
    # a detector whose ticket is its last check
    det = EarlyBirdDetector(ratios=(0.5,), threshold=0.0, window=2, distance="channels")
    for mask in (A, B, C, C):
        det.add_masks({0.5: mask})
    row = sens.ticket_stability({7: {"consecutive": det}}).iloc[0]
    assert row["check"] == row["final_check"] == 3 and row["distance_to_final"] == 0


def test_stability_summary_over_seeds():
    frame = sens.ticket_stability(converging_detectors(checks=15))
    summary = sens.stability_summary(frame)
    assert list(summary[["ratio", "rule"]].itertuples(index=False, name=None)) == [
        (0.3, "consecutive"), (0.3, "window"), (0.5, "consecutive"), (0.5, "window")]
    assert (summary["seeds"] == 3).all()
    one = frame[(frame["ratio"] == 0.5) & (frame["rule"] == "window")]
    row = summary[(summary["ratio"] == 0.5) & (summary["rule"] == "window")].iloc[0]
    assert row["found"] == one["found"].sum()
    assert row["max_relative_distance"] == pytest.approx(one["relative_distance_to_final"].max(), nan_ok=True)


def test_pruned_fraction_weighs_like_the_distance():
    mask = eb.Mask((eb.LayerMask((0, 1), (0, 1, 2, 3, 4), 4, 10, head_dim=5),))
    assert sens.pruned_fraction(mask, "heads") == 0.5 and sens.pruned_fraction(mask, "channels") == 0.5
    assert sens.pruned_fraction(mask, "combined") == (2 * 5 + 5) / (4 * 5 + 10)
    other = eb.Mask((eb.LayerMask((2, 3), (5, 6, 7, 8, 9), 4, 10, head_dim=5),))  # prunes what `mask` keeps
    assert eb.mask_distance(mask, other)["combined"] == 1.0 == 2 * sens.pruned_fraction(mask, "combined")


def test_epochs_must_match_the_checks():
    with pytest.raises(ValueError, match="check epochs"):
        sens.ticket_stability(known_detectors(), {0: EPOCHS[:-1]})


def test_table_cells_say_mean_epoch_and_seeds_found():
    frame = sens.threshold_sensitivity(known_detectors(), thresholds=[0.0, 0.2], epochs={0: EPOCHS})
    more = frame.assign(seed=1, found=False, check=math.nan, epoch=math.nan)  # a second seed without tickets
    table = sens.sensitivity_table(pd.concat([frame, more], ignore_index=True))
    assert list(table.columns) == ["threshold", "p=0.5 consecutive", "p=0.5 window"]
    assert list(table["threshold"]) == [0.0, 0.2]
    assert table["p=0.5 consecutive"].tolist() == ["2 (1/2)", "1.5 (1/2)"]
    assert table["p=0.5 window"].tolist() == ["3.5 (1/2)", "2 (1/2)"]
    none = sens.sensitivity_table(sens.threshold_sensitivity(known_detectors(), thresholds=[0.0],
                                                              windows={"window": 9}))
    assert none["p=0.5 window"].tolist() == ["- (0/1)"]


def test_curves_frame_normalises_by_2p():
    curves = sens.distance_curves_frame(known_detectors(), {0: EPOCHS})
    assert curves["distance"].isna().sum() == 1 and curves["epoch"].tolist() == EPOCHS
    assert curves["relative_distance"].tolist()[1:] == [1.0, 0.2, 0.0, 1.0, 0.0, 0.0]


def test_figure_has_two_panels():
    dets = converging_detectors()
    epochs = {s: [0.25 * (i + 1) for i in range(12)] for s in dets}
    frame = sens.threshold_sensitivity(dets, epochs=epochs)
    fig = threshold_sensitivity_figure(frame, sens.distance_curves_frame(dets, epochs), threshold=0.1, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_xscale() == "log" and left.get_xlabel().startswith("threshold")
    assert len([l for l in left.lines if l.get_gid() == "ticket_epoch_line"]) == 4  # 2 ratios x 2 rules
    assert {round(l.get_ydata()[0], 6) for l in right.lines if l.get_gid() == "relative_threshold"} == {
        round(0.1 / 0.6, 6), round(0.1 / 1.0, 6)}
    assert right.get_xlabel() == "epoch"
    unlabelled = threshold_sensitivity_figure(sens.threshold_sensitivity(dets), sens.distance_curves_frame(dets))
    assert unlabelled.axes[1].get_xlabel() == "check"
    never = sens.threshold_sensitivity(dets, thresholds=[0.01], windows={"window": 20})
    legend = [t.get_text() for t in threshold_sensitivity_figure(never, sens.distance_curves_frame(dets)).axes[0]
              .get_legend().get_texts()]
    assert "window rule (no ticket at any threshold)" in legend and "consecutive rule" in legend


@pytest.mark.slow
def test_on_the_ci_results(ci_results):
    for family, result in ci_results.items():
        epochs = sens.check_epochs(result)
        assert set(epochs) == set(result.seeds), family
        frame = sens.threshold_sensitivity(result.detectors, epochs=epochs)
        own = frame[np.isclose(frame["threshold"], result.settings.threshold)]
        assert len(own) == sum(len(d.ratios) for by_rule in result.detectors.values() for d in by_rule.values())
        for row in own.itertuples():
            ticket = result.detectors[row.seed][row.rule].ticket(row.ratio)
            assert row.found == (ticket is not None), family
            if ticket is not None:
                assert row.check == ticket.check_index and row.epoch == epochs[row.seed][ticket.check_index]
        stability = sens.ticket_stability(result.detectors, epochs)
        found = stability[stability["found"]]
        assert (found["distance_to_final"] <= found["max_distance"] + 1e-12).all(), family
        assert np.allclose(found["max_distance"], 2 * found["ratio"], atol=0.1), family
        fig = threshold_sensitivity_figure(frame, sens.distance_curves_frame(result.detectors, epochs),
                                           threshold=result.settings.threshold)
        assert len(fig.axes) == 2
