#!/usr/bin/env bash
# Retrain on the bot's corpus and promote the result only if it does better (finetuning/retrain.py).
#
#   sbatch finetuning/retrain.sh --models_dir /srv/models                       # 1 node, 1 GPU
#   sbatch --gpus-per-node=4 finetuning/retrain.sh --models_dir /srv/models --max_steps 2000
#   bash finetuning/retrain.sh --models_dir /srv/models                         # this machine, no Slurm
#
# Submit from the repository root with its environment active (venv or conda): the job uses
# `python` from PATH, or $PYTHON. DATABASE_URL (the bot's, postgresql://… or sqlite:///…) is read
# from the environment, so the password stays out of the job's command line; --from-database URL
# works too. Arguments go to python -m finetuning.retrain, and those it does not know to
# finetuning.train. Training itself runs through finetuning/train.sh, so several GPUs (and nodes)
# train the challenger under DDP while the preparation, the evaluation and the decision run once.
# The log's last line is the decision; the run's directory holds promotion.json.
#
#SBATCH --job-name=rudialogpt-retrain
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=06:00:00
#SBATCH --output=%x-%j.log
set -euo pipefail

# sbatch runs a copy of this script from a spool directory: work from where the job was submitted.
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
export PYTHON="${PYTHON:-python}"
exec "$PYTHON" -m finetuning.retrain --launcher "bash finetuning/train.sh" "$@"
