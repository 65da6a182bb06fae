#!/usr/bin/env bash
# One short run that proves every task on CUDA and prints the speed figures the issues ask for (run it whenever a session
# has the device machine; its output goes in the issue note). On a CPU-only machine it runs the same checks on the CPU.
# The device machine has PyTorch and transformers but no fastai and no package index: first, here,
#   bash benchmarks/gpu_bundle.sh          # .gpu/: the missing wheels for its Python 3.12 (about 22 MB)
# then on the device (carry [".gpu"]):
#   bash benchmarks/gpu_check.sh
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if [ -d .gpu ] && ! $PY -c "import fastai" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl && cp -r .gpu/site/* /tmp/site/ || exit 1
  export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || echo "# no nvidia-smi: CPU only"
$PY -c "import torch, transformers, fastai; print('torch', torch.__version__, 'transformers', transformers.__version__, 'fastai', fastai.__version__)"
$PY benchmarks/gpu_check.py; rc=$?
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  # Issue 17 on a GPU: bert-base-shaped random weights in bf16 at bs 32 and 128 against the Trainer (and the plain loop)
  for bs in 32 128; do $PY benchmarks/bench_seqcls.py --model base --precision bf16 --n 4000 --epochs 1 --bs $bs --lr 5e-5 | grep -v '^BENCH_JSON' | tail -n 25; done
  # blurr's default, batches padded from the token cache in the training process (a step reads nothing on the host, so
  # the CPU can run ahead), against the same batches built by 4 worker processes and handed over (2-4 ms a batch on a 2-core CPU)
  $PY benchmarks/bench_seqcls.py --model base --precision bf16 --n 4000 --epochs 1 --bs 32 --lr 5e-5 --blurr-workers 4 --no-plain | grep -v '^BENCH_JSON' | tail -n 12
  $PY benchmarks/bench_seqcls.py --model base --precision fp16 --n 2000 --epochs 1 --bs 32 --lr 5e-5 --no-plain | grep -v '^BENCH_JSON' | tail -n 12
  $PY benchmarks/bench_lm.py --quick | tail -n 12
  # the real-weights settings of language modeling and seq2seq (MiniLM as a masked LM; MiniLM warm-started into an encoder-decoder)
  $PY benchmarks/bench_mlm.py --quick | tail -n 14
  $PY benchmarks/bench_seq2seq.py --model minilm --epochs 2 | grep -v '^BENCH_JSON' | tail -n 8
  # Issue 16 on a GPU: the 2-process check's job in one process on CUDA (one process per GPU where there are several)
  m=/tmp/tiny_bert; $PY -c "import shutil; from blurr.testing import tiny_hf_folder; shutil.copytree(tiny_hf_folder('bert'), '$m', dirs_exist_ok=True)"
  n=$($PY -c "import torch; print(torch.cuda.device_count())")
  if [ "$n" -gt 1 ]; then $PY -m torch.distributed.run --nproc_per_node "$n" -m blurr.distributed_check --out /tmp/dcheck --classification "$m" --ner "$m"
  else $PY -m blurr.distributed_check --out /tmp/dcheck --classification "$m" --ner "$m"; fi
fi
exit $rc
