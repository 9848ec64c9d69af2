#!/usr/bin/env bash
# Fine-tune ruDialoGPT with PyTorch DDP: one torchrun per node, one worker per GPU.
#
#   sbatch finetuning/train.sh                                   # 1 node, 1 GPU, finetuning/config.yaml
#   sbatch --nodes=4 --gpus-per-node=8 finetuning/train.sh --output_dir outputs/run-32gpu
#   bash finetuning/train.sh --max_steps 200                     # this machine, all its GPUs, no Slurm
#
# Submit from the repository root with its environment active (venv or conda): the job
# uses `python` from PATH, or $PYTHON. Arguments go to python -m finetuning.train;
# the config file (--config, default finetuning/config.yaml) holds everything else.
# Environment: HF_TOKEN (only with --push_to_hub), GPUS_PER_NODE (default: the GPUs
# torch sees, 1 on CPU), MASTER_PORT (default 29500). Effective batch size is
# per_device_train_batch_size x gradient_accumulation_steps x nodes x GPUs per node.
# Larger models: ACCELERATE_CONFIG=finetuning/accelerate_fsdp.yaml (or accelerate_deepspeed.yaml)
# launches through accelerate with FSDP (DeepSpeed) instead of torchrun's plain DDP.
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
export PYTHON="${PYTHON:-python}"
export NPROC="${GPUS_PER_NODE:-$("$PYTHON" -c 'import torch; print(max(torch.cuda.device_count(), 1))')}"
export PORT="${MASTER_PORT:-29500}"
# Share the node's CPUs between the workers (data loading, tokenisation) instead of oversubscribing.
CPUS="${SLURM_CPUS_PER_TASK:-$(nproc)}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( CPUS / NPROC > 0 ? CPUS / NPROC : 1 ))}"

# Starts this node's NPROC workers: torchrun (DDP), or accelerate (FSDP / DeepSpeed) with ACCELERATE_CONFIG.
node_launcher() {  # NNODES NODE_RANK MASTER_ADDR TRAINING_FLAGS...
    local nnodes="$1" rank="$2" master="$3"
    shift 3
    if [[ -n "${ACCELERATE_CONFIG:-}" ]]; then
        "$PYTHON" -m accelerate.commands.launch --config_file "$ACCELERATE_CONFIG" \
            --num_machines "$nnodes" --num_processes $(( nnodes * NPROC )) --machine_rank "$rank" \
            --main_process_ip "$master" --main_process_port "$PORT" -m finetuning.train "$@"
    elif [[ -n "${SLURM_JOB_ID:-}" ]]; then
        "$PYTHON" -m torch.distributed.run --nnodes="$nnodes" --nproc_per_node="$NPROC" \
            --rdzv_backend=c10d --rdzv_endpoint="$master:$PORT" --rdzv_id="$SLURM_JOB_ID" \
            -m finetuning.train "$@"
    else
        "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m finetuning.train "$@"
    fi
}

if [[ -n "${SLURM_JOB_ID:-}" && -n "${SLURM_JOB_NODELIST:-}" ]]; then
    # One launcher per node (srun passes the environment and the exported function);
    # every node's launcher meets the others at the job's first node.
    MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
    NNODES="${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}"
    export MASTER_ADDR NNODES
    export -f node_launcher
    echo "slurm job $SLURM_JOB_ID: $NNODES node(s) x $NPROC worker(s), rendezvous at $MASTER_ADDR:$PORT"
    srun --nodes="$NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
        bash -c 'node_launcher "$NNODES" "$SLURM_NODEID" "$MASTER_ADDR" "$@"' node_launcher "$@"
else
    echo "no Slurm: $NPROC worker(s) on $(hostname)"
    node_launcher 1 0 127.0.0.1 "$@"
fi
