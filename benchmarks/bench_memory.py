#!/usr/bin/env python
"""Peak memory of training steps with and without `HF_GradientCheckpointing`: MiniLM (all-MiniLM-L6-v2) on batches of
long texts, each side in a fresh process; on CUDA the peak of `torch.cuda.max_memory_allocated`, on a CPU the peak
resident memory (VmHWM, reset before the measured steps) above the memory before them.

    .venv/bin/python benchmarks/bench_memory.py --bs 32 --tokens 256
"""
from __future__ import annotations
import argparse, sys, time
from harness import TAG, cur_rss_mb, print_stack, print_rows, run_worker, classification_dls

def _reset_peak_rss() -> bool:
    "Reset this process's peak resident memory (Linux: `5` to /proc/self/clear_refs)"
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        return True
    except OSError: return False

def _peak_rss_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    return float('nan')

def run(a) -> dict:
    import torch, warnings
    import pandas as pd
    warnings.filterwarnings('ignore')
    from fastai.text.all import set_seed
    from blurr.modeling.all import BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_GradientCheckpointing, blurr_learner
    from blurr.embedded import default_model_path, rotten_tomatoes_df
    set_seed(42)
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(default_model_path(), task=HF_TASKS_AUTO.SequenceClassification,
                                                              config_kwargs={'num_labels': 2})
    snippets = rotten_tomatoes_df(n=4 * a.bs)
    long = [' '.join(snippets.text.iloc[i:i + 12]) for i in range(3 * a.bs)]   # a dozen snippets: longer than --tokens
    df = pd.DataFrame({'text': long, 'label': snippets.label.iloc[:3 * a.bs].tolist(), 'is_valid': [False] * (2 * a.bs) + [True] * a.bs})
    dls = classification_dls(df, hf_arch, tok, a.bs, a.tokens, device=a.device)
    cbs = [HF_GradientCheckpointing()] if a.worker == 'checkpointing' else []
    learn = blurr_learner(dls, model, cbs=cbs)
    if a.bf16: learn.to_bf16()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-5)   # the optimizer's state exists before we measure
    cuda = a.device == 'cuda'
    if cuda: torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); before = torch.cuda.memory_allocated() / 2**20
    else: _reset_peak_rss(); before = cur_rss_mb()
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-5)   # two training steps and one validation batch
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb()
    return dict(side=a.worker, step_mb=peak - before, seconds=seconds, tokens=int(learn.dls.train.one_batch()[0]['input_ids'].shape[1]))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--tokens', type=int, default=256, help='max_length of the texts (they are longer)')
    p.add_argument('--device', default=None, help="'cpu' or 'cuda' (default: cuda when there is one)")
    p.add_argument('--bf16', action='store_true', help='train under `to_bf16()`')
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.device is None:
        import torch
        a.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if a.worker:
        from harness import worker_main
        worker_main(a, run_plain=run, checkpointing=run)   # the same job; `run` adds the callback for 'checkpointing'
        return
    print_stack('bench_memory')
    args = ['--bs', a.bs, '--tokens', a.tokens, '--device', a.device] + (['--bf16'] if a.bf16 else [])
    res = [run_worker(__file__, side, args) for side in ('plain', 'checkpointing')]
    if any(r is None for r in res): sys.exit(1)
    plain, ckpt = res
    what = 'CUDA max_memory_allocated' if a.device == 'cuda' else 'peak RSS (VmHWM)'
    print(f'# MiniLM, bs {a.bs}, {plain["tokens"]} tokens a text, {a.device}{" bf16" if a.bf16 else ""}: {what} above the memory before two training steps')
    print_rows([('side', 's', lambda r: r['side']), ('step MB', '.0f', lambda r: r['step_mb']), ('seconds', '.1f', lambda r: r['seconds'])], res)
    print(f'# checkpointing: {ckpt["step_mb"] / plain["step_mb"]:.2f}x the memory, {ckpt["seconds"] / plain["seconds"]:.2f}x the time')

if __name__ == '__main__': main()
