"""Cost measurements of a model: parameters, FLOPs per sample, training memory, size on disk.

Training memory is measured on both devices: on CUDA the device allocator's peak over one AdamW step
(torch.cuda.max_memory_allocated), on CPU the peak of the CPU allocator's event stream over a steady-state
AdamW step (torch's profiler, ebcore.cpu_memory). Each comes with a `memory_kind` that says which. The
former CPU estimate (16 bytes per fp32 parameter + autograd-saved activations) is kept as
`estimated_training_memory`, for comparison only.
"""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import UnsupportedModelError, describe


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"model must be a torch.nn.Module, got {describe(model)}")
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _first_rows(batch: dict, n: int) -> dict:
    return {k: v[:n] if torch.is_tensor(v) else v for k, v in batch.items()}


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


@torch.no_grad()
def flops_per_sample(model: nn.Module, batch: dict) -> int:
    """Forward FLOPs (multiply-add = 2) for one sample, counted by torch's FlopCounterMode.

    Counted on an eager-attention copy: PyTorch has no FLOP formula for the CPU SDPA kernel, which
    would leave the attention matmuls out.
    """
    counted = copy.deepcopy(model).eval()
    with contextlib.suppress(Exception):  # families without an SDPA path are eager already
        counted.set_attn_implementation("eager")
    device = next(counted.parameters()).device
    sample = _to(_first_rows({k: v for k, v in batch.items() if k != "labels"}, 1), device)
    with FlopCounterMode(display=False) as counter:
        counted(**sample)
    return int(counter.get_total_flops())


def train_flops_per_sample(model: nn.Module, batch: dict) -> int:
    """Training FLOPs for one sample: forward + backward (loss included), counted exactly by torch's
    FlopCounterMode on an eager-attention copy of `model` (the optimizer update is not counted)."""
    counted = copy.deepcopy(model).train()
    with contextlib.suppress(Exception):
        counted.set_attn_implementation("eager")
    device = next(counted.parameters()).device
    sample = _to(_first_rows(batch, 1), device)
    with FlopCounterMode(display=False) as counter:
        loss = counted(**sample).loss
        loss.backward()
    return int(counter.get_total_flops())


def scored_weight_elements(model: nn.Module) -> int:
    """Elements of the weights a scoring pass reads (q/k/v/o, fc1 (and gate)/fc2 of every block): a magnitude
    pass costs about 2 FLOPs per element (square and add), a Taylor pass 3 (plus the product)."""
    from .adapters import get_adapter
    total = 0
    for block in get_adapter(model).blocks(model):
        for lin in (*block.qkv, block.o_proj, *block.ffn_in, block.fc2):
            total += lin.weight.numel()
    return total


def activation_bytes(model: nn.Module, batch: dict) -> int:
    """Bytes of the tensors autograd saves for backward in one training forward on `batch`."""
    device = next(model.parameters()).device
    batch = _to(batch, device)
    total = 0
    seen: set[int] = set()

    def pack(t: torch.Tensor):
        nonlocal total
        key = id(t.untyped_storage()) if t.device.type != "meta" else id(t)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    was_training = model.training
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(**batch)
    del out
    model.train(was_training)
    return total


def estimated_training_memory(model: nn.Module, batch: dict) -> int:
    """An estimate, not a measurement: 16 bytes per parameter (fp32 weights, gradients, AdamW's two moments)
    plus the bytes autograd saves for backward on `batch`. Smaller models score lower by construction."""
    return 16 * count_parameters(model) + activation_bytes(model, batch)


CPU_MEMORY_KIND = "cpu_allocator_peak (steady-state AdamW step, profiler)"
CUDA_MEMORY_KIND = "cuda_max_allocated (one AdamW step)"


def training_memory(model: nn.Module, batch: dict) -> tuple[int, str]:
    """Peak training memory of one AdamW step on `batch` (which holds the labels), measured, and its kind.

    CUDA: torch.cuda.max_memory_allocated over one step on `model` itself with lr=0 (its weights stay as
    they were; weight decay scales by 1 - lr * wd = 1); everything on the device counts. CPU: the peak bytes
    held by torch's CPU allocator during a steady-state step (AdamW's moments already made) on a copy of
    `model`: its parameters, buffers, the batch, the moments, gradients and activations (ebcore.cpu_memory).
    The model's mode and the RNG are left as they were; on CUDA its gradients are cleared (set to None).
    """
    device = next(model.parameters()).device
    if device.type != "cuda":
        from .cpu_memory import measure_cpu_training_step
        return measure_cpu_training_step(model, batch).peak_steady_step, CPU_MEMORY_KIND
    was_training = model.training
    with torch.random.fork_rng(devices=[device]):
        model.train()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        opt = torch.optim.AdamW(model.parameters(), lr=0.0)
        loss = model(**_to(batch, device)).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
    model.train(was_training)
    return peak, CUDA_MEMORY_KIND


def folder_bytes(path: str | os.PathLike) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
