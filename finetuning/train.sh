#!/usr/bin/env bash
# Fine-tune ruDialoGPT with PyTorch DDP: one torchrun per node, one worker per GPU.
#
#   sbatch finetuning/train.sh                                   # 1 node, 1 GPU, finetuning/config.yaml
#   sbatch --nodes=4 --gpus-per-node=8 finetuning/train.sh --output_dir outputs/run-32gpu
#   bash finetuning/train.sh --max_steps 200                     # this machine, all its GPUs, no Slurm
#
# Submit from the repository root with its environment active (venv or conda): the job
# uses `python` from PATH, or $PYTHON. Arguments go to python -m finetuning.finetuning;
# the config file (--config, default finetuning/config.yaml) holds everything else.
# Environment: HF_TOKEN (only with --push_to_hub), GPUS_PER_NODE (default: the GPUs
# torch sees, 1 on CPU), MASTER_PORT (default 29500). Effective batch size is
# per_device_train_batch_size x gradient_accumulation_steps x nodes x GPUs per node.
# Larger models (FSDP / DeepSpeed): see finetuning/accelerate_fsdp.yaml.
#
#SBATCH --job-name=rudialogpt-finetune
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=04:00:00
#SBATCH --output=%x-%j.log
set -euo pipefail

# sbatch runs a copy of this script from a spool directory: work from where the job was submitted.
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
PYTHON="${PYTHON:-python}"
NPROC="${GPUS_PER_NODE:-$("$PYTHON" -c 'import torch; print(max(torch.cuda.device_count(), 1))')}"
# Share the node's CPUs between the workers (data loading, tokenisation) instead of oversubscribing.
CPUS="${SLURM_CPUS_PER_TASK:-$(nproc)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( CPUS / NPROC > 0 ? CPUS / NPROC : 1 ))}"

if [[ -n "${SLURM_JOB_ID:-}" && -n "${SLURM_JOB_NODELIST:-}" ]]; then
    # Every node's torchrun meets the others at the job's first node (c10d rendezvous).
    MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
    NNODES="${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}"
    echo "slurm job $SLURM_JOB_ID: $NNODES node(s) x $NPROC worker(s), rendezvous at $MASTER_ADDR:${MASTER_PORT:-29500}"
    srun --nodes="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
        "$PYTHON" -m torch.distributed.run \
        --nnodes="$NNODES" --nproc_per_node="$NPROC" \
        --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:${MASTER_PORT:-29500}" --rdzv_id="$SLURM_JOB_ID" \
        -m finetuning.finetuning "$@"
else
    echo "no Slurm: $NPROC worker(s) on $(hostname)"
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m finetuning.finetuning "$@"
fi
