"""Soft masking (hooks that zero pruned heads/channels, for measurement) and physical pruning through
Torch-Pruning's dependency graph, with per-family patches and a check that what was removed is exactly
what the mask says. Pruning is never trusted: a group that would touch anything but the layer's
q/k/v/o or fc1/fc2, or a result whose weights are not the kept slices of the old ones, is an error.

    with soft_masked(model, mask):  dense_out = model(**batch)    # pruned units zeroed
    report = prune_model(model, mask)                             # in place; rebuild the optimizer!

Pruning replaces the pruned layers' parameters (Torch-Pruning builds new ones); each new parameter gets
back the old one's `requires_grad` and Python attributes, so frozen layers stay frozen. Soft masking only
adds hooks: it works on an unprepared GPT-2 (Conv1D) without converting it.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .adapters import BlockSpec, get_adapter, prepare_model
from .errors import InvalidArgumentError, MaskMismatchError, PruningError, describe
from .graph import ModelGraph, head_channels
from .masks import LayerMask, Mask, as_mask
from .measure import count_parameters


def _check_fits(blocks: list[BlockSpec], mask: Mask) -> None:
    current = [(b.num_heads, b.num_channels) for b in blocks]
    if current != mask.structure:
        raise MaskMismatchError(
            f"the mask was drawn on a model with (heads, channels) per layer {mask.structure}, but this model has "
            f"{current}; draw the mask on this model (masks index the model as it is now).")
    dims = [b.head_dim for b in blocks]
    if dims != mask.head_dims:
        raise MaskMismatchError(
            f"the mask's head dims {mask.head_dims} differ from this model's head dims {dims}; draw the mask with "
            "ebcore.draw_mask(model, ratio) (or score_model + mask_from_scores), which record the model's head dims.")
    groups = [b.group_size for b in blocks]
    if groups != mask.group_sizes:
        raise MaskMismatchError(
            f"the mask's KV group sizes {mask.group_sizes} differ from this model's {groups} (query heads per KV "
            "head, grouped-query attention): draw the mask with ebcore.draw_mask(model, ratio), or pass "
            "group_sizes= to random_mask / Mask.full.")


def _snapshot_parameter_state(model: nn.Module) -> dict[str, tuple[bool, dict]]:
    """requires_grad and Python attributes of every parameter, by name."""
    return {name: (p.requires_grad, dict(vars(p))) for name, p in model.named_parameters(remove_duplicate=False)}


def _restore_parameter_state(model: nn.Module, state: dict[str, tuple[bool, dict]]) -> None:
    """Give parameters rebuilt by pruning (new nn.Parameter objects) their old flags and attributes back."""
    for name, p in model.named_parameters(remove_duplicate=False):
        if name not in state:
            continue
        requires_grad, attrs = state[name]
        if p.requires_grad != requires_grad:
            p.requires_grad_(requires_grad)
        for key, value in attrs.items():
            if key not in vars(p):
                setattr(p, key, value)


# --- soft masking ---------------------------------------------------------------------------------

def _zeroing_hook(keep: torch.Tensor):
    def hook(module: nn.Module, args: tuple):
        x = args[0]  # (..., in_features): the head outputs (o_proj) or FFN activations (fc2)
        return (x * keep.to(device=x.device, dtype=x.dtype),) + tuple(args[1:])
    return hook


def apply_soft_mask(model: nn.Module, mask: Mask) -> list[torch.utils.hooks.RemovableHandle]:
    """Zero the inputs of o_proj / fc2 that belong to pruned heads / channels. Returns hook handles.

    Zeroing o_proj's input channels of a head is exactly removing that head; same for an FFN channel
    and fc2. The model is not modified otherwise (an unprepared GPT-2 keeps its Conv1D layers: the hooks
    act on their inputs the same way).
    """
    mask = as_mask(mask)
    blocks = get_adapter(model).blocks(model, allow_conv1d=True)
    _check_fits(blocks, mask)
    handles = []
    for block, lm in zip(blocks, mask.layers):
        head_keep = torch.zeros(block.num_heads * block.head_dim)
        head_keep[head_channels(lm.heads, block.head_dim)] = 1.0
        handles.append(block.o_proj.register_forward_pre_hook(_zeroing_hook(head_keep)))
        ch_keep = torch.zeros(block.num_channels)
        ch_keep[list(lm.channels)] = 1.0
        handles.append(block.fc2.register_forward_pre_hook(_zeroing_hook(ch_keep)))
    return handles


@contextmanager
def soft_masked(model: nn.Module, mask: Mask) -> Iterator[nn.Module]:
    """Context in which `model` computes as if `mask` had been applied (hooks removed on exit)."""
    handles = apply_soft_mask(model, mask)
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


# --- physical pruning -----------------------------------------------------------------------------

@dataclass
class PruneReport:
    structure_before: list[tuple[int, int]]
    structure_after: list[tuple[int, int]]
    params_before: int
    params_after: int
    seconds: float

    @property
    def param_ratio(self) -> float:
        return self.params_after / self.params_before


def _snapshot(blocks: list[BlockSpec]) -> list[dict[str, torch.Tensor]]:
    snaps = []
    for b in blocks:
        snap = {f"qkv{i}.{k}": getattr(m, k).detach().clone() for i, m in enumerate(b.qkv)
                for k in ("weight", "bias") if getattr(m, k) is not None}
        for name in ("o_proj", "fc1", "fc2", "gate"):
            m = getattr(b, name)
            if m is None:
                continue
            snap[f"{name}.weight"] = m.weight.detach().clone()
            if m.bias is not None:
                snap[f"{name}.bias"] = m.bias.detach().clone()
        if b.position_bias_owner is not None:
            snap["table"] = b.position_bias_owner.relative_position_bias_table.detach().clone()
        snaps.append(snap)
    return snaps


def _expected_head_rows(block: BlockSpec, heads: list[int], num_heads: int, group_size: int = 1,
                        kv_groups: list[int] | None = None) -> list[list[int]]:
    """Output rows of each q/k/v linear that belong to `heads` (fused c_attn: one list over [q|k|v]); in a
    grouped (GQA) block, k's and v's rows of the KV groups `kv_groups`."""
    rows = head_channels(heads, block.head_dim)
    if block.grouped:
        kv_rows = head_channels(kv_groups or [], block.head_dim)
        return [rows, kv_rows, kv_rows]
    if block.fused_qkv:
        width = num_heads * block.head_dim
        return [[part * width + r for part in range(3) for r in rows]]
    return [rows] * len(block.qkv)


def _check_group(graph: ModelGraph, group, expected: dict[tuple[nn.Module, bool], list[int]], what: str) -> None:
    """The group must prune exactly `expected` ((module, is_out) -> indices) and nothing else."""
    model_modules = set(graph.model.modules())
    found: dict[tuple[nn.Module, bool], list[int]] = {}
    for dep, idxs in group:
        module = dep.target.module
        if module not in model_modules:
            continue  # graph-internal ops (reshape, split, elementwise...), not parameters
        key = (module, graph.dg.is_out_channel_pruning_fn(dep.handler))
        found.setdefault(key, sorted({int(i) for i in idxs}))
    if found != {k: sorted(v) for k, v in expected.items()}:
        names = {m: n for n, m in graph.model.named_modules()}
        def show(d):
            return {f"{names.get(m, m)}:{'out' if out else 'in'}": len(v) for (m, out), v in d.items()}
        raise PruningError(
            f"Torch-Pruning's {what} group does not match the mask: expected {show(expected)}, got {show(found)}. "
            "Nothing was pruned in this group; report the model configuration.")


def _verify_block(block: BlockSpec, lm, snap: dict[str, torch.Tensor], num_heads_before: int) -> None:
    """The block's weights must be exactly the kept slices of the old ones."""
    def fail(msg):
        raise PruningError(f"{block.name}: {msg} after pruning; the model does not match the mask.")
    if block.num_heads != len(lm.heads):
        fail(f"{block.num_heads_attr or 'the query heads'}={block.num_heads}, expected {len(lm.heads)}")
    if block.grouped and block.kv_heads != len(lm.kept_kv_groups):
        fail(f"{block.kv_heads} KV heads, expected {len(lm.kept_kv_groups)}")
    head_rows = _expected_head_rows(block, list(lm.heads), num_heads_before, lm.group_size, lm.kept_kv_groups)
    for i, (m, rows) in enumerate(zip(block.qkv, head_rows)):
        idx = torch.as_tensor(rows, device=m.weight.device)
        if not torch.equal(m.weight, snap[f"qkv{i}.weight"].index_select(0, idx)):
            fail(f"q/k/v projection {i} has shape {tuple(m.weight.shape)} or values that are not the kept rows")
        if m.bias is not None and not torch.equal(m.bias, snap[f"qkv{i}.bias"].index_select(0, idx)):
            fail(f"q/k/v projection {i} bias differs from the kept entries")
    cols = torch.as_tensor(head_channels(lm.heads, block.head_dim), device=block.o_proj.weight.device)
    if not torch.equal(block.o_proj.weight, snap["o_proj.weight"].index_select(1, cols)):
        fail(f"o_proj has shape {tuple(block.o_proj.weight.shape)} or values that are not the kept columns")
    ch = torch.as_tensor(list(lm.channels), device=block.fc1.weight.device)
    for name in ("fc1", "gate"):
        m = getattr(block, name)
        if m is None:
            continue
        if not torch.equal(m.weight, snap[f"{name}.weight"].index_select(0, ch)):
            fail(f"{name} has shape {tuple(m.weight.shape)} or values that are not the kept rows")
        if m.bias is not None and not torch.equal(m.bias, snap[f"{name}.bias"].index_select(0, ch)):
            fail(f"{name} bias differs from the kept entries")
    if not torch.equal(block.fc2.weight, snap["fc2.weight"].index_select(1, ch)):
        fail(f"fc2 has shape {tuple(block.fc2.weight.shape)} or values that are not the kept columns")
    for name in ("o_proj", "fc2"):
        m = getattr(block, name)
        if m.bias is not None and not torch.equal(m.bias, snap[f"{name}.bias"]):
            fail(f"{name} bias changed (the hidden size must stay)")
    if "table" in snap:
        table = block.position_bias_owner.relative_position_bias_table
        heads = torch.as_tensor(list(lm.heads), device=table.device)
        if not torch.equal(table, snap["table"].index_select(1, heads)):
            fail("relative_position_bias_table does not hold the kept heads' columns")


def _head_groups(graph: ModelGraph, block: BlockSpec, lm: LayerMask, num_heads: int) -> list:
    """The checked Torch-Pruning groups that remove `lm`'s pruned heads: one q/k/v/o group, or in a grouped
    (GQA) block a q/o group and, for KV groups that lose all their query heads, a k/v group."""
    idxs = head_channels(lm.pruned_heads, block.head_dim)
    group = graph.head_group(block, idxs)
    kept_groups = set(lm.kept_kv_groups)
    dropped = [j for j in range(lm.kv_heads) if j not in kept_groups]
    rows = _expected_head_rows(block, lm.pruned_heads, num_heads, lm.group_size, dropped)
    if not block.grouped:
        _check_group(graph, group, {(block.o_proj, False): idxs, **{(m, True): r for m, r in zip(block.qkv, rows)}},
                     f"{block.name} attention-head")
        return [group]
    _check_group(graph, group, {(block.o_proj, False): idxs, (block.qkv[0], True): rows[0]},
                 f"{block.name} query-head")
    if not dropped:
        return [group]
    kv = graph.kv_group(block, rows[1])
    _check_group(graph, kv, {(block.qkv[1], True): rows[1], (block.qkv[2], True): rows[2]}, f"{block.name} KV-group")
    return [group, kv]


def prune_model(model: nn.Module, mask: Mask, verify: bool = True) -> PruneReport:
    """Remove the heads and FFN channels that `mask` prunes, in place, through the dependency graph.

    The model keeps its hidden size, embeddings and classifier. After it, rebuild the optimizer (the
    pruned layers are new parameters). Raises MaskMismatchError if the mask was drawn on another
    structure, InvalidRatioError if it empties a layer, PruningError if the result is not the mask.
    Every parameter keeps its requires_grad (frozen layers stay frozen) and its Python attributes.
    """
    with torch.inference_mode(False):  # new parameters made under inference mode could never be trained
        return _prune_model(model, mask, verify)


def _prune_model(model: nn.Module, mask: Mask, verify: bool) -> PruneReport:
    start = time.perf_counter()
    get_adapter(model)
    mask = as_mask(mask)
    if not isinstance(verify, bool):
        raise InvalidArgumentError(f"verify must be True or False, got {describe(verify)}")
    mask.check_not_empty()
    graph = ModelGraph.build(model)  # a fresh graph: index mappings must match the current structure
    _check_fits(graph.blocks, mask)
    before = graph.structure()
    params_before = count_parameters(model)
    param_state = _snapshot_parameter_state(model)
    snapshots = _snapshot(graph.blocks) if verify else None
    for block, lm in zip(graph.blocks, mask.layers):
        num_heads = block.num_heads
        if lm.pruned_heads:
            for group in _head_groups(graph, block, lm, num_heads):  # every group checked before any is pruned
                group.prune()
            graph.adapter.patch_after_head_pruning(block, list(lm.heads))
        if lm.pruned_channels:
            idxs = list(lm.pruned_channels)
            group = graph.ffn_group(block, idxs)
            expected = {(block.fc2, False): idxs, **{(m, True): idxs for m in block.ffn_in}}
            _check_group(graph, group, expected, f"{block.name} FFN")
            group.prune()
    graph.adapter.finish_pruning(model, graph.blocks)
    _restore_parameter_state(model, param_state)
    if verify:
        for block, lm, snap, (h, _) in zip(graph.blocks, mask.layers, snapshots, before):
            _verify_block(block, lm, snap, h)
    return PruneReport(before, graph.structure(), params_before, count_parameters(model),
                       time.perf_counter() - start)


def shrink_to_structure(model: nn.Module, structure: list[tuple[int, ...]]) -> PruneReport:
    """Prune a freshly built model to (heads, channels) per layer, keeping the first units of each layer;
    (heads, channels, kv_heads) for grouped-query attention keeps the first heads/kv_heads query heads of the
    first kv_heads KV groups (pairs keep every KV group).

    Used to rebuild a saved pruned model's shapes before loading its weights (which replace all values).
    """
    prepare_model(model)
    blocks = get_adapter(model).blocks(model)
    if not isinstance(structure, (list, tuple)) or not all(
            isinstance(t, (list, tuple)) and len(t) in (2, 3) and all(isinstance(v, int) and not isinstance(v, bool)
                                                                     for v in t) for t in structure):
        raise InvalidArgumentError(f"structure must be a list of (heads, channels) or (heads, channels, kv_heads) "
                                   f"integer tuples, one per layer, got {describe(structure)}")
    if len(structure) != len(blocks):
        raise MaskMismatchError(f"structure has {len(structure)} layers, the model has {len(blocks)}")
    layers = []
    for b, (h, c, *given) in zip(blocks, structure):
        kv = given[0] if given else (b.kv_heads if b.grouped else h)
        if not (1 <= h <= b.num_heads and 1 <= c <= b.num_channels):
            raise MaskMismatchError(f"{b.name}: cannot shrink ({b.num_heads} heads, {b.num_channels} channels) to "
                                    f"({h}, {c})")
        if b.grouped:
            if not (1 <= kv <= b.kv_heads and h % kv == 0 and h // kv <= b.group_size):
                raise MaskMismatchError(f"{b.name}: cannot shrink {b.num_heads} query heads on {b.kv_heads} KV heads "
                                        f"to {h} query heads on {kv} KV heads")
            heads = tuple(j * b.group_size + i for j in range(kv) for i in range(h // kv))
        elif kv != h:
            raise MaskMismatchError(f"{b.name} has no grouped-query attention: kv_heads must equal heads, got {kv}")
        else:
            heads = tuple(range(h))
        layers.append(LayerMask(heads, tuple(range(c)), b.num_heads, b.num_channels, b.head_dim, b.group_size))
    return prune_model(model, Mask(tuple(layers)), verify=True)
