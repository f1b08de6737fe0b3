#!/usr/bin/env bash
# ogbg-molhiv with OGB's recipes on a lent GPU machine (issue 14; run by benchmarks/gpu_session.sh):
#   WORKERS=8 LIMIT=400 bash benchmarks/gpu_molhiv.sh molhiv/gin@ogb molhiv/gin-virtual@ogb -- --epochs 10
# WORKERS processes of `gdl-bench run benchmarks/reproduce/ogb_molhiv.yaml` on one GPU, split evenly between the
# `--only` selections named before `--`; the workers of a selection share its runs through the suite's results
# database (each claims the next run that is neither stored nor held). After LIMIT seconds each worker is
# interrupted as Ctrl-C would: finished runs are stored, unfinished ones resume from their checkpoints on the next
# call. Arguments after `--` go to every `gdl-bench run`. Logs: $LOGS/molhiv_workerN.log (default /tmp).
# Expects torch with CUDA, torch_geometric, ogb and sqlalchemy (and rdkit, unless the molhiv cache is built).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
workers=${WORKERS:-8}
limit=${LIMIT:-400}
device=${DEVICE:-cuda}
logs=${LOGS:-/tmp}
selections=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do selections+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#selections[@]} -gt 0 ] || { echo "usage: gpu_molhiv.sh SELECTION... [-- gdl-bench run args]" >&2; exit 2; }
threads=$(( $(nproc) / workers > 0 ? $(nproc) / workers : 1 ))
mkdir -p "$logs"
for i in $(seq 1 "$workers"); do
  only=${selections[$(( (i - 1) % ${#selections[@]} ))]}
  timeout --signal=INT --kill-after=30 "$limit" "$python" -m gdl_graphs.bench.cli run \
      benchmarks/reproduce/ogb_molhiv.yaml --only "$only" --device "$device" --threads "$threads" --no-progress "$@" \
      > "$logs/molhiv_worker$i.log" 2>&1 &
  sleep 1  # the workers claim their first runs one after another
done
wait
echo "molhiv: $workers workers done; runs in benchmarks/results/stores/ogb_molhiv.sqlite" >&2
