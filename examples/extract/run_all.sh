#!/bin/bash
# The stnca extract runs of REPRODUCTION.md ("the PDE behind a trained NCA"); each took 13-32 s
# on 2 CPU cores. Run from any folder: bash examples/extract/run_all.sh; writes ./extract_*.
set -e
S=${STNCA:-stnca}
PY=${PYTHON:-python}
# 1. the shipped Gray-Scott model: 4 dense rollouts of 1024 steps (smooth family, unseen seed),
#    the first t = 32 steps of each not fitted; the test: high_frequency, seed 2024, to 2048
time $S extract gray_scott_paper_smooth --test-steps 2048 --out extract_paper
#    the same without a burn-in, and with another seed (other rollouts, other test condition)
time $S extract gray_scott_paper_smooth --burn-in 0 --test-steps 2048 --out extract_paper_burn0
time $S extract gray_scott_paper_smooth --seed 1 --test-steps 2048 --out extract_paper_seed1
# 2. PDE-FIND on the model's training data (stnca/models/gray_scott_paper_smooth.toml [data]):
#    4 x 64x64, 1024 steps, smooth, seed 0, frames every t = 32 PDE steps
$S simulate gray-scott --size 64 --steps 1024 --every 32 --batch 4 --init smooth --seed 0 --out gs_train_t32.npy
#    measurement noise xi as the training applies it (stnca.train.dataset): key fold_in(key(0), 1)
$PY - <<'PYEOF'
import jax, numpy as np
from stnca.data.augment import measurement_noise
from stnca.data.io import save_array
y = np.load("gs_train_t32.npy")
for xi in (0.01, 0.05):
    noisy = measurement_noise(y, xi, key=jax.random.fold_in(jax.random.key(0), 1))
    save_array(f"gs_train_t32_xi{xi}.npy", np.asarray(noisy))
PYEOF
for data in t32 t32_xi0.01 t32_xi0.05; do
  for derivative in forward central; do
    time $S extract --data gs_train_$data.npy --dt 32 --derivative $derivative --pde gray-scott \
      --test-steps 64 --out extract_${data}_$derivative
  done
done
# 3. reference: PDE-FIND on dense (every PDE step) clean data from the same initial conditions
$S simulate gray-scott --size 64 --steps 1024 --every 1 --batch 4 --init smooth --seed 0 --out gs_train_dense.npy
time $S extract --data gs_train_dense.npy --dt 1 --pde gray-scott --test-steps 2048 --out extract_dense
# 4. supplement: the Gray-Scott terms given (library = 1, A, B, A*B^2, lap(A), lap(B)), so only
#    the coefficients (and which of these terms survive) are fitted
time $S extract gray_scott_paper_smooth --terms '1,A,B,A*B^2,lap(A),lap(B)' --test-steps 2048 --out extract_paper_gsterms
for derivative in forward central; do
  time $S extract --data gs_train_t32.npy --dt 32 --derivative $derivative --pde gray-scott \
    --terms '1,A,B,A*B^2,lap(A),lap(B)' --test-steps 64 --out extract_t32_${derivative}_gsterms
done
