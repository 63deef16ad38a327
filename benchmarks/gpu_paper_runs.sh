#!/usr/bin/env bash
# Everything that wants a GPU, as ONE device call: the throughput benchmark, the paper's
# Gray-Scott and image-morphing configurations at full length, and the training-settings
# ablations (benchmarks/ablation.py) at demo, CPU-morphing and Brusselator scale, many
# trainings at once on the one GPU.
#
# Prepare on the CPU machine, from the repository root (once; .whl is git-ignored):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
#       -d .whl tomli-w==1.2.0 imageio-ffmpeg==0.6.0 exponax==0.2.0
# Rehearse on the CPU with a few epochs (a minute or two, nothing to read):
#   SMOKE=1 OUT=/tmp/out bash benchmarks/gpu_paper_runs.sh
# then call the device tool with carry=[".whl"] and the command
#   bash benchmarks/gpu_paper_runs.sh            (or name parts: bench gs em demo morph other)
# The first GPU session ran the default parts; the second ran `recipe ablation` (LIMIT=300);
# the third `gen memory` (LIMIT=300 BENCH_LIMIT=180); the fourth `demorecipe` (LIMIT=300
# BENCH_LIMIT=170), its suites rerun once exponax was among the wheels.
# Results come back as $OUT/PART.tar.gz (models, metrics, figures, ablation tables) and
# $OUT/log.txt; copy the numbers into REPRODUCTION.md and BENCHMARKS.md.
set -uo pipefail
if [[ -d .whl ]] && ! python3 -c "import tomli_w, imageio_ffmpeg, exponax" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
# seeds of one variant compile to the same programs: share compilations between processes
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
RUNS=${RUNS:-runs/gpu}
LOG=$OUT/log.txt
LIMIT=${LIMIT:-420}   # seconds any one part may take
mkdir -p "$OUT" "$RUNS"
PARTS=${*:-bench gs em demo morph other}
want() { [[ " $PARTS " == *" $1 "* ]]; }
EPOCHS=()
[[ -n "${SMOKE:-}" ]] && EPOCHS=(--epochs 3) && LIMIT=300
ablate() { timeout "$LIMIT" "$PY" benchmarks/ablation.py "$@" "${EPOCHS[@]}"; }

# the stabilisers of the authors' code (issue: models that generalise and hold)
PEN="training.state_penalty=0.01"
TOL="training.propagate_tolerance=0.01"
RESTART="training.restart_every=64; training.restart_hidden_noise=0.1"
B2="training.minibatches=2; training.update_every='minibatch'"
ALL="$B2; $PEN; $TOL; $RESTART"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  "$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
  date
  if want bench; then
    echo "== throughput (paper Gray-Scott setting), GPU alone"
    reps=20; [[ -n "${SMOKE:-}" ]] && reps=2
    "$PY" benchmarks/nca_throughput.py --repeats $reps
    "$PY" benchmarks/nca_throughput.py --repeats $reps --no-checkpoint
  fi
  pids=()
  if want gs; then
    echo "== Gray-Scott paper configuration, 4000 epochs, variants (test: n = 1024, 2048)"
    ablate configs/gray_scott_paper.toml --out "$RUNS/gs" --seeds 0 --jobs 4 \
      --variant "paper" \
      --variant "paper-stabilised: $PEN; $RESTART" \
      --variant "paper-lr-decay: training.lr_decay_rate=0.1; training.lr_decay_epochs=4000" \
      --variant "paper-stabilised-lr-decay: $PEN; $RESTART; training.lr_decay_rate=0.1; training.lr_decay_epochs=4000" \
      > "$RUNS/gs.txt" 2>&1 &
    pids+=($!)
  fi
  if want em; then
    echo "== image morphing paper configuration, 4000 epochs"
    ablate configs/emoji_morph_paper.toml --out "$RUNS/em" --seeds 0 --jobs 2 \
      --variant "paper" \
      --variant "paper-hold: training.hold_final=true; $PEN" \
      > "$RUNS/em.txt" 2>&1 &
    pids+=($!)
  fi
  if want demo; then
    echo "== ablation at demo scale, 2 seeds"
    ablate stnca/presets/demo.toml --out "$RUNS/demo" --seeds 0 1 --jobs 7 \
      --variant "demo-as-is" \
      --variant "all: $ALL" \
      --variant "all-but-per-minibatch: training.minibatches=2; training.update_every='epoch'; $PEN; $TOL; $RESTART" \
      --variant "all-but-penalty: $B2; $TOL; $RESTART" \
      --variant "all-but-gate: $B2; $PEN; $RESTART" \
      --variant "all-but-restarts: $B2; $PEN; $TOL" \
      --variant "all-but-rollout-selection: $ALL; training.select_by='loss'" \
      --variant "per-minibatch-only: $B2" \
      --variant "penalty-only: $PEN" \
      --variant "gate-only: $TOL" \
      --variant "restarts-only: $RESTART" \
      --variant "loss-selection-only: training.select_by='loss'" \
      --variant "b2-penalty-restarts-held-out: $B2; $PEN; $RESTART; data.validation_trajectories=2" \
      --variant "b4-penalty-restarts: training.minibatches=4; $PEN; $RESTART" \
      --variant "b4-penalty-restarts-8-trajectories: training.minibatches=4; $PEN; $RESTART; data.trajectories=8" \
      --variant "b2-penalty-restarts-2000-epochs: $B2; $PEN; $RESTART; training.epochs=2000; training.lr_decay_epochs=2000" \
      > "$RUNS/demo.txt" 2>&1 &
    pids+=($!)
  fi
  if want morph; then
    echo "== image morphing, CPU configuration: holding the final image; other sequences"
    ablate configs/emoji_morph_cpu.toml --out "$RUNS/morph" --seeds 0 1 --jobs 3 \
      --variant "cpu-as-is" \
      --variant "hold: training.hold_final=true" \
      --variant "penalty: $PEN" \
      --variant "hold-penalty: training.hold_final=true; $PEN" \
      --variant "hold-penalty-restarts: training.hold_final=true; $PEN; $RESTART" \
      --variant "lizard-crab-mushroom: training.hold_final=true; $PEN; data.images=['emoji:lizard', 'emoji:crab', 'emoji:mushroom']" \
      --variant "microbe-mushroom-alien: training.hold_final=true; $PEN; data.images=['emoji:microbe', 'emoji:mushroom', 'emoji:alien_monster']" \
      > "$RUNS/morph.txt" 2>&1 &
    pids+=($!)
  fi
  if want other; then
    echo "== Brusselator (py-pde data) through data.source = file"
    ablate examples/other_pde/brusselator.toml --out "$RUNS/other" --seeds 0 1 --jobs 2 \
      --test examples/other_pde/test.npy \
      --variant "defaults" \
      --variant "penalty-restarts: $PEN; $RESTART" \
      --variant "held-out: data.validation_trajectories=1" \
      > "$RUNS/other.txt" 2>&1 &
    pids+=($!)
  fi
  # second session: the configuration chosen from the first, and the ablation around the
  # demo's chosen settings (each one off in turn)
  if want recipe; then
    echo "== Gray-Scott paper configuration as configured, 4000 epochs"
    ablate configs/gray_scott_paper.toml --out "$RUNS/gs2" --seeds 0 --jobs 2 \
      --variant "paper" \
      --variant "paper-lr-2e-3: training.learning_rate=2e-3; training.lr_decay_rate=0.05" \
      > "$RUNS/gs2.txt" 2>&1 &
    pids+=($!)
  fi
  if want ablation; then
    echo "== ablation around the demo's settings, 2 seeds"
    ablate stnca/presets/demo.toml --out "$RUNS/ablation" --seeds 0 1 --jobs 4 \
      --variant "without-per-minibatch-updates: training.update_every='epoch'" \
      --variant "without-penalty: training.state_penalty=0" \
      --variant "without-restarts: training.restart_every=0" \
      --variant "select-by-loss: training.select_by='loss'" \
      > "$RUNS/ablation.txt" 2>&1 &
    pids+=($!)
  fi
  # third session (issue 21): the paper configuration on the demo's four families, with the
  # paper's training settings and with the demo's (8 mini-batches, lr 3e-3, penalty,
  # restarts; 2000 epochs = the same 16000 updates), then the generalisation suite
  FAMILIES="data.initial_condition=['smooth', 'sparse_noise', 'lines', 'fourier_mid']"
  DEMO_SETTINGS="training.minibatches=8; training.learning_rate=3e-3; $PEN; $RESTART"
  if want gen; then
    echo "== Gray-Scott paper configuration on four families, then the suite"
    ablate configs/gray_scott_paper.toml --out "$RUNS/gen" --seeds 0 1 --jobs 2 \
      --variant "four-families-demo-settings: $FAMILIES; $DEMO_SETTINGS; training.epochs=2000; training.lr_decay_epochs=2000" \
      > "$RUNS/gen.txt" 2>&1 &
    pids+=($!)
    ablate configs/gray_scott_paper.toml --out "$RUNS/genpaper" --seeds ${GENPAPER_SEEDS:-0} --jobs 2 \
      --variant "four-families: $FAMILIES" \
      > "$RUNS/genpaper.txt" 2>&1 &
    pids+=($!)
  fi
  # fourth session (issues 21 and 23): the demo's recipe against changes that might make it
  # generalise better (wider, more hidden channels, finer time sampling, noisy data, a larger
  # lattice, longer or shorter training, more trajectories), two seeds each; the suite after
  DEMO_VARIANTS=(
    --variant "recipe"
    --variant "width64: model.hidden_width=64"
    --variant "hidden12: model.hidden_channels=12"
    --variant "t16: training.steps_between_frames=16"
    --variant "noise01: data.noise=0.01"
    --variant "size48: data.size=48"
    --variant "epochs800: training.epochs=800; training.lr_decay_epochs=800"
    --variant "epochs250: training.epochs=250; training.lr_decay_epochs=250"
    --variant "lr5e-3: training.learning_rate=5e-3"
    --variant "traj8: data.trajectories=8; training.minibatches=16"
    --variant "hidden12-epochs800: model.hidden_channels=12; training.epochs=800; training.lr_decay_epochs=800"
    --variant "width64-t16-epochs800: model.hidden_width=64; training.steps_between_frames=16; training.epochs=800; training.lr_decay_epochs=800"
  )
  if want demorecipe; then
    echo "== the demo's recipe and twelve changes, 2 seeds, then the suite"
    ablate stnca/presets/demo.toml --out "$RUNS/demorecipe" --seeds 0 1 --jobs ${JOBS:-24} \
      "${DEMO_VARIANTS[@]}" > "$RUNS/demorecipe.txt" 2>&1 &
    pids+=($!)
  fi
  if want memory; then
    echo "== peak memory of training at 1024x1024 (JAX peak_bytes_in_use)"
    timeout "$LIMIT" "$PY" benchmarks/memory.py --sizes "${MEMORY_SIZES:-1024}" --steps 32 \
      > "$RUNS/memory.txt" 2>&1 &
    pids+=($!)
  fi
  for pid in "${pids[@]}"; do wait "$pid"; done
  pkill -f "stnca train" 2>/dev/null  # a training cut short by its part's limit
  date
  if want demorecipe; then
    echo "== the generalisation suite on every demo-recipe model (default suite), 16 at once"
    suite=(); [[ -n "${SMOKE:-}" ]] && suite=(--suite quick --large-size 0)
    for model in "$RUNS"/demorecipe/*/seed*/model.eqx; do  # finished trainings only
      [[ -f "$(dirname "$model")/ablation.json" ]] && echo "$model"
    done | xargs -P 16 -I{} bash -c 'd=$(dirname "$1"); shift; timeout '"${BENCH_LIMIT:-240}"' \
        '"$PY"' -m stnca benchmark "$d/model.eqx" "$@" --out "$d/benchmark" --overwrite \
        > "$d/benchmark.txt" 2>&1' _ {} "${suite[@]}"
    grep -H "[*][*]mean[*][*]" "$RUNS"/demorecipe/*/seed*/benchmark/benchmark.md 2>/dev/null
    date
  fi
  if want gen; then
    echo "== the generalisation suite on every four-family model (default suite)"
    bench_pids=()
    for model in "$RUNS"/gen/*/seed*/model.eqx "$RUNS"/genpaper/*/seed*/model.eqx; do
      [[ -f "$model" ]] || continue
      [[ -f "$(dirname "$model")/benchmark/benchmark.json" ]] && continue  # an earlier call's
      suite=(); [[ -n "${SMOKE:-}" ]] && suite=(--suite quick --large-size 0)
      timeout "${BENCH_LIMIT:-240}" "$PY" -m stnca benchmark "$model" "${suite[@]}" \
        --out "$(dirname "$model")/benchmark" --overwrite \
        > "$(dirname "$model")/benchmark.txt" 2>&1 &
      bench_pids+=($!)
    done
    for pid in "${bench_pids[@]}"; do wait "$pid"; done
    for f in "$RUNS"/gen*/*/seed*/benchmark.txt; do echo "-- $f"; tail -n 25 "$f"; done
    date
  fi
  for part in gs em demo morph other gs2 ablation gen genpaper demorecipe memory; do
    [[ -f "$RUNS/$part.txt" ]] && { echo "== $part"; tail -n 40 "$RUNS/$part.txt"; }
  done
} 2>&1 | tee "$LOG"
# models, metrics, figures and tables; not the bulky training data, videos or checkpoints
for part in gs em demo morph other gs2 ablation gen genpaper demorecipe; do
  [[ -d "$RUNS/$part" ]] && tar czf "$OUT/$part.tar.gz" --exclude='*.npy' --exclude='*.mp4' \
    --exclude='checkpoint.eqx' --exclude='*/final/*' "$RUNS/$part" "$RUNS/$part.txt" 2>/dev/null
done
ls -la "$OUT"
