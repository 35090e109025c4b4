"""One run of the pipeline, in its own folder (ebcore.study.paths): the watched dense run of a seed, or one
run of a ticket or a control, pruned or at dense widths, trained the way its plan says (ebcore.study.plans:
its start, its steps, its schedule, the AdamW state it carries).

A finished run (result.json) is reused, its costs recomputed from the dense run's record so that
accounting fixes need no retraining; an interrupted one resumes from its checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pandas as pd
from safetensors.torch import load_file
from torch import nn

from ..detector import EarlyBirdDetector
from ..masks import mask_distance
from ..io import load_pruned, save_pruned
from ..measure import folder_bytes, scored_weight_elements
from ..surgery import prune_model
from . import paths
from .config import Settings
from .costs import measure_model, scoring_flops
from .families import build_model
from .dense_watch import DenseRunWatch, ticket_summary
from .carry import load_ticket_optimizer_state
from .kinds import FRESH_SEED_OFFSET, MODES, RUN_KINDS, MaskSources
from .plans import RetrainPlan, eb_total_flops, retrain_plan
from .progress import announce, run_label
from .specs import FamilySpec
from .splits import Data
from .train import CHECKPOINT_NAME, TrainConfig, TrainResult, evaluate, pick_device, train

RULES = ("consecutive", "window")  # the study's rule (window 2) and Early-Bird's (window `Settings.window`)


def _train_config(s: Settings, seed: int, epochs: int | None = None, checks: bool = True) -> TrainConfig:
    t = s.spec.train.loop_kwargs()
    if epochs is not None:
        t["epochs"] = epochs
    return TrainConfig(**t, seed=seed, device=s.device, progress=s.progress, precision=s.precision,
                       check_every_steps=s.check_every_steps if checks else None)


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
    samples = result.samples_seen if trained else 0
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
    return record | {"run_dir": str(run_dir), "reused": False}


def _load_result(run_dir: Path, redo: bool = False) -> dict | None:
    """A finished run's record; None when unfinished (or when `redo`: the folder is then emptied)."""
    if redo and run_dir.is_dir():
        import shutil
        shutil.rmtree(run_dir)
        return None
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


def run_dense(s: Settings, data: Data, seed: int, redo: bool = False) -> dict:
    """Train the dense baseline while the detectors of both rules watch every ratio (the control ratios are
    among them: ExperimentConfig checks); reuse a finished run."""
    spec = s.spec
    params = {"kind": "dense", "spec": spec.key(), "seed": seed, "ratios": s.ratios,
              "threshold": s.threshold, "window": s.window, "rule": s.rule, "scope": s.scope,
              "criterion": s.criterion, "distance": s.distance, "check": s.check_every_steps,
              "precision": s.precision, "align": s.align,
              "ticket_files": "weights+optimizer", "threads": s.threads}   # `continue` carries AdamW's state from the ticket
    run_dir = paths.dense_run_folder(s.seed_dir(seed), params)
    done = _load_result(run_dir, redo)
    label = run_label(spec.family, "dense", seed)
    if done is not None:
        announce(f"{label}: reusing the finished run {run_dir.name}; {ticket_summary(done['watch'], s.rule)}")
        return done | {"run_dir": str(run_dir), "reused": True}
    _start(run_dir, params)
    windows = {"consecutive": 2, "window": s.window}
    detectors = {rule: EarlyBirdDetector(s.ratios, s.threshold, windows[rule], s.scope,
                                         s.criterion, s.distance, align=s.align)
                 for rule in RULES}
    watch = DenseRunWatch(detectors, s.rule, run_dir / paths.TICKETS_DIR, s.check_every_steps,
                           train_size=len(data.train), batch_size=spec.train.batch_size)
    model = build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    result = train(model, data.train, replace(_train_config(s, seed), description=label), data.val, [watch],
                   checkpoint_dir=run_dir)
    elements = scored_weight_elements(result.model)
    scoring = scoring_flops(s.criterion, elements)
    state = watch.state_dict()
    state.pop("grad_sum")
    extra = {"kind": "dense", "mode": "dense", "ratio": 0.0, "seed": seed, "watch": state,
             "scoring_flops_per_check": scoring, "scored_elements": elements}
    record = _finish(run_dir, result.model, result, data, spec, extra, s.precision)
    record["scoring_flops"] = scoring * len(watch.check_samples)
    record["total_flops"] = record["train_flops"] + record["scoring_flops"]
    announce(f"{label}: {ticket_summary(state, s.rule)}")
    return _write_result(run_dir, record)


def ticket_info(dense: dict, rule: str, ratio: float) -> dict:
    """The ticket of `rule` for `ratio`; when none appeared, the last check (flagged `found=False`)."""
    watch = dense["watch"]
    det = EarlyBirdDetector.from_state_dict(watch["detectors"][rule])
    other_rule = "window" if rule == "consecutive" else "consecutive"
    other = EarlyBirdDetector.from_state_dict(watch["detectors"][other_rule])
    t = det.ticket(ratio)
    index, found = (t.check_index, True) if t is not None else (len(det.history) - 1, False)
    rules = {rule: det.ticket(ratio), other_rule: other.ticket(ratio)}
    epochs_at = lambda t: watch["check_epochs"][t.check_index] if t else None  # noqa: E731
    return {
        "mask": det.history[index].masks[ratio], "check_index": index, "found": found,
        "at": det.history[index].at, "epoch_fraction": watch["check_epochs"][index],
        "seconds_to_ticket": watch["check_seconds"][index],
        "samples_to_ticket": watch["check_samples"][index],
        "ticket_epoch_consecutive": epochs_at(rules["consecutive"]),
        "ticket_epoch_window": epochs_at(rules["window"]),
        "late_mask": det.history[-1].masks[ratio],
        # stability: how far the ticket's mask is from the last check's (0 = it never moved again; at most 2p)
        "ticket_to_final": mask_distance(det.history[index].masks[ratio], det.history[-1].masks[ratio])[det.distance],
    }


def fresh_model(s: Settings, data: Data, seed: int) -> nn.Module:
    """A randomly initialized model of the family (seeded): built from its config even where the family starts
    from pretrained weights (MiniLM), so that "from scratch" never means "from the pretrained weights"."""
    model = build_model(s.spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)
    if not s.spec.pretrained:
        return model
    import torch
    from ..adapters import prepare_model
    torch.manual_seed(seed)
    return prepare_model(type(model)(model.config))


def _starting_model(s: Settings, data: Data, dense: dict, plan: RetrainPlan, ratio: float,
                    untrained: Callable[[], nn.Module]) -> nn.Module:
    """The model a run starts from, before pruning."""
    seed = dense["seed"]
    if plan.start == "init":
        return untrained()
    if plan.start == "fresh":
        return fresh_model(s, data, seed + FRESH_SEED_OFFSET)
    if plan.start == "final":
        final = Path(dense["run_dir"]) / paths.MODEL_DIR
        if not final.is_dir():
            raise FileNotFoundError(f"{final} is missing: prune-at-convergence needs the dense run's final model; "
                                    "delete the dense run's folder to retrain it")
        return load_pruned(final).train()
    ticket_file = paths.ticket_weights(Path(dense["run_dir"]) / paths.TICKETS_DIR, ratio)
    if not ticket_file.is_file():
        raise FileNotFoundError(f"{ticket_file} is missing: mode 'continue' needs the weights saved when the "
                                "ticket appeared (the dense run's folder was cleaned?); delete the dense run's "
                                "folder to retrain it, or use mode 'scratch'")
    model = untrained()
    model.load_state_dict(load_file(str(ticket_file)), strict=True)
    return model


def run_pruned(s: Settings, data: Data, dense: dict, kind: str, mode: str, ratio: float, redo: bool = False,
               done: list[dict] | None = None) -> dict:
    """Train one run of kind `kind` (ebcore.study.kinds.RUN_KINDS): a ticket or a control, pruned or at dense
    widths, in `mode`; reuse a finished run. `done`: this seed's runs so far (the same-FLOPs baseline reads the
    EB pipeline's FLOPs from them)."""
    spec, seed, run_kind = s.spec, dense["seed"], RUN_KINDS[kind]
    info = ticket_info(dense, s.rule, ratio)
    untrained = lambda: build_model(spec, data.num_labels, data.vocab_size, data.pad_token_id, seed=seed)  # noqa: E731
    mask = (run_kind.mask(MaskSources(info["mask"], info["late_mask"], ratio, seed, s.align, s.scope, untrained))
            if run_kind.mask is not None else None)
    retrain = MODES.get(mode) if run_kind.start is None else None
    search, search_flops, search_seconds = run_kind.search_cost(dense, info, retrain)
    plan = retrain_plan(s, data, kind, mode, info, eb_total_flops(s, done), dense["train_flops_per_sample"])
    params = {"kind": kind, "mode": mode, "ratio": ratio, "mask": mask.hash() if mask is not None else None,
              "spec": spec.key(), "precision": s.precision, "threads": s.threads, "seed": seed, **plan.as_params(),
              "ticket_check": info["check_index"] if plan.start == "ticket" else None,
              **({"init": "random, from the config"} if plan.start == "fresh" and spec.pretrained else {}),
              "dense": Path(dense["run_dir"]).name}
    run_dir = paths.pruned_run_folder(s.seed_dir(seed), kind, mode, ratio, params)
    extra = {"kind": kind, "mode": mode, "ratio": ratio, "seed": seed, "search": search,
             "search_seconds": search_seconds, "search_flops": search_flops,
             "mask_hash": mask.hash() if mask is not None else None,
             "sparsity": mask.sparsity()["combined"] if mask is not None else 0.0,
             "ticket_found": info["found"] if search == "ticket" or run_kind.role == "ticket" else None,
             "start": plan.start, "schedule": ("follow" if plan.carry_optimizer else "own")}
    if run_kind.role == "ticket":  # where the mask came from; controls have none
        extra.update(ticket_check=info["check_index"], ticket_at=info["at"],
                     ticket_epoch=info["epoch_fraction"], ticket_epoch_consecutive=info["ticket_epoch_consecutive"],
                     ticket_epoch_window=info["ticket_epoch_window"], ticket_to_final=info["ticket_to_final"])
    done_record = _load_result(run_dir, redo)
    label = run_label(spec.family, f"{kind} {mode}", seed, ratio)
    if done_record is not None:  # costs are recomputed from the dense run, so accounting fixes need no retraining
        announce(f"{label}: reusing the finished run {run_dir.name}")
        return done_record | extra | {"total_flops": done_record["train_flops"] + search_flops,
                                      "run_dir": str(run_dir), "reused": True}
    _start(run_dir, params)
    if mask is not None:
        (run_dir / paths.MASK_FILE).write_text(mask.to_json())
    model = _starting_model(s, data, dense, plan, ratio, untrained)
    optimizer_state = None
    if plan.carry_optimizer and mask is not None:
        optimizer_state = load_ticket_optimizer_state(
            paths.ticket_optimizer(Path(dense["run_dir"]) / paths.TICKETS_DIR, ratio), model, mask)
    if mask is not None:
        prune_model(model, mask)
    if plan.epochs == 0:
        result, model = None, model.to(pick_device(s.device))
    else:
        config = replace(_train_config(s, seed, plan.epochs, checks=False), description=label,
                         max_steps=plan.max_steps, schedule_start=plan.schedule_start,
                         schedule_steps=plan.schedule_steps, first_epoch=plan.first_epoch)
        result = train(model, data.train, config, data.val, checkpoint_dir=run_dir, optimizer_state=optimizer_state)
        model = result.model
    record = _finish(run_dir, model, result, data, spec, extra, s.precision)
    record["total_flops"] = record["train_flops"] + search_flops
    return _write_result(run_dir, record)
