"""results/README.md, rebuilt from the files on disk: per profile, the verdicts per claim and family, the
notebooks' run times and every family's summary with links to its notebook and figures.

    gather("results")                 # every profile there, cpu first; ci (scratch) only with include_ci
    profile_section("results", "cpu")  # one profile's section
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..files import atomic_write_text
from . import paths, plots
from .families import FAMILIES
from .profiles import PROFILES, report_order
from .report import to_markdown
from .verdict_rules import rule_set_markdown


def profiles_on_disk(results_dir: str | Path) -> list[str]:
    """Profiles with at least one family's summary.md in its canonical folder (`<family>/<profile>/`) under
    `results_dir`, in README order; folders of changed settings (`<profile>+<hash>`) are not profiles."""
    found = {p.parent.name for p in Path(results_dir).glob("*/*/summary.md") if "+" not in p.parent.name}
    found |= {p.stem.removeprefix("timings-") for p in Path(results_dir).glob("timings-*.csv")}
    return report_order(sorted(found))


def verdict_overview(results_dir: str | Path, profile: str, families: list[str]) -> pd.DataFrame | None:
    """Claim x family table of verdicts from each family's verdicts.csv (None when there is none)."""
    frames = {}
    for family in families:
        path = paths.results_folder(results_dir, family, profile) / paths.VERDICTS_CSV
        if path.is_file():
            v = pd.read_csv(path)
            # one row per claim: its per-family bound (study gap, control ratio) lives in the family section
            claims = v["claim"].str.replace(r" \((?:p = [0-9.]+|[-+0-9.]+ pts)\)$", "", regex=True)
            frames[family] = dict(zip(claims, v["verdict"]))
    if not frames:
        return None
    claims = list(dict.fromkeys(c for f in frames.values() for c in f))
    return pd.DataFrame([{"claim": c, **{fam: frames[fam].get(c, "") for fam in frames}} for c in claims])


def overview_figure(results_dir: str | Path, profile: str) -> str:
    """results/verdicts_overview.png (plots.verdict_overview) of `profile`'s families and the README line
    that shows it; "" when no family has a verdicts.csv."""
    found = {f: paths.results_folder(results_dir, f, profile) / paths.VERDICTS_CSV for f in FAMILIES}
    frames = {f: pd.read_csv(p) for f, p in found.items() if p.is_file()}
    if not frames:
        return ""
    fig = plots.verdict_overview(frames, title=f"Verdicts per claim and family ({profile} profile)")
    plots.save_figure(fig, Path(results_dir) / paths.VERDICTS_OVERVIEW_PNG)
    return f"![Verdicts per claim and family, {profile} profile]({paths.VERDICTS_OVERVIEW_PNG})\n"


def profile_section(results_dir: str | Path, profile: str) -> str | None:
    """The README section of one profile, from its files on disk: run times (timings-<profile>.csv) and
    every family's summary.md with links to its notebook and figures; None when nothing is there."""
    results_dir = Path(results_dir)
    order = list(FAMILIES)
    families = sorted({p.parent.parent.name for p in results_dir.glob(f"*/{profile}/summary.md")},
                      key=lambda f: (order.index(f) if f in order else len(order), f))
    timings = paths.timings_file(results_dir, profile)
    if not families and not timings.is_file():
        return None
    parts = [f"## {profile} profile\n"]
    overview = verdict_overview(results_dir, profile, families)
    if overview is not None:
        parts.append(f"### Verdicts per claim and family ({profile})\n\nComputed by `ebcore.study.verdicts` from each "
                     "family's multi-seed table (numbers in the family sections below).\n\n" + rule_set_markdown()
                     + "\n\n" + to_markdown(overview))
    if timings.is_file():
        t = pd.read_csv(timings)
        if len(t):
            parts.append(f"### Notebook run times ({profile})\n\nSeconds per notebook in its last successful run "
                         "(a notebook whose runs are already finished reuses them and only re-renders).\n\n"
                         + to_markdown(t))
    for family in families:
        folder = results_dir / family / profile
        notebook = FAMILIES[family].notebook if family in FAMILIES else family
        links = [f"[{p.name}]({family}/{profile}/{p.name})" for p in sorted(folder.glob("*.png"))]
        tail = []
        name = paths.notebook_file(notebook)
        if (folder / name).is_file():
            tail.append(f"Notebook: [{name}]({family}/{profile}/{name}).")
        if links:
            tail.append("Figures: " + ", ".join(links))
        text = (folder / paths.SUMMARY_MD).read_text().rstrip("\n")
        if not text.startswith("### "):
            text = f"### {family} ({profile} profile)\n\n" + text
        parts.append(text + ("\n\n" + " ".join(tail) if tail else "") + "\n")
    return "\n".join(parts)


def other_folders(results_dir: str | Path) -> list[str]:
    """`<family>/<profile>+<hash>` results folders (settings changed from the profile's), sorted."""
    return sorted(p.parent.relative_to(results_dir).as_posix() for p in Path(results_dir).glob("*/*+*/summary.md"))


def gather(results_dir: str | Path = "results", include_ci: bool = False) -> Path:
    """Rebuild `results_dir`/README.md from what is on disk, for every profile there (cpu first, then gpu
    and paper; ci, a git-ignored scratch profile, only with `include_ci`). Deterministic: the same files
    give the same README, so a call that changed no results changes no README."""
    results_dir = Path(results_dir)
    profiles = [p for p in profiles_on_disk(results_dir) if include_ci or not (p in PROFILES and PROFILES[p].scratch)]
    sections = [s for s in (profile_section(results_dir, p) for p in profiles) if s]
    others = other_folders(results_dir)
    if others:
        sections.append("## Results with changed settings\n\nThese folders hold runs whose settings differ from their "
                        "profile's (each one's `config.json` lists the changes); they are not summarized above.\n\n"
                        + "\n".join(f"- [{f}]({f}/{paths.SUMMARY_MD})" for f in others) + "\n")
    parts = ["# Results\n",
             "Rebuilt from the files under `results/` by `ebcore report` (also after `run_all.sh`, "
             "`ebcore notebooks` and `ebcore run`): every number below was computed by ebcore's pipeline (run "
             "folders under `runs/`) and rendered by the notebooks; nothing is typed in by hand. Profiles: "
             + (", ".join(f"`{p}`" for p in profiles) if profiles else "none yet") + ".\n"]
    overview = next((o for o in (overview_figure(results_dir, p) for p in profiles) if o), "")
    parts += [overview] if overview else []
    return atomic_write_text(results_dir / paths.README, "\n".join(parts + sections))
