"""What the Taylor criterion's gradient sum should span: every step since training began ("cumulative",
the study's default) or only the steps since the previous check ("interval"). One fine-tuning run of the
study's bert family (MiniLM, pretrained, Rotten Tomatoes; the profile's sizes, lr and check schedule)
with two `DenseRunWatch`es on it, one per mode: both sum the same gradients of the same steps and score
the same weights at the same checks (watchers never change training: `ebcore.watch.rng_untouched`, the
real `.grad` restored), so the modes differ only in the sum.

Prints, per check: the consecutive mask distance under each mode at p=0.3 and 0.5, the distance of
each check's mask to the run's final mask of that mode (stability), and to a reference neither mode
drew: the Taylor mask of the trained model with the gradient summed over one pass of the training split
at the final weights (eval mode, no update; what the trained model's |w · g| ranks); then the tickets each rule finds
(consecutive: window 2; window: the profile's window; the family's threshold) and the last check at which
each mode's masks still moved by more than the threshold. Writes one CSV row per check, mode and ratio.

    .venv/bin/python bench/taylor_sum.py                      # bert, cpu profile, seed 0
    .venv/bin/python bench/taylor_sum.py --profile ci --epochs 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from ebcore.detector import EarlyBirdDetector  # noqa: E402
from ebcore.masks import mask_distance  # noqa: E402
from ebcore.study.config import ExperimentConfig, Settings  # noqa: E402
from ebcore.study.dense_watch import DenseRunWatch  # noqa: E402
from ebcore.study.families import build_model  # noqa: E402
from ebcore.study.splits import load_data  # noqa: E402
from ebcore.study.train import TrainConfig, train  # noqa: E402
from ebcore.masks import Mask  # noqa: E402
from ebcore.watch import GRADIENT_SUMS, TicketWatch  # noqa: E402

HERE = Path(__file__).resolve().parent
RULES = ("consecutive", "window")
SHOWN = (0.3, 0.5)  # ratios printed per check (all watched ratios go to the CSV)
LOOSE = 0.05        # a second, looser level for "when do the masks stop moving" (the rules use the threshold)


def make_watch(s: Settings, mode: str, train_size: int) -> DenseRunWatch:
    """The study's dense watcher (both rules, the study's detector settings) with gradient sum `mode`."""
    windows = {"consecutive": 2, "window": s.window}
    detectors = {rule: EarlyBirdDetector(s.ratios, s.threshold, windows[rule], s.scope, s.criterion,
                                         s.distance, align=s.align) for rule in RULES}
    return DenseRunWatch(detectors, s.rule, None, s.check_every_steps, train_size=train_size,
                         batch_size=s.batch_size, gradient_sum=mode)


def reference_masks(model: nn.Module, s: Settings, train_data, seed: int) -> dict[float, Mask]:
    """Taylor masks of the trained `model` with the gradient summed over one pass of `train_data` (batches of
    the profile's size, eval mode: no dropout, no update); the run's RNG and `.grad` are left as they were."""
    det = EarlyBirdDetector(s.ratios, s.threshold, 2, s.scope, s.criterion, s.distance, align=s.align)
    watch = TicketWatch({"reference": det}, sum_gradients=True)
    device, was_training = next(model.parameters()).device, model.training
    saved = {name: p.grad for name, p in model.named_parameters()}
    model.eval()
    order = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(seed))
    try:
        for i in range(0, len(order), s.batch_size):
            idx = order[i:i + s.batch_size]
            model.zero_grad(set_to_none=True)
            model(**{k: v[idx].to(device) for k, v in train_data.tensors.items()}).loss.backward()
            watch.accumulate_gradients(model)
        return watch.draw(model)
    finally:
        model.train(was_training)
        for name, p in model.named_parameters():
            p.grad = saved[name]


def rows_of(watch: DenseRunWatch, mode: str, distance: str, reference: dict[float, Mask]) -> list[dict]:
    """One row per check and ratio: consecutive distance, distances to the final and to the reference
    mask, whether a ticket appeared there."""
    det = watch.watch.detectors["consecutive"]
    final = det.history[-1].masks
    out = []
    for i, rec in enumerate(det.history):
        for r in det.ratios:
            row = {"mode": mode, "check": i, "step": rec.at, "epoch": watch.check_epochs[i], "ratio": r,
                   "consecutive": rec.consecutive[r],
                   "to_final": mask_distance(rec.masks[r], final[r])[distance],
                   "to_reference": mask_distance(rec.masks[r], reference[r])[distance]}
            for rule in RULES:
                t = watch.watch.detectors[rule].ticket(r)
                row[f"ticket_{rule}"] = t is not None and t.check_index == i
            out.append(row)
    return out


def settled_at(df: pd.DataFrame, threshold: float) -> float | None:
    """The epoch of the first check from which on the consecutive distance never exceeds `threshold` (None:
    it did at the last check)."""
    moved = df[df["consecutive"].fillna(1.0) > threshold]
    last = int(moved["check"].max()) if len(moved) else -1
    after = df[df["check"] == last + 1]
    return None if after.empty else float(after["epoch"].iloc[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="bert")
    ap.add_argument("--profile", default="cpu", help="study profile: sizes, lr, check schedule (cpu, ci)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the profile's epochs (shorter run)")
    ap.add_argument("--out", type=Path, default=None, help="CSV (default bench/taylor_sum_<family>_<profile>.csv)")
    args = ap.parse_args()

    cfg = ExperimentConfig(args.family, profile=args.profile, criterion="taylor", epochs=args.epochs)
    s = cfg.resolve()
    data = load_data(s.spec, seed=args.seed)
    watches = {mode: make_watch(s, mode, len(data.train)) for mode in GRADIENT_SUMS}
    model = build_model(s.spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=args.seed)
    config = TrainConfig(**s.spec.train.loop_kwargs(), seed=args.seed, device=s.device, progress=False,
                         precision=s.precision, check_every_steps=s.check_every_steps)
    print(f"{args.family}, {args.profile} profile, seed {args.seed}: {len(data.train)} training samples, "
          f"{s.epochs} epochs of batch {s.batch_size}, lr {s.lr:g}, check every {s.check_every_steps} steps; "
          f"criterion taylor, scope {s.scope}, distance {s.distance}, threshold {s.threshold:g}, "
          f"windows 2 and {s.window}; one training, one watcher per gradient sum {GRADIENT_SUMS}")
    start = time.perf_counter()
    result = train(model, data.train, config, data.val, list(watches.values()))
    wall = time.perf_counter() - start
    val = result.history["val_accuracy"].iloc[-1]
    print(f"trained in {wall:.0f} s (scoring: " + ", ".join(f"{m} {w.search_seconds:.1f} s" for m, w in watches.items())
          + f"); final val accuracy {val:.3f}")

    reference = reference_masks(result.model, s, data.train, args.seed)
    df = pd.DataFrame([row for mode, w in watches.items() for row in rows_of(w, mode, s.distance, reference)])
    out = args.out or HERE / f"taylor_sum_{args.family}_{args.profile}.csv"
    df.to_csv(out, index=False, float_format="%.4f")

    fmt = lambda v: "   -  " if v is None or pd.isna(v) else f"{v:6.3f}"  # noqa: E731
    modes = list(watches)
    cols = [f"{m[:3]}@{r:g}" for r in SHOWN for m in modes]
    print("\nconsecutive distance (to the previous check) | to the final mask of the mode | to the reference mask;"
          " * = a ticket (window 2) here, + = a ticket (window " + f"{s.window}) here")
    print(f"{'check':>5} {'step':>5} {'epoch':>6}  " + "  |  ".join([" ".join(f"{c:>7}" for c in cols)] * 3))
    for i in sorted(df["check"].unique()):
        at = df[(df["check"] == i) & (df["mode"] == modes[0])].iloc[0]
        cons, fin, ref = [], [], []
        for r in SHOWN:
            for m in modes:
                row = df[(df["check"] == i) & (df["mode"] == m) & (df["ratio"] == r)].iloc[0]
                mark = ("*" if row["ticket_consecutive"] else " ") + ("+" if row["ticket_window"] else " ")
                cons.append(fmt(row["consecutive"]) + mark[0])
                fin.append(fmt(row["to_final"]) + mark[1])
                ref.append(fmt(row["to_reference"]) + " ")
        print(f"{i:>5} {at['step']:>5} {at['epoch']:>6.3f}  "
              + "  |  ".join(" ".join(f"{c:>7}" for c in part) for part in (cons, fin, ref)))

    print("\nper mode and ratio: tickets (epoch, distance), when the masks stop moving (consecutive distance at"
          " most the threshold, and at most " + f"{LOOSE:g}, from then on), means over the last half of the checks,"
          " the final mask's distance to the reference, the distance between the two modes' final masks")
    last = {m: w.watch.detectors["consecutive"].history[-1].masks for m, w in watches.items()}
    for r in s.ratios:
        between = mask_distance(last[modes[0]][r], last[modes[1]][r])[s.distance]
        for m, w in watches.items():
            part = df[(df["mode"] == m) & (df["ratio"] == r)]
            tickets = []
            for rule in RULES:
                t = w.watch.detectors[rule].ticket(r)
                tickets.append(f"{rule}: " + ("none" if t is None else
                                              f"epoch {w.check_epochs[t.check_index]:.3g} ({t.distance:.3f})"))
            half = part[part["check"] >= part["check"].max() / 2]
            settle = [settled_at(part, level) for level in (s.threshold, LOOSE)]
            print(f"  p={r:g} {m:>10}: {'; '.join(tickets)}; consecutive distance "
                  + ", ".join(f"<= {level:g} "
                              + ("never (not at the last check)" if at is None else f"from epoch {at:.3g} on")
                              for level, at in zip((s.threshold, LOOSE), settle))
                  + f"; last half of the checks: mean consecutive {half['consecutive'].mean():.3f}, mean to reference "
                  f"{half['to_reference'].mean():.3f}; final mask to reference {part['to_reference'].iloc[-1]:.3f}; "
                  f"the two modes' final masks apart {between:.3f}")
    print(f"\nwrote {out}; wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
