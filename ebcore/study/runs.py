"""One run of the pipeline, in its own folder (ebcore.study.paths): the watched dense run of a seed, or one
pruned network (the early-bird ticket or a control) retrained the way its mode says.

A finished run (result.json) is reused, its costs recomputed from the dense run's record so that
accounting fixes need no retraining; an interrupted one resumes from its checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
from safetensors.torch import load_file
from torch import nn

from ..detector import EarlyBirdDetector
from ..io import save_pruned
from ..measure import folder_bytes, scored_weight_elements
from ..surgery import prune_model
from . import paths
from .config import ExperimentConfig
from .costs import measure_model, scoring_flops, search_cost
from .families import build_model
from .progress import announce, run_label
from .retrain import MODES, MaskSources, retrain_epochs, run_mask, search_kind
from .specs import FamilySpec
from .splits import Data
from .train import CHECKPOINT_NAME, TrainConfig, TrainResult, evaluate, pick_device, train
from .watching import EarlyBirdWatch, ticket_summary

RULES = ("consecutive", "window")  # the study's rule (window 2) and Early-Bird's (window `cfg.window`)


def _train_config(cfg: ExperimentConfig, spec: FamilySpec, seed: int, epochs: int | None = None,
                  checks: bool = True) -> TrainConfig:
    t = spec.train.loop_kwargs()
    if epochs is not None:
        t["epochs"] = epochs
    return TrainConfig(**t, seed=seed, device=cfg.device, progress=cfg.progress, precision=cfg.effective_precision,
                       check_every_steps=cfg.effective_check_every if checks else None)


def _untrained_history(model: nn.Module, data: Data, batch_size: int, precision: str) -> pd.DataFrame:
    """The one-row history of a model that was not retrained (no epoch trained, no time, no samples)."""
    val = evaluate(model, data.val, batch_size * 2, next(model.parameters()).device, precision=precision)
    return pd.DataFrame([{"epoch": -1, "train_loss": float("nan"), "val_loss": val["loss"],
                          "val_accuracy": val["accuracy"], "lr": 0.0, "epoch_seconds": 0.0,
                          "cumulative_seconds": 0.0, "step": 0}])


def _finish(run_dir: Path, model: nn.Module, result: TrainResult | None, data: Data, spec: FamilySpec,
            extra: dict, precision: str = "fp32") -> dict:
    """Test, measure and save the final model; the run's record (result.json is written by the caller)."""
    batch_size = spec.train.batch_size
    test = evaluate(model, data.test, batch_size * 2, next(model.parameters()).device, precision=precision)
    trained = result is not None
    hist = result.history if trained else _untrained_history(model, data, batch_size, precision)
    measured = measure_model(model, data.batch(batch_size))
    samples = len(hist) * len(data.train) if trained else 0
    record = {
        **extra,
        "test_accuracy": test["accuracy"], "test_loss": test["loss"], "test_size": len(data.test),
        "best_val_accuracy": float(hist["val_accuracy"].max()),
        "final_val_accuracy": float(hist["val_accuracy"].iloc[-1]),
        "train_seconds": float(hist["cumulative_seconds"].iloc[-1]),
        "epochs_trained": int(len(hist)) if trained else 0,
        "samples_seen": samples,
        "train_flops": samples * measured["train_flops_per_sample"],
        **measured,
        "disk_bytes": folder_bytes(save_pruned(model, run_dir / paths.MODEL_DIR, overwrite=True)),
        "history": hist.to_dict(orient="list"),
    }
    (run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # finished: the model is in run_dir/model
    return record


def _write_result(run_dir: Path, record: dict) -> dict:
    (run_dir / paths.RESULT_FILE).write_text(json.dumps(record, indent=1, default=float))
    return record | {"run_dir": str(run_dir)}


def _load_result(run_dir: Path) -> dict | None:
    path = run_dir / paths.RESULT_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
    return None


def _start(run_dir: Path, params: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / paths.PARAMS_FILE).write_text(json.dumps(params, indent=1, default=str))


def run_dense(cfg: ExperimentConfig, spec: FamilySpec, data: Data, seed: int) -> dict:
    """Train the dense baseline while the detectors of both rules watch; reuse a finished run."""
    params = {"kind": "dense", "spec": spec.key(), "seed": seed, "ratios": cfg.ratios,
              "threshold": cfg.effective_threshold, "window": cfg.window, "rule": cfg.rule, "scope": cfg.scope,
              "criterion": cfg.effective_criterion, "distance": cfg.distance, "check": cfg.effective_check_every,
              "precision": cfg.effective_precision, "align": cfg.effective_align}
    run_dir = paths.dense_run_folder(cfg.seed_dir(seed), params)
    done = _load_result(run_dir)
    label = run_label(spec.family, "dense", seed)
    if done is not None:
        announce(f"{label}: reusing the finished run {run_dir.name}; {ticket_summary(done['watch'], cfg.rule)}")
        return done | {"run_dir": str(run_dir)}
    _start(run_dir, params)
    windows = {"consecutive": 2, "window": cfg.window}
    detectors = {rule: EarlyBirdDetector(cfg.ratios, cfg.effective_threshold, windows[rule], cfg.scope,
                                         cfg.effective_criterion, cfg.distance, align=cfg.effective_align)
                 for rule in RULES}
    watch = EarlyBirdWatch(detectors, cfg.rule, run_dir / paths.TICKETS_DIR, cfg.effective_check_every,
                           train_size=len(data.train), batch_size=spec.train.batch_size)
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    result = train(model, data.train, replace(_train_config(cfg, spec, seed), description=label), data.val, [watch],
                   checkpoint_dir=run_dir)
    elements = scored_weight_elements(result.model)
    scoring = scoring_flops(cfg.effective_criterion, elements)
    state = watch.state_dict()
    state.pop("grad_sum")
    extra = {"kind": "dense", "mode": "dense", "ratio": 0.0, "seed": seed, "watch": state,
             "scoring_flops_per_check": scoring, "scored_elements": elements}
    record = _finish(run_dir, result.model, result, data, spec, extra, cfg.effective_precision)
    record["scoring_flops"] = scoring * len(watch.check_samples)
    record["total_flops"] = record["train_flops"] + record["scoring_flops"]
    announce(f"{label}: {ticket_summary(state, cfg.rule)}")
    return _write_result(run_dir, record)


def ticket_info(dense: dict, cfg: ExperimentConfig, ratio: float) -> dict:
    """The ruling ticket for `ratio`; when none appeared, the last check (flagged `found=False`)."""
    watch = dense["watch"]
    det = EarlyBirdDetector.from_state_dict(watch["detectors"][cfg.rule])
    other_rule = "window" if cfg.rule == "consecutive" else "consecutive"
    other = EarlyBirdDetector.from_state_dict(watch["detectors"][other_rule])
    t = det.ticket(ratio)
    index, found = (t.check_index, True) if t is not None else (len(det.history) - 1, False)
    rules = {cfg.rule: det.ticket(ratio), other_rule: other.ticket(ratio)}
    epochs_at = lambda t: watch["check_epochs"][t.check_index] if t else None  # noqa: E731
    return {
        "mask": det.history[index].masks[ratio], "check_index": index, "found": found,
        "at": det.history[index].at, "epoch_fraction": watch["check_epochs"][index],
        "seconds_to_ticket": watch["check_seconds"][index],
        "samples_to_ticket": watch["check_samples"][index],
        "ticket_epoch_consecutive": epochs_at(rules["consecutive"]),
        "ticket_epoch_window": epochs_at(rules["window"]),
        "late_mask": det.history[-1].masks[ratio],
    }


def run_pruned(cfg: ExperimentConfig, spec: FamilySpec, data: Data, dense: dict, kind: str, mode: str,
               ratio: float) -> dict:
    """Retrain one pruned network: kind 'early_bird' or a control's name; reuse a finished run."""
    seed = dense["seed"]
    info = ticket_info(dense, cfg, ratio)
    untrained = lambda: build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)  # noqa: E731
    mask = run_mask(kind, MaskSources(info["mask"], info["late_mask"], ratio, seed, cfg.effective_align, cfg.scope,
                                      untrained))
    retrain = MODES[mode]
    search = search_kind(kind, retrain)
    epochs = retrain_epochs(retrain, spec.train.epochs, info["epoch_fraction"])
    params = {"kind": kind, "mode": mode, "ratio": ratio, "mask": mask.hash(), "spec": spec.key(),
              "precision": cfg.effective_precision, "seed": seed, "epochs": epochs,
              "start": info["check_index"] if retrain.start == "ticket" else None,
              "dense": Path(dense["run_dir"]).name}
    run_dir = paths.pruned_run_folder(cfg.seed_dir(seed), kind, mode, ratio, params)
    search_flops, search_seconds = search_cost(dense, info, search)
    extra = {"kind": kind, "mode": mode, "ratio": ratio, "seed": seed, "search": search,
             "search_seconds": search_seconds, "search_flops": search_flops,
             "mask_hash": mask.hash(), "sparsity": mask.sparsity()["combined"],
             "ticket_found": info["found"] if search == "ticket" else None}
    if kind == "early_bird":  # where the mask came from; controls have none
        extra.update(ticket_check=info["check_index"], ticket_at=info["at"],
                     ticket_epoch=info["epoch_fraction"], ticket_epoch_consecutive=info["ticket_epoch_consecutive"],
                     ticket_epoch_window=info["ticket_epoch_window"])
    done = _load_result(run_dir)
    label = run_label(spec.family, f"{kind} {mode}", seed, ratio)
    if done is not None:  # costs are recomputed from the dense run, so accounting fixes need no retraining
        announce(f"{label}: reusing the finished run {run_dir.name}")
        return done | extra | {"total_flops": done["train_flops"] + search_flops, "run_dir": str(run_dir)}
    _start(run_dir, params)
    (run_dir / paths.MASK_FILE).write_text(mask.to_json())
    model = untrained()
    if retrain.start == "ticket":
        ticket_file = paths.ticket_weights(Path(dense["run_dir"]) / paths.TICKETS_DIR, ratio)
        if not ticket_file.is_file():
            raise FileNotFoundError(f"{ticket_file} is missing: mode 'continue' needs the weights saved when the "
                                    "ticket appeared (the dense run's folder was cleaned?); delete the dense run's "
                                    "folder to retrain it, or use mode 'scratch'")
        model.load_state_dict(load_file(str(ticket_file)), strict=True)
    prune_model(model, mask)
    if epochs == 0:
        result, model = None, model.to(pick_device(cfg.device))
    else:
        result = train(model, data.train, replace(_train_config(cfg, spec, seed, epochs, checks=False),
                                                  description=label), data.val, checkpoint_dir=run_dir)
        model = result.model
    record = _finish(run_dir, model, result, data, spec, extra, cfg.effective_precision)
    record["total_flops"] = record["train_flops"] + search_flops
    return _write_result(run_dir, record)
