#!/usr/bin/env bash
# Main job: regenerate every experiment table and figure by executing the notebooks with papermill.
#
#   ./run_all.sh                    # cpu profile (the default), all notebooks
#   ./run_all.sh --profile ci       # fast check
#   ./run_all.sh --only vit,swin    # some notebooks (vit, swin, gpt2, roberta, bert_finetune)
#
# Sets up .venv if needed (scripts/setup.sh, which also registers the `ebcore` Jupyter kernel), saves
# executed notebooks as results/<family>/<profile>/<notebook>.ipynb, writes results/README.md, and
# exits non-zero naming the notebooks that failed.
set -uo pipefail
cd "$(dirname "$0")"

PROFILE=cpu
ONLY="vit,swin,gpt2,roberta,bert_finetune"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -p) EXTRA+=(-p "$2" "$3"); shift 3 ;;   # extra papermill parameters, e.g. -p seed 1
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$PROFILE" in ci|cpu|paper) ;; *) echo "run_all.sh: profile must be ci, cpu or paper" >&2; exit 2 ;; esac

if [ ! -x .venv/bin/papermill ] || ! .venv/bin/jupyter kernelspec list 2>/dev/null | grep -q '^ *ebcore '; then
  bash scripts/setup.sh || { echo "run_all.sh: set-up failed" >&2; exit 1; }
fi
export EBCORE_CACHE_DIR="${EBCORE_CACHE_DIR:-$PWD/.cache}"

declare -A FAMILY=([vit]=vit [swin]=swin [gpt2]=gpt2 [roberta]=roberta [bert_finetune]=bert)
mkdir -p results
TIMINGS="results/timings-$PROFILE.csv"
echo "notebook,profile,seconds,status" > "$TIMINGS"
failed=()
IFS=',' read -ra NOTEBOOKS <<< "$ONLY"
for nb in "${NOTEBOOKS[@]}"; do
  fam="${FAMILY[$nb]:-}"
  if [ -z "$fam" ] || [ ! -f "notebooks/$nb.ipynb" ]; then
    echo "run_all.sh: no notebook named $nb (choose from ${!FAMILY[*]})" >&2; failed+=("$nb"); continue
  fi
  out="results/$fam/$PROFILE/$nb.ipynb"
  mkdir -p "$(dirname "$out")"
  echo "== $nb ($PROFILE profile) -> $out"
  start=$(date +%s)
  if .venv/bin/papermill "notebooks/$nb.ipynb" "$out" -k ebcore --cwd notebooks \
       -p profile "$PROFILE" "${EXTRA[@]}" --no-progress-bar; then status=ok; else status=FAILED; failed+=("$nb"); fi
  secs=$(( $(date +%s) - start ))
  echo "$nb,$PROFILE,$secs,$status" >> "$TIMINGS"
  echo "== $nb: $status in ${secs}s"
done

.venv/bin/python -m ebcore.report --results results --profile "$PROFILE" --timings "$TIMINGS"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_all.sh: FAILED notebooks: ${failed[*]} (executed copies with the error are under results/)" >&2
  exit 1
fi
echo "run_all.sh: all notebooks ran; tables and figures are under results/ (see results/README.md)"
