"""The notebooks' words, rendered from the resolved settings at run time: no number in a notebook's prose is
typed by hand, so the text cannot drift from what ran.

    settings = ExperimentConfig("vit", profile="cpu").resolve()
    introduction(settings)     # the claim, the study's numbers (from the family's entry)
    method(settings)           # masks, distance, both ticket rules (window, threshold), retraining, controls
    deviations(settings)       # where we deviate from the study, with this profile's data and model sizes
    provenance(result)         # how the runs shown came about: trained now, or reused (when, how long)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .families import get_family
from .kinds import MODES, RUN_KINDS
from .verdict_rules import rule_set_markdown
from .specs import ALL, ImageData

if TYPE_CHECKING:
    from .config import Settings
    from .results import ExperimentResult

DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "rotten_tomatoes": "Rotten Tomatoes",
                 "imdb": "IMDB"}
_WIDTH_KEYS = {  # fact -> config keys that hold it, by family convention
    "layers": ("num_hidden_layers", "n_layer"), "hidden": ("hidden_size", "n_embd"),
    "heads": ("num_attention_heads", "n_head"), "ffn": ("intermediate_size", "n_inner"), "patch": ("patch_size",),
}


def _count(n: int) -> str:
    return "all" if n >= ALL else f"{n:,}"


def facts(s: "Settings") -> dict[str, Any]:
    """Every number the prose may name, from the resolved settings (sizes, schedule, rules)."""
    spec, data = s.spec, s.spec.data
    out: dict[str, Any] = {
        "profile": s.profile, "dataset": DATASET_NAMES.get(data.dataset, data.dataset),
        "train": _count(data.train), "val": _count(data.val), "test": _count(data.test),
        "epochs": s.epochs, "batch_size": s.batch_size, "lr": s.lr, "threshold": s.threshold, "window": s.window,
        "check_every_steps": s.check_every_steps, "seeds": list(s.seeds), "ratios": ", ".join(f"{r:g}" for r in s.ratios),
        "control_ratios": ", ".join(f"{r:g}" for r in s.control_ratios),
    }
    if isinstance(data, ImageData):
        out.update(image_size=data.image_size)
    else:
        out.update(max_length=data.max_length)
    for fact, keys in _WIDTH_KEYS.items():
        out[fact] = next((spec.model[k] for k in keys if k in spec.model), "?")
    if "embed_dim" in spec.model:   # Swin: stages
        m = spec.model
        out.update(embed_dim=m["embed_dim"], depths=m["depths"], num_heads=m["num_heads"], stages=len(m["depths"]),
                   window=m["window_size"], patch=m["patch_size"])
    if get_family(s.family).model_size == "minilm":
        out["layers"] = spec.model.get("num_hidden_layers", 6)
    return out


def _format(template: str, s: "Settings") -> str:
    return template.format(**facts(s))   # counts are already text ("8,000", "all")


def published(s: "Settings") -> str:
    fam = get_family(s.family)
    if not fam.published:
        return fam.published_note
    acc = ", ".join(("dense" if r == 0 else f"p = {r:g}") + f" **{a:g} %**" for r, a in fam.published.items())
    epoch = f"; ticket around epoch {fam.published_ticket_epoch}" if fam.published_ticket_epoch else ""
    return f"{acc}{epoch} (threshold {s.threshold:g})."


def introduction(s: "Settings") -> str:
    fam = get_family(s.family)
    return (f"**The claim** (Early Transformers, arXiv 2405.02353, for {fam.claim}): a structured early-bird "
            "ticket (a mask over attention heads and FFN channels) appears early in training, stops changing, and "
            "can be pruned there and trained further at a fraction of the cost, keeping the dense model's "
            f"accuracy.\n\n**The study's numbers**: {published(s)}\n\n"
            f"**This run**: {fam.title}, `{s.profile}` profile, seeds {list(s.seeds)}, ratios {facts(s)['ratios']}; "
            "every setting is in the record below, and the verdicts (last section) are computed from this run.")


def method(s: "Settings") -> str:
    f = facts(s)
    checks = f"every {s.check_every_steps} steps" if s.check_every_steps else "at the end of every epoch"
    controls = "; ".join(f"**{RUN_KINDS[c].label}** (p = {', '.join(f'{r:g}' for r in s.kind_ratios(c))}): "
                         f"{RUN_KINDS[c].description}" for c in s.controls) or "none"
    schedule = ("after the ticket the pruned model *follows the dense run's schedule*: the learning rate goes on "
                "from the ticket's step (no new warm-up), and AdamW starts from the dense run's moments of the kept "
                "weights (`continue_schedule = follow`)" if s.continue_schedule == "follow" else
                "after the ticket AdamW is rebuilt and the warm-up + cosine schedule *restarts* at the peak learning "
                "rate over the rest of the budget (`continue_schedule = restart`): EB − dense then mixes the mask "
                "with a learning-rate restart")
    modes = "; ".join(f"`{m}`: {MODES[m].description}" for m in s.modes)
    return f"""## Method

- **Mask**: {checks}, every attention head and every FFN channel of every layer gets an importance score
  (`{s.criterion}`); at ratio *p* ({f['ratios']}) each layer keeps its best (1 − p) heads and (1 − p) channels
  (never emptying a layer). Pruning is *structured*: the ticket is physically removed with Torch-Pruning, and
  the smaller model is verified against the mask and against the soft-masked dense model.
- **Distance** between two masks: the normalized Hamming distance over the keep/prune decisions (`{s.distance}`;
  `combined` counts a head as its `head_dim` channels).
- **Ticket rules**, both watching the same dense run: the study's *consecutive* rule (distance between two
  consecutive checks ≤ {s.threshold:g}) and Early-Bird's *window* rule (the newest of the last {s.window} masks
  within {s.threshold:g} of all others). The ticket retrained is the *{s.rule}* rule's; a ratio whose ticket
  never appears falls back to the last check (flagged: "tickets found"), and with no budget left it is pruned
  and evaluated without retraining.
- **Retraining** (headline mode `{s.headline_mode}`): {modes}. In `continue`, {schedule}.
- **Controls**: {controls}. The cost ratio is p = {s.cost_ratio:g}.
- **Cost**: training FLOPs counted exactly (forward + backward per sample, by torch's FLOP counter, × samples
  trained on) plus the scoring passes; each run pays its mask's search (a ticket: the dense training until it
  appeared). Wall time is shown last: on shared machines it is noise.
- **Statistics**: {len(s.seeds)} seed(s); means with Student-t 95 % intervals, and per-seed *paired* differences.
  The verdicts follow one rule set, stated before any number and the same for every family:

{rule_set_markdown()}
"""


def deviations(s: "Settings") -> str:
    fam = get_family(s.family)
    text = _format(fam.deviations, s) if fam.deviations else "- none recorded"
    budget = (f"\n- **Budget**: {s.epochs} epochs of batch {s.batch_size} at peak lr {s.lr:g} in the `{s.profile}` "
              "profile; the `gpu` profile is the scale at which the effect can show offline.")
    changed = (f"\n- **Settings changed from the profile's**: {dict(s.overrides)} (results folder "
               f"`{s.folder_name}`)." if s.overrides else "")
    return "## Where we deviate from the study, and why\n\n" + text + budget + changed


def provenance(result: "ExperimentResult") -> str:
    """One line on how the runs came about: trained now (in how long), or reused from earlier run folders."""
    p = result.provenance or {}
    seeds = list(result.seeds)
    if not p or not p.get("reused"):
        return f"seeds {seeds}: {p.get('runs', '?')} runs trained now in {result.seconds:.0f} s."
    line = (f"seeds {seeds}: {p['reused']} of {p['runs']} runs reused from run folders finished "
            f"{p['finished_from']}" + (f" to {p['finished_to']}" if p['finished_to'] != p['finished_from'] else "")
            + f" (their training took {p['train_seconds']:.0f} s in all)")
    if p.get("trained_now"):
        line += f"; {p['trained_now']} trained now"
    return line + f"; this call took {result.seconds:.0f} s."
