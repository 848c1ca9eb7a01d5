#!/usr/bin/env bash
# The studies behind the README's "Learned update rules" measurements, CPU-sized (about 2 hours on 2 cores).
# Usage: bash benchmarks/discovered_rules_study.sh OUT_DIR [step ...]
#   steps: rules metagrad horizons rule_test horizon_test lifetimes lifetime_test
# Each step writes ordinary run directories under OUT_DIR; rerunning a step needs an empty OUT_DIR/<step>.
set -euo pipefail
OUT=${1:?usage: discovered_rules_study.sh OUT_DIR [step ...]}
shift
STEPS=${*:-rules metagrad horizons rule_test horizon_test lifetimes lifetime_test}
PY=${PYTHON:-python}
mkdir -p "$OUT"
for step in $STEPS; do
  case $step in
    rules)  # one ES rule per curriculum (GROOVE and its ablations), one meta-seed each
      for c in dr groove plr_pvl; do
        $PY experiments/meta_train.py --config configs/meta_lpg_gridworld_cpu.yaml --curriculum $c --out-dir "$OUT/rules/$c"
      done
      $PY experiments/meta_train.py --config configs/meta_lpg_gridworld_cpu.yaml --curriculum hand_designed \
        --grid-size 13 --max-objects 5 --out-dir "$OUT/rules/hand_designed" ;;
    metagrad)  # LPG by meta-gradients on the same level space as rules/dr
      $PY experiments/meta_train.py --config configs/meta_lpg_gridworld_metagrad_cpu.yaml --out-dir "$OUT/metagrad" ;;
    horizons)  # LPO and TA-LPO over a distribution of training horizons
      for o in lpo ta_lpo; do
        $PY experiments/meta_train.py --config configs/meta_${o}_horizons_cartpole.yaml --out-dir "$OUT/horizons/$o"
      done ;;
    rule_test)  # out-of-distribution meta-test of the rules against A2C and PPO, 10 seeds
      $PY experiments/meta_test.py "$OUT"/rules/{groove,dr,hand_designed}/best "$OUT/metagrad/best" \
        --envs Breakout-MinAtar,Asterix-MinAtar,CartPole-v1 --timesteps 250000 --num-seeds 10 --out "$OUT/rule_test" ;;
    horizon_test)  # short, meta-training and 4x longer horizons, on the training env and a held-out one
      $PY experiments/meta_test.py "$OUT"/horizons/{lpo,ta_lpo}/best --envs CartPole-v1,Acrobot-v1 \
        --timesteps 12288,49152,196608 --baselines ppo_clip --num-seeds 10 --out "$OUT/horizon_test" ;;
    lifetimes)  # LPG and TA-LPG over agent lifetimes drawn in [20, 100] updates
      for o in lpg ta_lpg; do
        $PY experiments/meta_train.py --config configs/meta_ta_lpg_gridworld_cpu.yaml --objective $o --out-dir "$OUT/lifetimes/$o"
      done ;;
    lifetime_test)  # fresh agents on two of LPG's grid worlds for 20, 100 and 400 updates of 16 envs x 20 steps
      $PY experiments/meta_test.py "$OUT"/lifetimes/{lpg,ta_lpg}/best --envs GridWorld-dense,GridWorld-long_dense \
        --timesteps 6400,32000,128000 --baselines a2c --num-seeds 10 --out "$OUT/lifetime_test" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
