#!/usr/bin/env bash
# Everything this project runs on a lent GPU machine, as one call of the `device` tool (issues 14 and 17).
#   bash benchmarks/gpu_session.sh --prepare    # here, first: wheels and the molhiv cache into .gpu/ (git-ignored)
#   device run: carry [".gpu"], command `bash benchmarks/gpu_session.sh`, timeout_s 590
# On the GPU machine it runs, one after the other (a timed job never shares the machine): the layer tables
# (benchmarks/gpu_layers.sh, at most LAYERS_LIMIT s), then molhiv workers with OGB's recipes
# (benchmarks/gpu_molhiv.sh) until BUDGET seconds from its start. What comes back under $OUT: layers_gpu.md,
# ogb_molhiv.sqlite (the suite's database with the new runs added) and session.log. Copy them into
# benchmarks/results/ and benchmarks/results/stores/ here.
set -uo pipefail
cd "$(dirname "$0")/.."
gpu=.gpu
if [ "${1:-}" = "--prepare" ]; then
  set -e
  grep -qx "/$gpu/" .git/info/exclude 2>/dev/null || echo "/$gpu/" >> .git/info/exclude
  mkdir -p "$gpu/whl" "$gpu/data/MoleculeNet/hiv/raw" "$gpu/data/molhiv/processed"
  # the GPU image has torch and torch_geometric but neither ogb nor sqlalchemy (its python is 3.12)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$gpu/whl" ogb==1.3.6 sqlalchemy==2.1.9
  # the molhiv cache is built here (rdkit), and travels compressed: the raw file is too large with rdkit's wheel
  root=${GDL_DATA:-datasets}
  bash scripts/run.sh python -c "from gdl_graphs.data import load_benchmark; load_benchmark('molhiv')"
  cp "$root/MoleculeNet/hiv/raw/HIV.csv" "$gpu/data/MoleculeNet/hiv/raw/"
  cp "$root"/molhiv/processed/{split,pre_filter,pre_transform}.pt "$gpu/data/molhiv/processed/"
  gzip -c "$root/molhiv/processed/data.pt" > "$gpu/data/molhiv/processed/data.pt.gz"
  du -sh "$gpu"
  exit 0
fi
start=$SECONDS
budget=${BUDGET:-550}
out=${OUT:-/tmp/gpu_out}
mkdir -p "$out"
exec > >(tee "$out/session.log") 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$gpu"/whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 PYTHON=python3
gunzip -kf "$gpu/data/molhiv/processed/data.pt.gz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, torch_geometric; print('torch', torch.__version__, 'pyg', torch_geometric.__version__)"
OUT=$out timeout "${LAYERS_LIMIT:-200}" bash benchmarks/gpu_layers.sh || echo "gpu_layers.sh: exit $?"
echo "layers done at $(( SECONDS - start )) s"
limit=$(( budget - (SECONDS - start) - 45 ))
if [ "$limit" -gt 60 ]; then
  LOGS=/tmp/molhiv LIMIT=$limit WORKERS=${WORKERS:-8} bash benchmarks/gpu_molhiv.sh \
      molhiv/gin@ogb molhiv/gin-virtual@ogb -- --epochs "${EPOCHS:-10}" --data-root "$gpu/data"
  for log in /tmp/molhiv/*.log; do echo "== $log"; cat "$log"; done
fi
cp benchmarks/results/stores/ogb_molhiv.sqlite "$out/"
echo "session done at $(( SECONDS - start )) s"
