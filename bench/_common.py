"""What the two benchmarks (prune_speed.py, train_step.py) share: the models they measure, built with the
study's builders at bench sizes; random batches; pruned copies of a dense model; the command-line options,
thread and device set-up; and the description of the machine and the Markdown tables they print.

    model = build_bench_model("gpt2", "small", seed=0)        # ebcore.study.models.build_model, prepared
    batch = make_batch("gpt2", model.config, 32, 128, torch.Generator().manual_seed(1))
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib.metadata
import os
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
import transformers as T
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import ebcore as eb  # noqa: E402
from ebcore.graph import ModelGraph  # noqa: E402
from ebcore.study.families import FAMILIES as REGISTRY, build_model, get_spec  # noqa: E402
from ebcore.study.train import pick_device  # noqa: E402

Batch = dict[str, torch.Tensor]


# --- models and batches ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchModel:
    """A bench model as the study's spec of `profile` with these overrides (see `build_bench_model`)."""

    profile: str
    num_labels: int
    model: dict = field(default_factory=dict)   # transformers config kwargs (FamilySpec.model)
    data: dict = field(default_factory=dict)    # vision: image_size, channels (FamilySpec.data)
    vocab_size: int | None = None                # text only
    pad_token_id: int | None = None


_SMALL_IMAGES = {"image_size": 32, "channels": 3}
_SMALL_TEXT = {"vocab_size": 1000, "num_labels": 2}
_VIT_B16 = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, patch_size=16)
_BASE_TEXT = {
    # gpt2-small: 1024 positions, FFN 4 x 768 (the `paper` spec has 512 positions for its 512-token IMDB runs).
    "gpt2": BenchModel("paper", 2, dict(n_positions=1024, n_inner=None), vocab_size=50257, pad_token_id=50256),
    "roberta": BenchModel("paper", 2, dict(type_vocab_size=1), vocab_size=50265, pad_token_id=1),  # roberta-base
}
SIZES: dict[str, dict[str, BenchModel]] = {
    # CPU-friendly, both benches: hidden 256, 4 layers, 4 heads, FFN 1024; 32 px images; vocab 1000, positions for
    # sequences of up to 512 tokens (prune_speed times 128 and 512).
    "small": {
        "vit": BenchModel("ci", 10, dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                         intermediate_size=1024, patch_size=4), _SMALL_IMAGES),
        "swin": BenchModel("ci", 10, dict(embed_dim=64, depths=[2, 2], num_heads=[2, 4], patch_size=2, window_size=4,
                                          mlp_ratio=4.0), _SMALL_IMAGES),
        "gpt2": BenchModel("ci", model=dict(n_embd=256, n_layer=4, n_head=4, n_inner=1024, n_positions=512),
                           pad_token_id=0, **_SMALL_TEXT),
        "roberta": BenchModel("ci", model=dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                               intermediate_size=1024, max_position_embeddings=514),
                              pad_token_id=1, **_SMALL_TEXT),
    },
    # prune_speed --size base: ViT-B/16 at 224 px, Swin-T at 224 px (the `paper` spec), gpt2-small, roberta-base.
    "base": {
        "vit": BenchModel("paper", 1000, _VIT_B16, {"image_size": 224}),
        "swin": BenchModel("paper", 1000),
        **_BASE_TEXT,
    },
    # train_step --sizes study: ViT-S widths, 12 layers, on 32 px images with patch 4; otherwise as base.
    "study": {
        "vit": BenchModel("paper", 10, dict(num_hidden_layers=12)),
        "swin": BenchModel("paper", 1000),
        **_BASE_TEXT,
    },
}


# the registry's families that have bench sizes (MiniLM is pretrained at one size: not benchmarked)
FAMILIES = tuple(name for name in REGISTRY if name in SIZES["small"])


def build_bench_model(family: str, size: str, seed: int) -> nn.Module:
    """The dense model of `family` at `size` (a key of SIZES, or "tiny": the tests' model of ebcore.tiny, a
    smoke run in seconds), seeded random init, on the CPU, prepared for pruning (GPT-2: Conv1D -> Linear,
    exact), from the study's `get_spec` + `build_model`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    if size == "tiny":
        from ebcore.tiny import tiny_model
        return eb.prepare_model(tiny_model(family, seed))
    bench = SIZES[size][family]
    spec = get_spec(family, bench.profile).with_overrides(model=bench.model, data=bench.data,
                                                          pretrained=False, hub_name=None)
    return build_model(spec, bench.num_labels, bench.vocab_size, bench.pad_token_id, seed)


def make_batch(family: str, config: T.PretrainedConfig, batch_size: int, seq_len: int,
               gen: torch.Generator) -> Batch:
    """Random images [B, C, H, W], or random token sequences [B, seq_len] without padding, then random
    labels [B]; on the CPU."""
    if family in ("vit", "swin"):
        batch = {"pixel_values": torch.randn(batch_size, config.num_channels, config.image_size, config.image_size,
                                             generator=gen)}
    else:
        ids = torch.randint(3, config.vocab_size, (batch_size, seq_len), generator=gen)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    batch["labels"] = torch.randint(0, config.num_labels, (batch_size,), generator=gen)
    if family == "gpt2":
        batch["use_cache"] = False  # classification: no KV cache
    return batch


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def pruned_copies(dense: nn.Module, graph: ModelGraph, ratios: Sequence[float], aligns: Sequence[int] = (1,),
                  **mask_options: object) -> dict[tuple[float, int], nn.Module]:
    """Pruned copies of `dense`, one per (ratio, align), from one magnitude scoring of its `graph`: layerwise
    masks with heads and FFN channels both at the ratio (`mask_options` go to `mask_from_scores`);
    `prune_model` verifies each against its mask."""
    scores = eb.score_model(graph)
    head_dims = [b.head_dim for b in graph.blocks]
    out = {}
    for ratio in ratios:
        for align in aligns:
            mask = eb.mask_from_scores(scores, ratio, head_dims=head_dims, align=align, **mask_options)
            model = copy.deepcopy(dense)
            eb.prune_model(model, mask)
            out[(ratio, align)] = model
    return out


# --- command line and machine ---------------------------------------------------------------------

def bench_parser(doc: str, families_optional: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the options both benchmarks take (`families_optional`: --families may be empty)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--families", nargs="*" if families_optional else "+", choices=FAMILIES, default=list(FAMILIES))
    ap.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5])
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads and return the device --device names (`ebcore.study.train.pick_device`)."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return pick_device(args.device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- timing and the efficiency goal -------------------------------------------------------------

def interleaved_times(calls: dict[str, Callable[[], object]], device: torch.device, warmup: int,
                      repeats: int, min_repeats: int, cell_seconds: float) -> dict[str, list[float]]:
    """Seconds per call of each entry, the entries taking turns in every round (A/B/C/A/B/C...).

    `warmup` untimed rounds come first (only one when a round takes over a quarter of `cell_seconds`);
    then as many timed rounds as fit in `cell_seconds`, at least `min_repeats`, at most `repeats`."""
    def one_round() -> dict[str, float]:
        out = {}
        for name, call in calls.items():
            sync(device)
            start = time.perf_counter()
            call()
            sync(device)
            out[name] = time.perf_counter() - start
        return out

    round_s = sum(one_round().values())
    for _ in range(warmup - 1):
        if round_s > cell_seconds / 4:
            break
        round_s = sum(one_round().values())
    n = max(min_repeats, min(repeats, math.ceil(cell_seconds / max(round_s, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(n):
        for name, t in one_round().items():
            times[name].append(t)
    return times


# GFLOPs per dense batch from which the efficiency goal is judged (a judgement, stated before the runs): on
# this CPU a small model's op overhead is ~1 ms against ~20-50 GFLOP/s; a GPU does 1 GFLOP in microseconds
# but launches each kernel in ~5 us, so a forward needs hundreds of GFLOPs before arithmetic dominates.
MIN_GFLOPS = {"cpu": 1.0, "cuda": 500.0}


def judged(gflops_batch: float, args: argparse.Namespace, device: torch.device) -> bool:
    """Whether the efficiency goal applies: the dense batch does at least --min-gflops of work (below that a
    forward is bound by per-op overhead, not arithmetic, and fewer FLOPs cannot show as time)."""
    return gflops_batch >= min_gflops(args, device)


def min_gflops(args: argparse.Namespace, device: torch.device) -> float:
    if args.min_gflops is not None:
        return args.min_gflops
    return MIN_GFLOPS.get(device.type, MIN_GFLOPS["cuda"])


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), or what `platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_line() -> str:
    """The load average (runnable processes over 1, 5, 15 minutes): how shared the cores were."""
    with contextlib.suppress(OSError, AttributeError):
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return "load average unknown"


def machine_lines(device: torch.device) -> list[str]:
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"platform: {platform.platform()} ({platform.machine()}), python {platform.python_version()}",
        f"cpu: {cpu_name()}, os.cpu_count()={os.cpu_count()}, "
        f"torch threads={torch.get_num_threads()}, {load_line()}",
        f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"torch {torch.__version__}, transformers {T.__version__}, "
        f"torch-pruning {importlib.metadata.version('torch-pruning')}",  # tp.__version__ says 1.6.0 in 1.6.1
    ]


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
