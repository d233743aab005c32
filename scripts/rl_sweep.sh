#!/usr/bin/env bash
# RL baselines on the tasks with shipped world models, 3 seeds, budgets at 1/4, 1/2 and 1x the
# transitions each world model was trained on. Sequential (one core); finished cells are skipped,
# so rerunning resumes. Then: python benchmarks/rl_report.py --runs outputs/baselines
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1  # one core per run: spare threads spin against other jobs
declare -A BUDGETS=(
  [point_mass]="[10000,20000,40000]"    # world model: 400 episodes x 100 steps
  [reacher_easy]="[7500,15000,30000]"   # 600 x 50
  [arm_reach]="[5000,10000,20000]"      # 400 x 50
  [medium_maze]="[20000,40000,80000]"   # 400 x 200 (TASKS=medium_maze: docs/rl_comparison_medium_maze.md)
)
SEEDS=${SEEDS:-"0 1 2"}
TASKS=${TASKS:-"point_mass arm_reach reacher_easy"}
ALGOS=${ALGOS:-"sac ppo"}
for seed in $SEEDS; do
  for task in $TASKS; do
    for algo in $ALGOS; do
      python -m agent.train_baseline env="$task" algo="$algo" seed="$seed" \
        budgets="${BUDGETS[$task]}" "$@"
    done
  done
done
