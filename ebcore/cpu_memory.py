"""Training memory on the CPU, measured: the peak of bytes held by torch's CPU allocator during AdamW steps.

torch's profiler with ``profile_memory=True`` records every allocation and free of the CPU allocator as a
``[memory]`` event (bytes, signed; time-stamped). The running sum of that stream over one step, plus the bytes
live when the step starts that it keeps using (the model's parameter and buffer storages, each counted once
even when tied; the batch; AdamW's moments once they exist), is the step's peak allocated memory, the CPU
counterpart of ``torch.cuda.max_memory_allocated``.

Two steps are measured on a deep copy of the model (the caller's weights, gradients, mode and RNG are left
as they were): the first, which creates AdamW's state lazily, and a steady-state one after it. Allocations
that bypass torch's allocator (oneDNN scratch buffers, Python objects) are not seen.
"""
from __future__ import annotations

import contextlib
import os
import sys

import copy
import gc
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

_STEPS = ("ebcore.memory.first_step", "ebcore.memory.steady_step")


@dataclass(frozen=True)
class StepMemory:
    """Peak bytes allocated on the CPU by one training step (forward, backward, AdamW step, zero_grad).

    ``resident``: bytes live before the first step that it uses (parameters, buffers, batch);
    ``optimizer_state``: bytes of AdamW's state created by the first step (two moments and a step count per
    parameter); ``peak_first_step`` and ``peak_steady_step``: the peak of live bytes within each step, the
    bytes live at its start included.
    """
    resident: int
    optimizer_state: int
    peak_first_step: int
    peak_steady_step: int


def _storage_bytes(tensors, seen: set[int]) -> int:
    """Bytes of the distinct CPU storages of `tensors` not yet in `seen` (data pointers, updated)."""
    total = 0
    for t in tensors:
        if not torch.is_tensor(t) or t.device.type != "cpu":
            continue
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen and storage.nbytes():
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


def _step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer) -> None:
    """One training step; every tensor it makes apart from the optimizer's state is gone when it returns."""
    loss = model(**batch).loss
    if loss is None:
        raise ValueError("the model returned no loss: the batch must hold the labels")
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _window_peaks(prof: profile) -> list[int]:
    """For each named step range, the maximum of the running sum of CPU allocator events within it (>= 0)."""
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError as e:  # a torch whose profiler keeps its results elsewhere
        raise RuntimeError("torch's profiler gave no memory events to read (profiler.kineto_results)") from e
    ranges = {e.name(): (e.start_ns(), e.end_ns()) for e in events if e.name() in _STEPS}
    if set(ranges) != set(_STEPS):
        raise RuntimeError(f"the profiler did not record the measured steps (found {sorted(ranges)})")
    stream = sorted((e.start_ns(), i, e.nbytes()) for i, e in enumerate(events)
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    peaks = []
    for name in _STEPS:
        start, end = ranges[name]
        running = peak = 0
        for t, _, nbytes in stream:
            if start <= t <= end:
                running += nbytes
                peak = max(peak, running)
        peaks.append(peak)
    return peaks


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ side's stderr (kineto prints "USDT ... profiler_start/stop" lines at every session, which
    no log level turns off) while the profiler starts and stops; Python's own stderr is left as it is."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real file descriptor 2 (some notebook front ends): leave it
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def measure_cpu_training_step(model: nn.Module, batch: dict) -> StepMemory:
    """Peak CPU memory allocated by a first and a steady-state AdamW training step on `batch` (with labels).

    Measured on a deep copy of `model` in train mode, with AdamW's defaults over its trainable parameters;
    `model` itself, its gradients and the global RNG are not touched.
    """
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("measure_cpu_training_step measures CPU models; use torch.cuda's statistics on CUDA")
    gc.collect()  # garbage freed now, not inside the session (the profiler cannot size blocks older than it)
    with torch.random.fork_rng(devices=[]), torch.enable_grad(), torch.inference_mode(False):
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            trained = copy.deepcopy(model).train()
            for p in trained.parameters():
                p.grad = None
            optimizer = torch.optim.AdamW([p for p in trained.parameters() if p.requires_grad])
            seen: set[int] = set()
            resident = (_storage_bytes(trained.parameters(), seen) + _storage_bytes(trained.buffers(), seen)
                        + _storage_bytes(batch.values(), seen))
            with record_function(_STEPS[0]):
                _step(trained, batch, optimizer)
            state = _storage_bytes((t for s in optimizer.state.values() for t in s.values()), seen)
            with record_function(_STEPS[1]):
                _step(trained, batch, optimizer)
            del trained, optimizer
            gc.collect()  # frees inside the session: the allocator's size table keeps no stale entries
    first, steady = _window_peaks(prof)
    return StepMemory(resident=resident, optimizer_state=state, peak_first_step=resident + first,
                      peak_steady_step=resident + state + steady)
