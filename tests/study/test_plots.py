"""Figures of ebcore.study.plots on small synthetic inputs: what each one draws, the edge cases (empty frames,
NaN distances, a single check, float-noise ratios) and save_figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only; the library itself never selects a backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from pathlib import Path  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from ebcore.study import plots  # noqa: E402

NOISY = 0.1 + 0.2  # 0.30000000000000004


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _matrix(n: int, seed: int = 0) -> np.ndarray:
    f = 1 - np.exp(-np.arange(n) / 3)
    m = np.abs(f[:, None] - f[None, :]) + 0.01 * np.random.default_rng(seed).random((n, n))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 0.0)
    return m


def _records(ratios=(0.1, NOISY), n: int = 8, tickets=None) -> pd.DataFrame:
    tickets = tickets or {0.1: 4}
    rows = []
    for r in ratios:
        for i in range(n):
            rows.append({"at": i + 1, "ratio": r,
                         "consecutive_distance": None if i == 0 else 0.5 / (i + 1),
                         "window_distance": np.nan if i < 3 else 0.6 / (i + 1),
                         "is_ticket": tickets.get(round(r, 6)) == i})
    return pd.DataFrame(rows)


def _table() -> pd.DataFrame:
    return pd.DataFrame([
        {"run": "dense", "kind": "dense", "ratio": np.nan, "test_accuracy": 0.85, "time_rel_dense": 1.0,
         "params": 1.1e8},
        {"run": "early-bird p=0.3", "kind": "early_bird", "ratio": NOISY, "test_accuracy": 0.82,
         "time_rel_dense": 0.66, "params": 8.6e7},
        {"run": "early-bird p=0.5", "kind": "early_bird", "ratio": 0.5, "test_accuracy": 0.79,
         "time_rel_dense": 0.52, "params": 7.0e7},
        {"run": "random p=0.3", "kind": "random", "ratio": 0.3, "test_accuracy": 0.80, "time_rel_dense": 0.64,
         "params": 8.6e7},
        {"run": "converged p=0.3", "kind": "converged", "ratio": 0.3, "test_accuracy": 0.83, "time_rel_dense": 1.2,
         "params": 8.6e7},
    ])


def _data_lines(ax) -> list:
    return [ln for ln in ax.get_lines() if ln.get_gid() == "distance_line"]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def _is_no_data(fig: Figure) -> bool:
    return any(t.startswith(plots.NO_DATA) for t in _texts(fig))


# --- helpers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, text", [(NOISY, "0.3"), (0.5, "0.5"), (0.1, "0.1"), (1 / 3, "0.333333"),
                                         (0, "0"), (np.nan, "-")])
def test_format_ratio(value, text):
    assert plots.format_ratio(value) == text


def test_figures_are_not_registered_with_pyplot():
    plots.distance_heatmap(_matrix(4))
    assert plt.get_fignums() == []


def test_save_figure_writes_png(tmp_path):
    fig = plots.distance_heatmap(_matrix(5), list(range(5)), ticket_index=2)
    out = plots.save_figure(fig, tmp_path / "a" / "b" / "heat.png")
    assert out.is_file() and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bare = plots.save_figure(fig, tmp_path / "noext")
    assert bare.suffix == ".png" and bare.read_bytes()[:4] == b"\x89PNG"


# --- 1. heatmaps ------------------------------------------------------------------------------------
def test_distance_heatmap_image_equals_matrix_and_marks_ticket():
    m = _matrix(6)
    fig = plots.distance_heatmap(m, [10, 20, 30, 40, 50, 60], title="t", ticket_index=3, window=2)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    images = ax.get_images()
    assert len(images) == 1 and isinstance(images[0], AxesImage)
    np.testing.assert_allclose(np.asarray(images[0].get_array()), m)
    assert len(fig.axes) == 2  # heatmap + colour bar
    assert fig.axes[1].get_ylabel() == "mask distance"
    markers = [ln for ln in ax.get_lines() if ln.get_gid() == "ticket_marker"]
    assert len(markers) == 1 and markers[0].get_marker() == "*"
    assert list(markers[0].get_xdata()) == [3] and list(markers[0].get_ydata()) == [3]
    assert {p.get_gid() for p in ax.patches} == {"ticket_window", "ticket_box"}
    window = [p for p in ax.patches if p.get_gid() == "ticket_window"][0]
    assert (window.get_x(), window.get_width()) == (1.5, 2)  # checks 2 and 3
    assert plots.distance_heatmap(m, ticket_index=3).axes[0].patches[0].get_gid() == "ticket_box"
    assert "ticket at epoch 40" in ax.get_title()


def test_distance_heatmap_without_ticket_and_thinned_ticks():
    n = 40
    fig = plots.distance_heatmap(_matrix(n), list(range(n)))
    ax = fig.axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_gid() == "ticket_marker"]
    assert not ax.patches
    assert 2 <= len(ax.get_xticks()) <= 12
    assert ax.get_xticklabels()[0].get_text() == "0"


def test_distance_heatmap_accepts_ticket_object_and_given_ax():
    class FakeTicket:
        check_index = 1
    fig0, ax = plt.subplots()
    fig = plots.distance_heatmap(_matrix(3), ax=ax, ticket_index=FakeTicket(), colorbar=False)
    assert fig is fig0 and len(fig.axes) == 1
    assert [ln.get_gid() for ln in ax.get_lines()] == ["ticket_marker"]


def test_distance_heatmap_edge_cases():
    assert _is_no_data(plots.distance_heatmap(np.zeros((0, 0)), []))
    single = plots.distance_heatmap(np.zeros((1, 1)), [5], ticket_index=0)
    np.testing.assert_allclose(np.asarray(single.axes[0].get_images()[0].get_array()), [[0.0]])
    with_nan = _matrix(4)
    with_nan[0, 1] = with_nan[1, 0] = np.nan
    plots.distance_heatmap(with_nan, list(range(4)))
    with pytest.raises(ValueError):
        plots.distance_heatmap(np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError):
        plots.distance_heatmap(_matrix(3), [0, 1])
    with pytest.raises(ValueError):
        plots.distance_heatmap(_matrix(3), ticket_index=3)


def test_distance_heatmaps_one_panel_per_ratio_shared_scale():
    mats = {0.1: _matrix(5, 0), NOISY: _matrix(5, 1) * 0.5, 0.5: _matrix(5, 2)}
    fig = plots.distance_heatmaps(mats, list(range(5)), {0.1: 2, 0.3: 4, 0.5: None}, title_prefix="BERT",
                                  window=5)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 3 and len(fig.axes) == 4  # three heatmaps + one colour bar
    assert [ax.get_title().splitlines()[0] for ax in panels] == ["p = 0.1", "p = 0.3", "p = 0.5"]
    # the noisy 0.30000000000000004 key found its ticket under 0.3
    n_markers = [len([ln for ln in ax.get_lines() if ln.get_gid() == "ticket_marker"]) for ax in panels]
    assert n_markers == [1, 1, 0]
    assert "no ticket" in panels[2].get_title()
    assert [len(ax.patches) for ax in panels] == [2, 2, 0]
    assert len({ax.get_images()[0].get_clim() for ax in panels}) == 1
    assert fig.get_suptitle() == "BERT"


def test_distance_heatmaps_edge_cases():
    assert _is_no_data(plots.distance_heatmaps({}, []))
    fig = plots.distance_heatmaps({0.3: np.zeros((1, 1))}, {0.3: ["e1"]})
    assert len(fig.axes) == 2


# --- 2. distance curves ------------------------------------------------------------------------------
def test_distance_curves_lines_threshold_and_tickets():
    fig = plots.distance_curves(_records(), threshold=0.1, title="d")
    ax = fig.axes[0]
    lines = _data_lines(ax)
    assert len(lines) == 2
    assert len(ax.get_lines()) == 3  # 2 ratios + threshold
    threshold = [ln for ln in ax.get_lines() if ln.get_gid() == "threshold"]
    assert len(threshold) == 1 and threshold[0].get_linestyle() == "--"
    assert list(threshold[0].get_ydata()) == [0.1, 0.1]
    # the first check has no consecutive distance: skipped
    assert len(lines[0].get_xdata()) == 7 and not np.isnan(np.asarray(lines[0].get_ydata(), float)).any()
    stars = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(stars) == 1 and len(stars[0].get_offsets()) == 1
    np.testing.assert_allclose(stars[0].get_offsets()[0], [5, 0.5 / 5])
    assert "epoch 5" in [t.get_text() for t in ax.texts]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["p = 0.1", "p = 0.3", "threshold = 0.1", "ticket"]


def test_distance_curves_window_column_logy_and_threshold_from_frame():
    rec = _records().assign(threshold=0.2)
    fig = plots.distance_curves(rec, column="window_distance", logy=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(_data_lines(ax)[0].get_xdata()) == 5  # NaN until the window is full
    assert [ln.get_gid() for ln in ax.get_lines()].count("threshold") == 1
    assert "window" in ax.get_ylabel()


def test_distance_curves_logy_with_zero_distance_uses_symlog():
    rec = _records()
    rec.loc[rec.index[-1], "consecutive_distance"] = 0.0
    ax = plots.distance_curves(rec, 0.1, logy=True).axes[0]
    assert ax.get_yscale() == "symlog"


def test_distance_curves_edge_cases():
    empty = pd.DataFrame(columns=["at", "ratio", "consecutive_distance", "window_distance", "is_ticket"])
    assert _is_no_data(plots.distance_curves(empty, 0.1))
    single = _records(ratios=(0.5,), n=1, tickets={})  # one check: no distance yet
    assert _is_no_data(plots.distance_curves(single, 0.1))
    two = _records(ratios=(0.5,), n=2, tickets={})
    ax = plots.distance_curves(two, 0.1).axes[0]
    assert len(_data_lines(ax)) == 1 and len(_data_lines(ax)[0].get_xdata()) == 1
    # steps given as strings still plot, on categorical positions
    text_at = _records(n=4).assign(at=lambda d: "step-" + d["at"].astype(str))
    ax = plots.distance_curves(text_at, 0.1, xlabel="step").axes[0]
    assert len(_data_lines(ax)) == 2 and ax.get_xticklabels()[0].get_text() == "step-1"
    with pytest.raises(ValueError):
        plots.distance_curves(_records(), 0.1, column="nope")


# --- 3. accuracy curves ------------------------------------------------------------------------------
def _curves() -> pd.DataFrame:
    rows = []
    for run, top in [("early-bird p=0.3", 0.82), ("dense", 0.85), ("random p=0.3", 0.79)]:
        for e in range(1, 6):
            rows.append({"run": run, "epoch": e, "val_accuracy": top - 0.2 / e})
    rows.append({"run": "random p=0.3", "epoch": 6, "val_accuracy": np.nan})
    return pd.DataFrame(rows)


def test_accuracy_curves_one_line_per_run_dense_emphasised():
    fig = plots.accuracy_curves(_curves(), title="val")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["dense", "early-bird p=0.3", "random p=0.3"]
    dense = lines[0]
    assert matplotlib.colors.to_hex(dense.get_color()) == "#000000"
    assert dense.get_linewidth() > max(ln.get_linewidth() for ln in lines[1:])
    assert lines[2].get_linestyle() == "--" and len(lines[2].get_xdata()) == 5  # NaN row dropped
    assert ax.yaxis.get_major_formatter()(0.8, 0).endswith("%")


def test_accuracy_curves_edge_cases():
    assert _is_no_data(plots.accuracy_curves(pd.DataFrame(columns=["run", "epoch", "val_accuracy"])))
    one = plots.accuracy_curves(pd.DataFrame({"run": ["dense"], "epoch": [1], "val_accuracy": [0.5]}))
    assert len(one.axes[0].get_lines()) == 1


# --- 4. accuracy vs time -----------------------------------------------------------------------------
def test_accuracy_vs_time_one_scatter_per_kind_annotated():
    fig = plots.accuracy_vs_time(_table(), title="t")
    ax = fig.axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [c.get_label() for c in scatters] == ["dense", "early-bird", "random", "prune at convergence + fine-tune"]
    assert [len(c.get_offsets()) for c in scatters] == [1, 2, 1, 1]
    notes = sorted(t.get_text() for t in ax.texts)
    assert notes == ["p=0.3", "p=0.3", "p=0.3", "p=0.5"]  # dense has no ratio; 0.30000000000000004 -> 0.3
    assert ax.get_xlabel() == "training time relative to dense"
    assert ax.yaxis.get_major_formatter()(0.8, 0).endswith("%")


def test_accuracy_vs_time_edge_cases():
    assert _is_no_data(plots.accuracy_vs_time(_table().iloc[:0]))
    nan_time = _table().assign(time_rel_dense=np.nan)
    assert _is_no_data(plots.accuracy_vs_time(nan_time))


# --- 5. accuracy vs ratio ----------------------------------------------------------------------------
def test_accuracy_vs_ratio_lines_dense_and_reference():
    ref = {0.0: 0.8511, 0.1: 0.843, 0.3: 0.8205}
    fig = plots.accuracy_vs_ratio(_table(), title="r", reference=ref)
    ax = fig.axes[0]
    by_gid = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    np.testing.assert_allclose(by_gid["dense"].get_ydata(), [0.85, 0.85])
    assert by_gid["reference"].get_linestyle() == "--"
    np.testing.assert_allclose(by_gid["reference"].get_ydata(), [0.8511, 0.843, 0.8205])
    kinds = [ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("kind_")]
    assert [ln.get_label() for ln in kinds] == ["early-bird", "random", "prune at convergence + fine-tune"]
    eb_x = kinds[0].get_xdata()  # at 0.3 the three kinds are spread around the ratio; alone at 0.5, on it
    assert abs(eb_x[0] - 0.3) < 0.02 and eb_x[0] < kinds[1].get_xdata()[0] < kinds[2].get_xdata()[0]
    assert eb_x[1] == 0.5
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.1", "0.3", "0.5"]


def test_accuracy_vs_ratio_averages_seeds_and_handles_empty():
    seeds = pd.concat([_table(), _table().assign(test_accuracy=lambda d: d["test_accuracy"] - 0.02)])
    ax = plots.accuracy_vs_ratio(seeds).axes[0]
    eb = [ln for ln in ax.get_lines() if ln.get_label() == "early-bird"][0]
    np.testing.assert_allclose(eb.get_ydata(), [0.81, 0.78])
    assert ax.collections  # the 95 % interval is shaded
    assert _is_no_data(plots.accuracy_vs_ratio(_table().iloc[:0]))
    only_ref = plots.accuracy_vs_ratio(_table().iloc[:0], reference={0.0: 0.85, 0.3: 0.82})
    assert [ln.get_gid() for ln in only_ref.axes[0].get_lines()] == ["reference"]


# --- 6. bars -----------------------------------------------------------------------------------------
def test_memory_time_bars_two_panels():
    table = _table()
    fig = plots.memory_time_bars(table, title="cost")
    assert len(fig.axes) == 2
    params_ax, time_ax = fig.axes
    params = [p.get_width() for p in params_ax.patches]
    times = [p.get_width() for p in time_ax.patches]
    np.testing.assert_allclose(params, table["params"])
    np.testing.assert_allclose(times, table["time_rel_dense"])
    assert [t.get_text() for t in params_ax.get_yticklabels()] == list(table["run"])
    assert "1.00×" in [t.get_text() for t in time_ax.texts]


def test_memory_time_bars_given_axes_and_edge_cases():
    fig0, axes = plt.subplots(1, 2)
    table = _table().drop(columns="kind")
    table.loc[1, "params"] = np.nan
    assert plots.memory_time_bars(table, ax=axes) is fig0
    assert "n/a" in [t.get_text() for t in axes[0].texts]
    assert _is_no_data(plots.memory_time_bars(_table().iloc[:0]))
    with pytest.raises(ValueError):
        plots.memory_time_bars(_table(), ax=axes[0])


def test_tickets_at_the_same_check_get_one_label_and_integer_ticks():
    records = pd.DataFrame({"at": [1, 2, 3, 4] * 2, "ratio": [0.1] * 4 + [0.3] * 4,
                            "consecutive_distance": [None, 0.2, 0.05, 0.01] * 2,
                            "is_ticket": [False, False, True, False] * 2})
    fig = plots.distance_curves(records, threshold=0.1)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("epoch 3") == 1, labels
    assert all(float(t).is_integer() for t in ax.get_xticks())


def _seed_table():
    rows = []
    for seed in range(3):
        for run, kind, ratio, acc, cost in (("dense", "dense", 0.0, 0.85, 1.0),
                                            ("early-bird continue p=0.3", "early_bird", 0.3, 0.84, 0.8),
                                            ("random continue p=0.3", "random", 0.3, 0.84, 0.8)):
            rows.append(dict(seed=seed, run=run, kind=kind, ratio=ratio, test_accuracy=acc + 0.005 * seed,
                             flops_rel_dense=cost, param_ratio=cost, memory_ratio=cost))
    return pd.DataFrame(rows)


def test_seed_figures_show_every_seed_and_intervals():
    t = _seed_table()
    fig = plots.accuracy_by_run(t, title="x")
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= 9  # 3 runs x 3 seeds
    assert [tick.get_text() for tick in ax.get_yticklabels()] == list(dict.fromkeys(t.run))
    fig = plots.accuracy_vs_cost(t)
    xs = sorted({round(float(x), 4) for c in fig.axes[0].collections for x, _ in c.get_offsets()})
    assert len(xs) >= 3, "EB and random share a cost but must not hide each other"
    fig = plots.cost_bars(t)
    assert len(fig.axes) == 3 and "memory" in fig.axes[2].get_xlabel()
    assert fig.get_suptitle()


# --- accuracy curves on the global epoch axis -----------------------------------------------------------
@pytest.mark.parametrize("kind, mode, ticket, start", [
    ("dense", "dense", None, 0.0), ("early_bird", "continue", 4.0, 4.0), ("random", "continue", 2.5, 2.5),
    ("converged", "final", None, 10.0), ("same_flops", "scratch", None, 0.0), ("small_dense", "scratch", None, 0.0), ("early_bird", "scratch", 4.0, 0.0), ("early_bird", "finetune", 4.0, 0.0),
    ("oneshot", "finetune", None, 0.0), ("oneshot", "scratch", None, 0.0)])
def test_run_start_epoch(kind, mode, ticket, start):
    assert plots.run_start_epoch(kind, mode, ticket, budget_epochs=10) == start


def test_run_start_epoch_refuses_what_it_cannot_place():
    with pytest.raises(ValueError, match="ticket_epoch"):
        plots.run_start_epoch("early_bird", "continue", np.nan, 10)
    with pytest.raises(ValueError, match="unknown retrain mode"):
        plots.run_start_epoch("early_bird", "rewind", 3, 10)


def _run_table() -> pd.DataFrame:
    """Two seeds of a 10-epoch study: tickets at epochs 4 and 6 (p=0.3), controls without their own ticket."""
    rows = []
    for seed, ticket in ((0, 4.0), (1, 6.0)):
        for run, kind, mode, ratio, t, trained in (
                ("dense", "dense", "dense", 0.0, np.nan, 10),
                ("early-bird continue p=0.3", "early_bird", "continue", 0.3, ticket, 10 - ticket),
                ("random continue p=0.3", "random", "continue", 0.3, np.nan, 10 - ticket),
                ("converged final p=0.3", "converged", "final", 0.3, np.nan, 3),
                ("oneshot scratch p=0.3", "oneshot", "scratch", 0.3, np.nan, 10)):
            rows.append(dict(seed=seed, run=run, kind=kind, mode=mode, ratio=ratio, ticket_epoch=t,
                             ticket_found=True if kind == "early_bird" else None, budget_epochs=10,
                             epochs_trained=trained))
    return pd.DataFrame(rows)


def _run_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Epochs completed within each run (1..epochs_trained), as make_figures passes them."""
    rows = []
    for _, r in table.iterrows():
        for e in range(1, int(r["epochs_trained"]) + 1):
            rows.append(dict(seed=r["seed"], run=r["run"], kind=r["kind"], mode=r["mode"], ratio=r["ratio"],
                             epoch=e, val_accuracy=0.6 + 0.01 * e + 0.02 * r["seed"]))
    return pd.DataFrame(rows)


def test_run_start_epochs_take_the_controls_ticket_from_the_early_bird_row():
    t = _run_table()
    starts = dict(zip(zip(t["seed"], t["kind"]), plots.run_start_epochs(t)))
    assert starts[(0, "random")] == 4.0 and starts[(1, "random")] == 6.0  # the EB ticket of its seed
    assert starts[(0, "converged")] == starts[(1, "converged")] == 10.0
    assert starts[(0, "oneshot")] == starts[(0, "dense")] == 0.0
    lone = t[t["kind"] == "random"].assign(epochs_trained=[3, 5])  # no EB row: budget - epochs trained
    assert list(plots.run_start_epochs(lone)) == [7.0, 5.0]


def test_accuracy_curves_global_epoch_axis_tickets_and_seed_band():
    t = _run_table()
    fig = plots.accuracy_curves(_run_curves(t), table=t, title="c")
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    # a run that starts at the ticket begins after it: seed 0 at epoch 4 + 1, seed 1 at 6 + 1
    assert min(lines["early-bird continue p=0.3"].get_xdata()) == 5
    assert min(lines["random continue p=0.3"].get_xdata()) == 5
    assert min(lines["converged final p=0.3"].get_xdata()) == 11  # after the dense budget, not at epochs 1-3
    assert max(lines["converged final p=0.3"].get_xdata()) == 13
    assert min(lines["oneshot scratch p=0.3"].get_xdata()) == 1 and min(lines["dense"].get_xdata()) == 1
    # where both seeds have the run, the line is their mean
    eb = lines["early-bird continue p=0.3"]
    assert dict(zip(eb.get_xdata(), eb.get_ydata()))[10] == pytest.approx(np.mean([0.6 + 0.06, 0.62 + 0.04]))
    tickets = [ln for ln in ax.get_lines() if ln.get_gid() == "ticket"]
    assert len(tickets) == 1 and tickets[0].get_xdata()[0] == 5.0  # the mean of tickets 4 and 6
    assert "ticket p=0.3" in tickets[0].get_label() and "4–6" in tickets[0].get_label()
    assert [ln.get_gid() for ln in ax.get_lines()].count("budget") == 1
    assert len(ax.collections) >= 5  # a band per run (+ the tickets' range)
    assert "95% CI" in ax.get_legend().get_title().get_text()


def test_accuracy_curves_from_the_committed_gpt2_tables():
    folder = Path(__file__).resolve().parents[2] / "results" / "gpt2" / "cpu"
    if not (folder / "curves.csv").is_file():
        pytest.skip("no committed gpt2 cpu results")
    table, curves = pd.read_csv(folder / "table.csv"), pd.read_csv(folder / "curves.csv")
    fig = plots.accuracy_curves(curves.assign(epoch=curves["epoch"] + 1), table=table)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    budget = int(table["budget_epochs"].iloc[0])
    assert min(lines["converged final p=0.3"].get_xdata()) > budget
    eb = table[(table["kind"] == "early_bird") & (table["ratio"] == 0.3)]
    assert min(lines["early-bird continue p=0.3"].get_xdata()) == eb["ticket_epoch"].min() + 1
    assert max(lines["early-bird continue p=0.3"].get_xdata()) == budget


# --- accuracy vs cost: a colour per ratio, labels apart --------------------------------------------------
def _cost_table() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for run, kind, ratio, acc, cost in (("dense", "dense", 0.0, 0.85, 1.0),
                                            ("early-bird continue p=0.1", "early_bird", 0.1, 0.849, 0.97),
                                            ("early-bird continue p=0.3", "early_bird", 0.3, 0.84, 0.91),
                                            ("early-bird continue p=0.5", "early_bird", 0.5, 0.83, 0.85),
                                            ("random continue p=0.3", "random", 0.3, 0.8395, 0.91),
                                            ("converged final p=0.3", "converged", 0.3, 0.841, 1.2)):
            rows.append(dict(seed=seed, run=run, kind=kind, mode="continue", ratio=ratio, flops_rel_dense=cost,
                             test_accuracy=acc + 0.004 * seed))
    return pd.DataFrame(rows)


def test_accuracy_vs_cost_labels_do_not_overlap_and_ratios_have_their_colours():
    fig = plots.accuracy_vs_cost(_cost_table())
    ax = fig.axes[0]
    fig.draw_without_rendering()
    notes = [c for c in ax.texts if isinstance(c, matplotlib.text.Annotation)]
    assert sorted(n.get_text() for n in notes) == ["EB p=0.1", "EB p=0.3", "EB p=0.5", "converged p=0.3", "random p=0.3"]
    boxes = [n.get_window_extent() for n in notes]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (notes[i].get_text(), notes[j].get_text())
    handles, labels = ax.get_legend_handles_labels()
    colour = {label: matplotlib.colors.to_hex(h[0].get_color()) for h, label in zip(handles, labels)}
    eb = [colour[f"early-bird continue p={r}"] for r in ("0.1", "0.3", "0.5")]
    assert len(set(eb)) == 3 and "#000000" not in eb
    assert colour["random continue p=0.3"] == colour["early-bird continue p=0.3"]  # same ratio, other marker
    marker = {label: h[0].get_marker() for h, label in zip(handles, labels)}
    assert marker["random continue p=0.3"] != marker["early-bird continue p=0.3"]


def test_place_labels_keeps_labels_of_one_point_apart():
    from ebcore.study.plots.labels import place_labels
    fig, ax = plt.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    notes = place_labels(ax, [0.5] * 4, [0.5] * 4, ["first", "second", "third", "fourth"])
    boxes = [n.get_window_extent() for n in notes]
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(4) for j in range(i + 1, 4))
    with pytest.raises(ValueError):
        place_labels(ax, [0.1], [0.1, 0.2], ["x"])


# --- 95 % CI everywhere --------------------------------------------------------------------------------
def test_accuracy_vs_ratio_95ci_for_every_kind_and_dense():
    from ebcore.study.stats import summarize
    t = _cost_table()
    ax = plots.accuracy_vs_ratio(t).axes[0]
    dense = summarize(t.loc[t["kind"] == "dense", "test_accuracy"])
    span = [p for p in ax.patches if p.get_gid() == "dense_ci"]
    assert len(span) == 1
    ys = [span[0].get_y(), span[0].get_y() + span[0].get_height()]
    assert min(ys) == pytest.approx(dense.lo) and max(ys) == pytest.approx(dense.hi)
    random = summarize(t.loc[t["kind"] == "random", "test_accuracy"])
    bars = {c.get_gid(): c.get_segments() for c in ax.collections if str(c.get_gid()).startswith("ci_")}
    assert set(bars) == {"ci_early_bird", "ci_random", "ci_converged"}
    (low, high), = [sorted(p[1] for p in seg) for seg in bars["ci_random"]]
    assert (low, high) == (pytest.approx(random.lo), pytest.approx(random.hi)), "the random control has its 95 % CI"
    assert len(bars["ci_early_bird"]) == 3
    assert "95% CI" in ax.get_legend().get_title().get_text()


def test_accuracy_by_run_explains_the_dense_line():
    ax = plots.accuracy_by_run(_cost_table()).axes[0]
    dense = [ln for ln in ax.get_lines() if ln.get_gid() == "dense_mean"]
    assert len(dense) == 1 and dense[0].get_label().startswith("dense mean")
    assert dense[0].get_label() in [t.get_text() for t in ax.get_legend().get_texts()]


# --- heatmap cells readable at the threshold -----------------------------------------------------------
@pytest.mark.parametrize("threshold, decimals", [(0.01, 3), (0.1, 2), (0.005, 4), (None, 2), (0.25, 3)])
def test_cell_decimals(threshold, decimals):
    from ebcore.study.plots.distances import cell_decimals
    assert cell_decimals(threshold) == decimals


def test_heatmap_cells_tell_the_threshold_boundary_apart():
    m = np.array([[0.0, 0.012, 0.2], [0.012, 0.0, 0.008], [0.2, 0.008, 0.0]])
    fig = plots.distances.distance_heatmap(m, [1, 2, 3], ticket_index=2, threshold=0.01)
    cells = {t.get_text(): t for t in fig.axes[0].texts}
    assert {"0.012", "0.008", "0.200"} <= set(cells)  # 0.012 and 0.008 no longer both read "0.01"
    assert cells["0.008"].get_fontweight() == "bold" and cells["0.008"].get_gid() == "within"
    assert cells["0.012"].get_fontweight() == "normal"
    assert "threshold 0.01" in fig.axes[0].get_title()
    both = plots.distance_heatmaps({0.3: m}, [1, 2, 3], {0.3: 2}, title_prefix="x", threshold=0.01)
    assert "0.008" in [t.get_text() for t in both.axes[0].texts] and "threshold 0.01" in both.get_suptitle()


# --- verdicts across families --------------------------------------------------------------------------
def _verdicts(gap: str, verdicts: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame({
        "claim": ["the ticket appears early (≤ 30% of the budget)", f"the p = 0.3 ticket stays within the study's gap ({gap})",
                  "the ticket beats a random mask of the same size (p = 0.3)"],
        "study / anchor": ["a", "b", "c"],
        "ours (mean ± 95% CI)": ["31% of the budget", f"EB − dense -0.65 ± 0.35 pts ({gap})", "EB − random 0.11 ± 0.10 pts"],
        "verdict": list(verdicts), "rule": ["r", "r", "r"]})


def test_verdict_overview_cells_coloured_by_verdict_with_the_effect():
    frames = {"vit": _verdicts("-3.06 pts", ("inconclusive", "reproduced", "reproduced")),
              "bert": _verdicts("-1.00 pts", ("not reproduced", "inconclusive", "inconclusive")).iloc[:2]}
    fig = plots.verdict_overview(frames, title="cpu")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vit", "bert"]
    rows = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
    assert rows[1] == "the p = 0.3 ticket stays within the study's gap"  # the per-family gap goes to the cells
    assert rows[2].endswith("(p = 0.3)")  # a bound shared by every family stays in the row label
    image = ax.get_images()[0]
    rgba = image.cmap(image.norm(np.asarray(image.get_array())))
    colour = lambda i, j: matplotlib.colors.to_hex(rgba[i, j])  # noqa: E731
    vc = plots.VERDICT_COLORS
    assert [colour(0, 0), colour(1, 0), colour(0, 1), colour(1, 1)] == [
        vc["inconclusive"], vc["reproduced"], vc["not reproduced"], vc["inconclusive"]]
    assert colour(2, 1) == "#ffffff"  # bert has no random-control claim
    cells = {t.get_gid(): t.get_text().replace("\n", " ") for t in ax.texts}
    assert "EB − dense -0.65 ± 0.35 pts" in cells["cell_1_0"] and "-3.06 pts" in cells["cell_1_0"]
    assert "-1.00 pts" in cells["cell_1_1"] and "cell_2_1" not in cells
    assert _is_no_data(plots.verdict_overview({}))
