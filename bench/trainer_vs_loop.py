"""Own loop vs Hugging Face Trainer for the study's runs, measured: one training path, decided by numbers.

    PYTHONPATH=. .venv/bin/python bench/trainer_vs_loop.py   # everything: 7 min on the loaded 2-core box
    PYTHONPATH=. .venv/bin/python bench/trainer_vs_loop.py --sections overhead --reps 12

The study trains through ebcore.study.train (+ ebcore.study.dense_watch.DenseRunWatch); users train through
`transformers.Trainer` + `ebcore.hf.EarlyBirdCallback`. This script runs the study's dense run and its
early-bird `continue` run both ways (the Trainer as bench/trainer_path.StudyTrainer: same AdamW settings,
warm-up + cosine schedule, batch size, seed and data order) at the `ci` size, and measures:

- `equivalence`: final weights, per-check masks, tickets (consecutive and window rule), curves and FLOPs
  of the dense run, loop vs Trainer, and the Trainer run twice (determinism); then the `continue` run
  (ticket weights, pruned, trained for the rest of the budget) both ways; and the Trainer's own way
  (EarlyBirdCallback action="prune": prune in place, same optimizer and schedule) for reference;
- `resume`: Trainer runs interrupted before and after the prune, resumed with the callback's documented
  steps (add_early_bird with the same settings, prepare_resume, train(resume_from_checkpoint=...)), every
  tensor and the final loss compared with the uninterrupted run; the loop's own resume beside it;
- `overhead`: whole runs (per-epoch validation, no watcher: the watcher is the same TicketWatch code in
  both) of the loop and the Trainer, interleaved A/B/B/A over repetitions on the same model and batches;
  ratios of the median step interval and of the whole call, at the ci and the cpu model size.
Prints Markdown tables and writes them to bench/trainer_vs_loop.md (--out).
"""
from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file
from transformers.utils import logging as hf_logging

from _common import machine_lines, to_markdown  # noqa: F401  (also puts the checkout on sys.path)
from ebcore.defaults import WINDOW
from ebcore.detector import EarlyBirdDetector
from ebcore.hf import add_early_bird, prepare_resume
from ebcore.masks import Mask
from ebcore.measure import train_flops_per_sample
from ebcore.study import paths
from ebcore.study.families import build_model, get_spec
from ebcore.study.kinds import MODES, retrain_epochs
from ebcore.study.splits import load_data
from ebcore.study.train import Callback, TrainConfig, train
from ebcore.study.dense_watch import DenseRunWatch as EarlyBirdWatch
from ebcore.surgery import prune_model
from trainer_path import StepClock, WeightsAtTicket, curves_from_log, study_trainer

RATIOS, RATIO = (0.1, 0.3, 0.5), 0.3


# --- shared pieces --------------------------------------------------------------------------------

def setup(family: str, seed: int, profile: str = "ci"):
    spec = get_spec(family, profile)
    return spec, load_data(get_spec(family, "ci"), seed)


def fresh(spec, data, seed: int) -> torch.nn.Module:
    return build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)


def loop_config(spec, seed: int, epochs: int | None = None, checks: bool = False) -> TrainConfig:
    kw = spec.train.loop_kwargs() | ({"epochs": epochs} if epochs else {})
    return TrainConfig(**kw, seed=seed, progress=False, device="cpu",
                       check_every_steps=spec.train.check_every_steps if checks else None)


def same_tensors(a: dict, b: dict) -> dict:
    """How many tensors of two state dicts are bitwise equal, the largest difference, the names that differ."""
    keys = sorted(a.keys() | b.keys())
    shared = [k for k in keys if k in a and k in b and a[k].shape == b[k].shape]
    equal = [k for k in shared if torch.equal(a[k], b[k])]
    diff = max(((a[k].float() - b[k].float()).abs().max().item() for k in shared), default=0.0)
    return {"tensors_equal": f"{len(equal)}/{len(keys)}", "max_abs_diff": diff,
            "differ": sorted(set(keys) - set(equal))}


def last_loss(log_history: list[dict]) -> tuple[float | None, float | None]:
    train_loss = [e["loss"] for e in log_history if "loss" in e]
    val_loss = [e["eval_loss"] for e in log_history if "eval_loss" in e]
    return (train_loss[-1] if train_loss else None), (val_loss[-1] if val_loss else None)


def hashes(det: EarlyBirdDetector) -> list[str]:
    return [";".join(rec.masks[r].hash() for r in sorted(rec.masks)) for rec in det.history]


def window_ticket(masks_per_check: list[dict[float, Mask]], threshold: float) -> int | None:
    """Check index of Early-Bird's window-rule ticket at RATIO, replayed from recorded masks."""
    det = EarlyBirdDetector(RATIOS, threshold, WINDOW)
    for i, masks in enumerate(masks_per_check):
        det.add_masks(masks, i)
    t = det.ticket(RATIO)
    return None if t is None else t.check_index


# --- the study's dense run, both ways -------------------------------------------------------------

def loop_dense(spec, data, seed: int, ticket_dir: Path):
    detectors = {rule: EarlyBirdDetector(RATIOS, spec.threshold, window, criterion=spec.criterion)
                 for rule, window in (("consecutive", 2), ("window", WINDOW))}
    watch = EarlyBirdWatch(detectors, "consecutive", ticket_dir, spec.train.check_every_steps, len(data.train),
                           spec.train.batch_size)
    result = train(fresh(spec, data, seed), data.train, loop_config(spec, seed, checks=True), data.val, [watch])
    return result, watch


def trainer_dense(spec, data, seed: int, out: Path, action: str = "save_mask", save_steps: int | None = None,
                  native_keys: bool = False):
    trainer = study_trainer(fresh(spec, data, seed), spec.train, seed, out, data.train, data.val,
                            save_steps=save_steps, native_keys=native_keys)
    eb = add_early_bird(trainer, ratio=RATIO, ratios=RATIOS, threshold=spec.threshold, window=2, action=action,
                        criterion=spec.criterion, check_every_steps=spec.train.check_every_steps)
    grab = WeightsAtTicket(eb)
    trainer.add_callback(grab)
    trainer.train()
    return trainer, eb, grab


def equivalence(family: str, seed: int, tmp: Path) -> dict:
    spec, data = setup(family, seed)
    steps_per_epoch = -(-len(data.train) // spec.train.batch_size)
    res, watch = loop_dense(spec, data, seed, tmp / "tickets")
    runs = [trainer_dense(spec, data, seed, tmp / f"hf{i}") for i in (1, 2)]
    (tr1, eb1, grab1), (tr2, eb2, _) = runs
    loop_det = watch.watch.detectors["consecutive"]
    lh, th1, th2 = hashes(loop_det), hashes(eb1.detector), hashes(eb2.detector)
    n = min(len(lh), len(th1))
    lt, tt = loop_det.ticket(RATIO), eb1.detector.ticket(RATIO)
    loop_hist = res.history
    curves = curves_from_log(tr1.state.log_history, steps_per_epoch, spec.train)
    per_sample = train_flops_per_sample(res.model, data.batch(spec.train.batch_size))
    # samples seen: the loop's record counts epochs x train size; under the Trainer the same from its global step
    loop_samples = len(loop_hist) * len(data.train)
    hf_samples = watch.samples_at(tr1.state.global_step, steps_per_epoch)
    row = {
        "family": family, "steps": tr1.state.global_step,
        "dense_weights_loop_vs_hf": same_tensors(res.model.state_dict(), tr1.model.state_dict())["tensors_equal"],
        "dense_weights_hf_vs_hf": same_tensors(tr1.model.state_dict(), tr2.model.state_dict())["tensors_equal"],
        "checks_loop/hf": f"{len(lh)}/{len(th1)}",
        "masks_equal": f"{sum(a == b for a, b in zip(lh[:n], th1[:n]))}/{n}",
        "masks_hf_rerun": "same" if th1 == th2 else "differ",
        "ticket_check_loop/hf": f"{lt.check_index if lt else None}/{tt.check_index if tt else None}",
        "ticket_label_loop/hf": f"{lt.at if lt else None}/{tt.at if tt else None}",  # epoch index vs state.epoch
        "window_ticket_loop/hf": f"{_idx(watch.watch.detectors['window'].ticket(RATIO))}/"
                                 f"{window_ticket([r.masks for r in eb1.detector.history], spec.threshold)}",
        "curve_max_diff_loss": float((loop_hist["train_loss"] - curves["train_loss"]).abs().max()),
        "curve_max_diff_val_acc": float((loop_hist["val_accuracy"] - curves["val_accuracy"]).abs().max()),
        "curve_max_diff_lr": float((loop_hist["lr"] - curves["lr"]).abs().max()),
        "lr_logged_vs_loop": float((loop_hist["lr"] - curves["lr_logged"]).abs().max()),
        "samples_loop/hf": f"{loop_samples}/{hf_samples}",
        "train_flops_loop/hf": f"{loop_samples * per_sample:.3g}/{hf_samples * per_sample:.3g}",
        "hf_total_flos": f"{tr1.state.total_flos:.3g}",
    }
    row.update(continue_runs(spec, data, seed, tmp, watch, grab1, eb1, loop_det))
    return row


def _idx(t) -> int | None:
    return None if t is None else t.check_index


def continue_runs(spec, data, seed: int, tmp: Path, watch: EarlyBirdWatch, grab: WeightsAtTicket, eb, loop_det
                  ) -> dict:
    """The study's `continue` run (ticket weights, pruned, trained for the rest of the budget) both ways,
    and the Trainer's in-run prune (action='prune') for reference."""
    t = loop_det.ticket(RATIO)
    index = t.check_index if t else len(loop_det.history) - 1
    epochs = retrain_epochs(MODES["continue"], spec.train.epochs, watch.check_epochs[index])
    mask = loop_det.history[index].masks[RATIO]
    out = {"continue_epochs": epochs}
    if epochs == 0 or t is None or grab.weights is None:
        why = "no ticket" if t is None else f"ticket at the last check ({epochs} epochs left)"
        return out | {"continue_weights_loop_vs_hf": f"{why}: nothing to retrain"}
    loop_w = load_file(str(paths.ticket_weights(tmp / "tickets", RATIO)))
    out["ticket_weights_loop_vs_hf"] = same_tensors(loop_w, grab.weights)["tensors_equal"]
    model = fresh(spec, data, seed)
    model.load_state_dict(loop_w)
    prune_model(model, mask)
    res = train(model, data.train, loop_config(spec, seed, epochs), data.val)
    model = fresh(spec, data, seed)
    model.load_state_dict(grab.weights)
    prune_model(model, Mask.from_dict(eb.ticket_mask))
    tr = study_trainer(model, spec.train, seed, tmp / "hf_cont", data.train, data.val, epochs=epochs)
    tr.train()
    out["continue_weights_loop_vs_hf"] = same_tensors(res.model.state_dict(), tr.model.state_dict())["tensors_equal"]
    out["continue_val_acc_loop/hf"] = (f"{res.history['val_accuracy'].iloc[-1]:.4f}/"
                                       f"{last_eval_acc(tr.state.log_history):.4f}")
    tp, ep, _ = trainer_dense(spec, data, seed, tmp / "hf_prune", action="prune")
    out["inrun_prune_step"] = ep.pruned_step
    out["inrun_prune_val_acc"] = f"{last_eval_acc(tp.state.log_history):.4f}"
    return out


def last_eval_acc(log_history: list[dict]) -> float:
    return [e["eval_accuracy"] for e in log_history if "eval_accuracy" in e][-1]


# --- resume ---------------------------------------------------------------------------------------

class StopAfterEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.epoch:
            state.stop_training = True


def loop_resume(family: str, seed: int, tmp: Path) -> dict:
    spec, data = setup(family, seed)
    full = train(fresh(spec, data, seed), data.train, loop_config(spec, seed), data.val)
    ckpt = tmp / "loop_ckpt"
    stop = spec.train.epochs // 2 - 1  # interrupted after half the epochs
    train(fresh(spec, data, seed), data.train, loop_config(spec, seed), data.val, [StopAfterEpoch(stop)],
          checkpoint_dir=ckpt)
    resumed = train(fresh(spec, data, seed), data.train, loop_config(spec, seed), data.val, checkpoint_dir=ckpt)
    cmp = same_tensors(full.model.state_dict(), resumed.model.state_dict())
    return {"family": family, "path": "loop", "run": "dense",
            "interrupted_at": f"end of epoch {stop + 1} of {spec.train.epochs}",
            "tensors_equal": cmp["tensors_equal"], "max_abs_diff": cmp["max_abs_diff"],
            "final_val_loss_full/resumed": f"{full.history['val_loss'].iloc[-1]:.6f}/"
                                           f"{resumed.history['val_loss'].iloc[-1]:.6f}",
            "load_messages": ""}


class CatchLogs(logging.Handler):
    """Warnings the Trainer and transformers log while loading a checkpoint (missing / unexpected keys)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0][:140])


def trainer_resume(family: str, seed: int, tmp: Path, save_steps: int = 4, native_keys: bool = False
                   ) -> list[dict]:
    """An action='prune' Trainer run with checkpoints every `save_steps` steps, resumed from the last
    checkpoint before the prune and the first one after it, with the documented steps. `native_keys`:
    checkpoints written under the model's own parameter names (works around the ViT/Swin key defect)."""
    spec, data = setup(family, seed)
    path = "trainer, native-key ckpt" if native_keys else "trainer"
    full, eb, _ = trainer_dense(spec, data, seed, tmp / "full", action="prune", save_steps=save_steps,
                                native_keys=native_keys)
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp / "full").glob("checkpoint-*"))
    pruned = eb.pruned_step
    picks = {"before prune": max((s for s in steps if s < full.state.max_steps and (pruned is None or s < pruned)),
                                 default=None),
             "after prune": min((s for s in steps if pruned is not None and pruned < s < full.state.max_steps),
                                default=None)}
    rows = []
    for label, step in picks.items():
        if step is None:
            rows.append({"family": family, "path": path, "run": "prune in run", "interrupted_at": label,
                         "tensors_equal": "no such checkpoint"})
            continue
        catch = CatchLogs()
        loggers = [logging.getLogger(n) for n in ("transformers", "ebcore")]
        for lg in loggers:
            lg.addHandler(catch)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr = study_trainer(fresh(spec, data, seed), spec.train, seed, tmp / f"resumed{step}", data.train,
                               data.val, save_steps=save_steps, native_keys=native_keys)
            add_early_bird(tr, ratio=RATIO, ratios=RATIOS, threshold=spec.threshold, window=2, action="prune",
                           criterion=spec.criterion, check_every_steps=spec.train.check_every_steps)
            ckpt = prepare_resume(tr, tmp / "full" / f"checkpoint-{step}")
            tr.train(resume_from_checkpoint=ckpt)
        for lg in loggers:
            lg.removeHandler(catch)
        msgs = catch.messages + [str(w.message).splitlines()[0][:140] for w in caught
                                 if "key" in str(w.message).lower() or "missing" in str(w.message).lower()]
        cmp = same_tensors(full.model.state_dict(), tr.model.state_dict())
        (fl, fv), (rl, rv) = last_loss(full.state.log_history), last_loss(tr.state.log_history)
        rows.append({"family": family, "path": path, "run": f"prune in run (step {pruned})",
                     "interrupted_at": f"{label}: checkpoint-{step}", "tensors_equal": cmp["tensors_equal"],
                     "max_abs_diff": cmp["max_abs_diff"],
                     "final_val_loss_full/resumed": f"{fv:.6f}/{rv:.6f}",
                     "final_train_loss_full/resumed": f"{fl:.6f}/{rl:.6f}",
                     "differ": ", ".join(cmp["differ"][:3]) + (" ..." if len(cmp["differ"]) > 3 else ""),
                     "load_messages": " | ".join(m[:70] + "..." for m in dict.fromkeys(msgs))})
    return rows


# --- overhead ---------------------------------------------------------------------------------------

class LoopClock(Callback):
    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, state) -> None:
        self.stamps.append(time.perf_counter())


def median_step(stamps: list[float]) -> float:
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def overhead(family: str, profile: str, seed: int, reps: int, epochs: int, tmp: Path) -> dict:
    spec, data = setup(family, seed, profile)  # the profile's model and hyper-parameters on the ci batches
    model0 = fresh(spec, data, seed)

    def loop_run() -> tuple[float, float]:
        clock = LoopClock()
        start = time.perf_counter()
        train(copy.deepcopy(model0), data.train, loop_config(spec, seed, epochs), data.val, [clock])
        return time.perf_counter() - start, median_step(clock.stamps)

    setups: list[float] = []

    def trainer_run() -> tuple[float, float]:
        clock = StepClock()
        start = time.perf_counter()
        tr = study_trainer(copy.deepcopy(model0), spec.train, seed, tmp / "oh", data.train, data.val,
                           epochs=epochs)
        setups.append(time.perf_counter() - start)  # building the TrainingArguments and the Trainer
        tr.add_callback(clock)
        tr.train()
        return time.perf_counter() - start, median_step(clock.stamps)

    loop_run(), trainer_run()  # warm-up
    step_ratio, call_ratio, loop_steps, extra = [], [], [], []
    for rep in range(reps):
        order = (loop_run, trainer_run) if rep % 2 == 0 else (trainer_run, loop_run)
        got = {f.__name__: f() for f in order}
        (lc, ls), (tc, ts) = got["loop_run"], got["trainer_run"]
        step_ratio.append(ts / ls)
        call_ratio.append(tc / lc)
        loop_steps.append(ls)
        extra.append(tc - lc)
    q = lambda xs: statistics.quantiles(xs, n=4)  # noqa: E731
    steps = epochs * -(-len(data.train) // spec.train.batch_size)
    return {"family": family, "model size": profile, "params": sum(p.numel() for p in model0.parameters()),
            "batch": spec.train.batch_size, "steps/run": steps, "reps": reps,
            "step ratio hf/loop (median)": statistics.median(step_ratio),
            "step ratio IQR": f"{q(step_ratio)[0]:.3f}-{q(step_ratio)[2]:.3f}",
            "step ratio min-max": f"{min(step_ratio):.3f}-{max(step_ratio):.3f}",
            "run ratio hf/loop (median)": statistics.median(call_ratio),
            "run ratio IQR": f"{q(call_ratio)[0]:.3f}-{q(call_ratio)[2]:.3f}",
            "loop step ms (median)": 1000 * statistics.median(loop_steps),
            "hf extra s per run (median)": statistics.median(extra),
            "hf setup s (median)": statistics.median(setups)}


# --- main -------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", nargs="+", default=["equivalence", "resume", "overhead"],
                    choices=["equivalence", "resume", "overhead"])
    ap.add_argument("--families", nargs="+", default=["vit", "swin", "gpt2", "roberta"],
                    help="families of the equivalence and resume sections (ci size)")
    ap.add_argument("--overhead", nargs="+", default=["vit:ci", "vit:cpu", "roberta:ci"],
                    help="FAMILY:SIZE pairs of the overhead section (the profile's model and batch size)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per overhead run (8 steps each at batch 64)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).with_name("trainer_vs_loop.md")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("transformers").setLevel(logging.WARNING)
    hf_logging.disable_progress_bar()  # "Writing model shards" at every checkpoint
    warnings.filterwarnings("ignore", message=".*callback state.*")  # the loop's StopAfterEpoch is not resumed
    warnings.filterwarnings("ignore", category=FutureWarning)
    parts = ["# trainer_vs_loop", "", *[f"- {line}" for line in machine_lines(torch.device("cpu"))], ""]

    def emit(title: str, rows: list[dict]) -> None:
        table = to_markdown(pd.DataFrame(rows).astype(object).fillna(""), digits=4)
        parts.extend([f"## {title}", "", table, ""])
        print(f"\n## {title}\n\n{table}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_root:
        tmp = Path(tmp_root)
        if "equivalence" in args.sections:
            rows = []
            for fam in args.families:
                start = time.perf_counter()
                rows.append(equivalence(fam, args.seed, tmp / f"eq-{fam}") | {"s": time.perf_counter() - start})
            table = pd.DataFrame([_transpose_ready(r) for r in rows]).set_index("family").T
            emit("equivalence (ci size, seed %d)" % args.seed, table.reset_index(names="quantity").to_dict("records"))
        if "resume" in args.sections:
            rows = []
            for fam in args.families:
                rows.append(loop_resume(fam, args.seed, tmp / f"lr-{fam}"))
                rows.extend(trainer_resume(fam, args.seed, tmp / f"tr-{fam}"))
                if fam in ("vit", "swin"):
                    rows.extend(trainer_resume(fam, args.seed, tmp / f"trn-{fam}", native_keys=True))
            emit("resume (ci size)", rows)
        if "overhead" in args.sections:
            rows = [overhead(fam, size, args.seed, args.reps, args.epochs, tmp / f"oh-{fam}-{size}")
                    for fam, size in (pair.split(":") for pair in args.overhead)]
            emit(f"overhead, interleaved (torch threads {args.threads})", rows)
    Path(args.out).write_text("\n".join(parts))
    print(f"\nwritten: {args.out}")


def _transpose_ready(row: dict) -> dict:
    return {k: (f"{v:.3g}" if isinstance(v, float) else str(v)) for k, v in row.items()}


if __name__ == "__main__":
    main()
