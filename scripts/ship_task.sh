#!/usr/bin/env bash
# Reproduce a shipped checkpoint end to end: collect -> pretrain -> finetune -> evaluate -> export.
#   scripts/ship_task.sh TASK [EPISODES] [PRETRAIN_STEPS] [FINETUNE_STEPS] [EVAL_EPISODES]
# Every step is resumable: rerun the same line after an interruption (collection resumes by
# itself; training resumes from the newest snapshot when RESUME=true is set).
set -euo pipefail
task=${1:?usage: scripts/ship_task.sh TASK [EPISODES] [PRETRAIN_STEPS] [FINETUNE_STEPS] [EVAL_EPISODES]}
episodes=${2:-400}; pre_steps=${3:-800}; ft_steps=${4:-3000}; eval_eps=${5:-100}
data=${DATA_ROOT:-data}/$task; runs=${RUNS_ROOT:-runs}/$task; resume=${RESUME:-false}
seed=${SEED:-0}  # training seed (arm_reach ships seed 1, chosen on validation seeds)
# extra finetune / evaluate arguments, e.g. the reacher recipe:
#   FINETUNE_ARGS=model.proprio_state=true EVAL_ARGS=agent.proprio_weight=10 \
#     scripts/ship_task.sh reacher_easy 600
model="model.width=16 seed=$seed"
c1="python -m agent.collect env=$task episodes=$episodes out=$data"
c2="python -m agent.train env=$task stage=pretrain data=$data out=$runs/pretrain steps=$pre_steps window=2 batch_size=128 $model resume=$resume"
c3="python -m agent.train env=$task stage=finetune data=$data out=$runs/finetune init=$runs/pretrain/model.safetensors steps=$ft_steps window=6 batch_size=256 $model resume=$resume ${FINETUNE_ARGS:-}"
c4="python -m agent.evaluate env=$task checkpoint=$runs/finetune/model.safetensors eval.episodes=$eval_eps output_dir=$runs/eval ${EVAL_ARGS:-}"
for c in "$c1" "$c2" "$c3" "$c4"; do echo "+ $c"; $c; done
python -m agent.export --run "$runs/finetune" --eval "$runs/eval/results.json" --out "checkpoints/$task" \
  --command "$c1" --command "$c2" --command "$c3" --command "$c4"
