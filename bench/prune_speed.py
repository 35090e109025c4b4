"""Benchmark: what structured pruning with ebcore buys at inference, and what scoring costs in training.

For each family (ViT, Swin, GPT-2 [GPT2ForSequenceClassification], RoBERTa), built from a config with
seeded random init (no downloads), and each ratio p (default 0.3 and 0.5; layerwise, heads and FFN
channels both at p, magnitude scores), it measures:

- parameter ratio pruned / dense (`ebcore.count_parameters`);
- FLOPs ratio pruned / dense per sample, counted two ways on a batch of one:
  * `torch_pruning.utils.count_ops_and_params` (module hooks: Linear/Conv/LayerNorm MACs; it does not see
    the attention matmuls, which are functional ops; with dict inputs it cannot read the batch size and
    assumes 1, so it is given a batch of one),
  * `torch.utils.flop_counter.FlopCounterMode` (aten ops: every matmul, attention included) on a copy
    switched to eager attention, because the CPU SDPA kernel has no FLOP formula in PyTorch;
  the aten count is the one the speedup is judged against;
- measured inference speedup dense / pruned: one realistic batch (default 32 images, or 32 sequences of
  128 tokens), `torch.inference_mode()`, warm-up forwards, then the dense and pruned models run
  interleaved (dense, p=0.3, p=0.5, dense, p=0.3, p=0.5, ...) for R repeats; speedup = median dense time
  / median pruned time, and efficiency = speedup / (1 / FLOPs ratio) (goal >= 0.9); `speedup_min`, the
  ratio of the fastest times, is shown too as a check on a shared, noisy machine;
- the cost of one scoring pass (`ebcore.score_model(graph)`, the graph built once beforehand; its build
  time is reported separately) relative to one training step (forward + backward + AdamW step on the
  same batch), and as a fraction of an epoch of `--epoch-samples` samples (goal < 1%).

    .venv/bin/python bench/prune_speed.py                    # small: ~40 s on 2 quiet cores, ~4 min shared
    .venv/bin/python bench/prune_speed.py --size base        # ViT-B/16, Swin-T, gpt2-small, roberta-base
    .venv/bin/python bench/prune_speed.py --families vit gpt2 --repeats 30 --threads 1 --out /tmp/r.md

Results are printed and written to `--out` (Markdown) and next to it with a .csv suffix.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib.metadata
import io
import math
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch_pruning as tp
import transformers as T
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import ebcore as eb  # noqa: E402
from ebcore.graph import ModelGraph  # noqa: E402

FAMILIES = ("vit", "swin", "gpt2", "roberta")
Batch = dict[str, torch.Tensor]


# --- models and batches ---------------------------------------------------------------------------

@dataclass
class Workload:
    """A dense model and the batches it is measured on."""

    family: str
    model: nn.Module
    batch: Batch           # the timed batch (B samples)
    labels: torch.Tensor   # labels of that batch, for the training step
    one: Batch             # one sample, for FLOP counting


def build_config(family: str, size: str) -> T.PretrainedConfig:
    """The model config of a family at a size: `small` (CPU-friendly) or `base` (the real models)."""
    small = size == "small"
    if family == "vit":
        if small:
            return T.ViTConfig(image_size=32, patch_size=4, num_channels=3, hidden_size=256, num_hidden_layers=4,
                               num_attention_heads=4, intermediate_size=1024, num_labels=10)
        return T.ViTConfig(num_labels=1000)  # defaults are ViT-B/16 at 224
    if family == "swin":
        if small:
            return T.SwinConfig(image_size=32, patch_size=2, num_channels=3, embed_dim=64, depths=[2, 2],
                                num_heads=[2, 4], window_size=4, mlp_ratio=4.0, num_labels=10)
        return T.SwinConfig(num_labels=1000)  # defaults are Swin-T: 96, [2, 2, 6, 2], [3, 6, 12, 24], window 7
    if family == "gpt2":
        if small:
            return T.GPT2Config(vocab_size=1000, n_positions=128, n_embd=256, n_layer=4, n_head=4, n_inner=1024,
                                pad_token_id=0, bos_token_id=0, eos_token_id=0, num_labels=2)
        return T.GPT2Config(pad_token_id=50256, num_labels=2)  # defaults are gpt2-small
    if family == "roberta":
        if small:
            return T.RobertaConfig(vocab_size=1000, max_position_embeddings=130, hidden_size=256,
                                   num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                                   pad_token_id=1, num_labels=2)
        return T.RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                               bos_token_id=0, eos_token_id=2, num_labels=2)  # roberta-base
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")


MODEL_CLASSES: dict[str, Callable[[T.PretrainedConfig], nn.Module]] = {
    "vit": T.ViTForImageClassification,
    "swin": T.SwinForImageClassification,
    "gpt2": T.GPT2ForSequenceClassification,
    "roberta": T.RobertaForSequenceClassification,
}


def make_batch(family: str, config: T.PretrainedConfig, batch_size: int, seq_len: int,
               gen: torch.Generator) -> Batch:
    """Random images, or random token sequences without padding (all of length `seq_len`)."""
    if family in ("vit", "swin"):
        return {"pixel_values": torch.randn(batch_size, config.num_channels, config.image_size, config.image_size,
                                            generator=gen)}
    ids = torch.randint(3, config.vocab_size, (batch_size, seq_len), generator=gen)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if family == "gpt2":
        batch["use_cache"] = False  # classification: no KV cache
    return batch


def make_workload(family: str, size: str, batch_size: int, seq_len: int, device: torch.device,
                  seed: int) -> Workload:
    config = build_config(family, size)
    torch.manual_seed(seed)
    model = MODEL_CLASSES[family](config).to(device).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    batch = make_batch(family, config, batch_size, seq_len, gen)
    one = {k: v[:1] if torch.is_tensor(v) else v for k, v in batch.items()}
    labels = torch.randint(0, config.num_labels, (batch_size,), generator=gen)
    move = lambda b: {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}  # noqa: E731
    return Workload(family, model, move(batch), labels.to(device), move(one))


# --- measurements ---------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tp_macs(model: nn.Module, inputs: Batch) -> float:
    """Torch-Pruning's op count (MACs of Linear/Conv/LayerNorm modules) for `inputs`."""
    with contextlib.redirect_stdout(io.StringIO()):  # "No positional inputs found ... batch size is 1"
        macs, _ = tp.utils.count_ops_and_params(model, inputs)
    return float(macs)


def aten_flops(model: nn.Module, inputs: Batch) -> float:
    """FLOPs of all aten ops FlopCounterMode knows (matmuls, attention included), on an eager-attention copy."""
    counted = copy.deepcopy(model)
    with contextlib.suppress(Exception):  # families without an SDPA path are eager already
        counted.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        counted(**inputs)
    return float(counter.get_total_flops())


def interleaved_forward_times(models: dict[str, nn.Module], batch: Batch, device: torch.device,
                              warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward of each model, the models taking turns in every repeat."""
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(warmup):
            for model in models.values():
                model(**batch)
        sync(device)
        for _ in range(repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(**batch)
                sync(device)
                times[name].append(time.perf_counter() - start)
    return times


def train_step_seconds(model: nn.Module, batch: Batch, labels: torch.Tensor, device: torch.device,
                       warmup: int, steps: int) -> float:
    """Median seconds of forward + backward + AdamW step on `batch` (a copy of `model` is trained)."""
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def score_seconds(graph: ModelGraph, device: torch.device, repeats: int) -> float:
    """Median seconds of one `ebcore.score_model(graph)` pass."""
    times = []
    for _ in range(repeats + 1):  # the first pass is a warm-up
        sync(device)
        start = time.perf_counter()
        eb.score_model(graph)
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_family(family: str, args: argparse.Namespace, device: torch.device) -> tuple[list[dict], dict]:
    """Rows of the pruning table (one per ratio) and the row of the cost table, for one family."""
    work = make_workload(family, args.size, args.batch_size, args.seq_len, device, args.seed)
    dense = work.model

    start = time.perf_counter()
    graph = ModelGraph.build(dense)  # prepares dense in place (GPT-2 Conv1D -> Linear): timed as pruned
    build_s = time.perf_counter() - start
    score_s = score_seconds(graph, device, args.score_repeats)
    scores = eb.score_model(graph)
    head_dims = [b.head_dim for b in graph.blocks]

    pruned: dict[str, nn.Module] = {}
    for p in args.ratios:
        mask = eb.mask_from_scores(scores, p, head_dims=head_dims)  # layerwise, heads and FFN at p
        model = copy.deepcopy(dense)
        eb.prune_model(model, mask)  # verifies the pruned weights against the mask
        pruned[f"{p:g}"] = model.eval()
    with torch.inference_mode():  # sanity: pruned models still produce finite logits of the same shape
        reference = dense(**work.one).logits
        for key, model in pruned.items():
            out = model(**work.one).logits
            if out.shape != reference.shape or not torch.isfinite(out).all():
                raise RuntimeError(f"{family} pruned at p={key}: bad logits {tuple(out.shape)}")

    dense_params = eb.count_parameters(dense)
    dense_macs, dense_flops = tp_macs(dense, work.one), aten_flops(dense, work.one)
    times = interleaved_forward_times({"dense": dense, **pruned}, work.batch, device, args.warmup, args.repeats)
    t_dense = statistics.median(times["dense"])

    rows = []
    for key, model in pruned.items():
        flops_ratio = aten_flops(model, work.one) / dense_flops
        t_pruned = statistics.median(times[key])
        speedup = t_dense / t_pruned
        rows.append({
            "family": family,
            "p": float(key),
            "params_M": dense_params / 1e6,
            "param_ratio": eb.count_parameters(model) / dense_params,
            "flops_ratio_tp": tp_macs(model, work.one) / dense_macs,
            "flops_ratio": flops_ratio,
            "dense_ms": 1e3 * t_dense,
            "pruned_ms": 1e3 * t_pruned,
            "speedup": speedup,
            "ideal": 1 / flops_ratio,
            "efficiency": speedup * flops_ratio,
            "speedup_min": min(times["dense"]) / min(times[key]),  # best-of: less sensitive to contention
        })

    step_s = train_step_seconds(dense, work.batch, work.labels, device, args.train_warmup, args.train_steps)
    steps_per_epoch = math.ceil(args.epoch_samples / args.batch_size)
    cost = {
        "family": family,
        "GFLOPs/sample": dense_flops / 1e9,
        "graph_build_s": build_s,
        "score_ms": 1e3 * score_s,
        "train_step_ms": 1e3 * step_s,
        "score/step": score_s / step_s,
        "score/epoch_%": 100 * score_s / (steps_per_epoch * step_s),
    }
    return rows, cost


# --- driver ---------------------------------------------------------------------------------------

def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table (pandas' own to_markdown needs `tabulate`, which is not installed)."""
    def cell(v: object) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    cells = [[cell(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(values, widths, numeric)) + " |"
    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric)) + "|"
    return "\n".join([line([str(c) for c in df.columns]), rule] + [line(r) for r in cells])


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), or what `platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_lines(device: torch.device) -> list[str]:
    lines = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"platform: {platform.platform()} ({platform.machine()}), python {platform.python_version()}",
        f"cpu: {cpu_name()}, os.cpu_count()={os.cpu_count()}, "
        f"torch threads={torch.get_num_threads()}",
        f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"torch {torch.__version__}, transformers {T.__version__}, "
        f"torch-pruning {importlib.metadata.version('torch-pruning')}",  # tp.__version__ says 1.6.0 in 1.6.1
    ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--size", choices=("small", "base"), default="small")
    ap.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128, help="tokens per text sequence")
    ap.add_argument("--repeats", type=int, default=15, help="timed interleaved forwards per model")
    ap.add_argument("--warmup", type=int, default=2, help="untimed forwards per model first")
    ap.add_argument("--train-steps", type=int, default=5, help="timed training steps (median)")
    ap.add_argument("--train-warmup", type=int, default=1)
    ap.add_argument("--score-repeats", type=int, default=10)
    ap.add_argument("--epoch-samples", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.md")
    args = ap.parse_args(argv)
    if args.size == "base" and args.seq_len > 512:
        ap.error("--seq-len above 512 does not fit roberta-base's positions")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    warnings.filterwarnings("ignore", module="torch_pruning")
    T.logging.set_verbosity_error()

    header = machine_lines(device)
    header.append(f"size={args.size}, batch={args.batch_size}, seq_len={args.seq_len} (text), ratios={args.ratios}, "
                  f"repeats={args.repeats}, warmup={args.warmup}, epoch={args.epoch_samples} samples "
                  f"= {math.ceil(args.epoch_samples / args.batch_size)} steps")
    print("\n".join(header), flush=True)

    start = time.perf_counter()
    rows, costs = [], []
    for family in args.families:
        t0 = time.perf_counter()
        family_rows, cost = bench_family(family, args, device)
        rows += family_rows
        costs.append(cost)
        print(f"  {family}: {time.perf_counter() - t0:.1f} s", flush=True)
    total_s = time.perf_counter() - start

    speed = pd.DataFrame(rows)
    cost = pd.DataFrame(costs)
    speed_md = to_markdown(speed)
    cost_md = to_markdown(cost)
    text = (
        "\n".join(header) + "\n\n"
        "Pruning (ratios pruned/dense per sample; times are medians of one batch; efficiency = speedup * "
        "flops_ratio, goal >= 0.9; speedup_min = best dense / best pruned time):\n\n" + speed_md + "\n\n"
        "Scoring cost (score_model with a prebuilt graph vs one AdamW training step on the same batch; "
        "goal score/epoch < 1%):\n\n" + cost_md + "\n\n"
        f"total benchmark time: {total_s:.0f} s\n"
    )
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    csv = args.out.with_suffix(".csv")
    merged = speed.merge(cost, on="family")
    merged.to_csv(csv, index=False, float_format="%.4f")
    print(f"wrote {args.out} and {csv}")


if __name__ == "__main__":
    main()
