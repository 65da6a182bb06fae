#!/usr/bin/env bash
# One short run that proves every task on CUDA and prints the speed figures the issues ask for (run it whenever a session
# has the device machine; its output goes in the issue note). On a CPU-only machine it runs the same checks on the CPU.
#   bash benchmarks/gpu_check.sh
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "# no nvidia-smi: CPU only"
python benchmarks/gpu_check.py; rc=$?
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  python benchmarks/bench_seqcls.py --n 2000 --epochs 1 --bs 32 --precision bf16 | tail -n 25
  python benchmarks/bench_seqcls.py --n 2000 --epochs 1 --bs 32 --precision fp16 | tail -n 8
  python benchmarks/bench_lm.py --quick | tail -n 12
fi
exit $rc
