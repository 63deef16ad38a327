#!/usr/bin/env bash
# The paper-scale runs and GPU benchmark, as ONE device call (fits a 10-minute call).
#
# Prepare on the CPU machine, from the repository root (once per session; .whl is ignored):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .whl tomli-w==1.2.0 imageio-ffmpeg==0.6.0
# then call the device tool with  carry=[".whl"]  and the command
#   bash benchmarks/gpu_paper_runs.sh            (everything: bench, gs, em)
#   bash benchmarks/gpu_paper_runs.sh bench gs   (only some parts, if one call is too short)
# Not yet run on a GPU: written without one; expect to fix small things on first use.
# The device image already has JAX (CUDA), Equinox, Optax, typer, rich, matplotlib, Pillow,
# imageio and jaxtyping; tomli-w and imageio-ffmpeg (for .mp4 videos) come from .whl.
# Results land in $OUT (at most 8 files come back): copy them into REPRODUCTION.md.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD" || exit 1
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
LOG=$OUT/log.txt
mkdir -p "$OUT/gs" "$OUT/em"
stnca() { python3 -m stnca "$@"; }
PARTS=${*:-bench gs em}
want() { [[ " $PARTS " == *" $1 "* ]]; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

  if want bench; then
  echo "== throughput (paper Gray-Scott setting)"
  python3 benchmarks/nca_throughput.py --repeats 20
  python3 benchmarks/nca_throughput.py --repeats 20 --no-checkpoint
  fi

  if want gs; then
  echo "== Gray-Scott paper configuration"
  start=$(date +%s)
  stnca train configs/gray_scott_paper.toml --out runs/gs
  echo "gray-scott training wall time: $(( $(date +%s) - start )) s"
  stnca simulate gray-scott --size 64 --steps 2048 --every 32 --init high_frequency \
      --seed 2024 --out runs/gs_test.npy
  stnca evaluate runs/gs/model.eqx --truth runs/gs_test.npy --steps-between-frames 32 \
      --out runs/gs > /dev/null
  python3 - <<'PY'
import json
r = json.load(open("runs/gs/evaluation.json"))
for row in r["frames"]:
    if row["step"] in (1024, 2048):
        print(row["step"], {k: {m: round(v, 4) for m, v in d.items()} for k, d in row.items()
                            if isinstance(d, dict)})
PY
  cp runs/gs/model.eqx runs/gs/metrics.csv runs/gs/evaluation.json runs/gs/evaluation.png "$OUT/gs/"
  fi

  if want em; then
  echo "== image morphing paper configuration"
  start=$(date +%s)
  stnca train configs/emoji_morph_paper.toml --out runs/em
  echo "emoji training wall time: $(( $(date +%s) - start )) s"
  cat runs/em/morph.json
  cp runs/em/snapshots.png runs/em/morph.json "$OUT/em/"
  fi
} 2>&1 | tee "$LOG"
