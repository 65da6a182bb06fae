#!/usr/bin/env python
"""Import cost: blurr's star imports against what a fastai + transformers user imports anyway.

Times each statement in fresh interpreter processes (alternating, so a machine that drifts weighs on both alike) and
prints the medians, their ratio against the goal (<= 1.1), and which heavy modules blurr's imports pull in.

    .venv/bin/python benchmarks/bench_import.py --runs 7
"""
from __future__ import annotations
import argparse, statistics, subprocess, sys, time

BLURR = 'from blurr.data.all import *; from blurr.modeling.all import *'
BASE = 'from fastai.text.all import *; import transformers'
HEAVY = ['transformers.modeling_utils', 'transformers.models.auto.modeling_auto', 'transformers.core_model_loading',
         'torch.distributed.tensor', 'sklearn', 'scipy', 'seqeval', 'rouge_score', 'sacrebleu', 'nltk']

def import_seconds(stmt:str) -> float:
    "Wall-clock seconds of a fresh interpreter that runs `stmt` (its start included, the same for both statements)"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-c', stmt], check=True)
    return time.perf_counter() - t0

def heavy_modules(stmt:str) -> list[str]:
    "Which of `HEAVY` a fresh interpreter has imported after `stmt`"
    code = f"{stmt}\nimport sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    return subprocess.run([sys.executable, '-c', code], check=True, capture_output=True, text=True).stdout.split()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=7, help='fresh processes per statement')
    args = p.parse_args()
    import_seconds(BLURR)   # warm the file cache once, for both
    times = {BLURR: [], BASE: []}
    for i in range(args.runs):
        for stmt in ((BLURR, BASE) if i % 2 == 0 else (BASE, BLURR)): times[stmt].append(import_seconds(stmt))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items(): print(f"{med[k]:6.2f} s median of {args.runs} ({min(v):.2f}-{max(v):.2f})  {k}")
    ratio = med[BLURR] / med[BASE]
    print(f"ratio {ratio:.2f} (goal <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'})")
    base_heavy = set(heavy_modules(BASE))
    extra = [m for m in heavy_modules(BLURR) if m not in base_heavy]
    print(f"heavy modules blurr adds: {', '.join(extra) if extra else 'none'} (the base already has: {', '.join(sorted(base_heavy)) or 'none'})")

if __name__ == '__main__': main()
