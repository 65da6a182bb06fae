#!/usr/bin/env python
"""Which order of length-sorted training batches should blurr use? Each task's blurr side, over seeds and orders.

`HF_SortedDL(batch_order=...)` puts texts of similar length in the same batch in every order except 'random'; the orders
differ only in the sequence the batches come in:

- 'shuffled': fastai's `SortedDL`: chunks of 50 batches sorted by length, then every batch but the first (the longest)
  and the last shuffled across the epoch;
- 'grouped': the chunks in turn, each from its longest text to its shortest (what the Trainer's `LengthGroupedSampler`
  does with its megabatches);
- 'random': plain shuffled batches (no length sorting, more padding).

`--orders trainer` adds the benchmark's Hugging Face Trainer side (its `group_by_length` sampler) for reference.

Runs each benchmark's blurr worker (same model, data, schedule as the benchmark's defaults) for every task, seed and
order, and prints the score of each run, then the mean and the worst run per task and order. The scores are all that
matter here; for speed, use the benchmarks themselves. Runs `--jobs` workers at once with `--threads` threads each.

    .venv/bin/python benchmarks/study_order.py                      # 4 tasks x 3 orders x 3 seeds, about 35 minutes
    .venv/bin/python benchmarks/study_order.py --tasks ner --seeds 42 1 2 3 4
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from statistics import mean

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TAG

HERE = os.path.dirname(os.path.abspath(__file__))
# task: (script, extra worker flags, the score to read from the worker's JSON, the score's name)
TASKS = {
    'seqcls':  ('bench_seqcls.py',  ['--n', '2000', '--epochs', '1'], 'val_acc', 'accuracy'),
    'ner':     ('bench_ner.py',     ['--epochs', '2'], 'f1', 'entity F1'),
    'qa':      ('bench_qa.py',      ['--epochs', '2'], 'f1', 'SQuAD F1'),
    'seq2seq': ('bench_seq2seq.py', [], 'rougeL', 'ROUGE-L'),
}
ORDERS = ['shuffled', 'grouped', 'random', 'trainer']

def run_one(task, seed, order, threads, model_dirs) -> float | None:
    script, extra, key, _ = TASKS[task]
    side = ['hf'] if order == 'trainer' else ['blurr', '--blurr-order', order]
    cmd = [sys.executable, os.path.join(HERE, script), '--worker', *side, '--seed', str(seed), '--threads', str(threads), *extra]
    if task == 'seq2seq': cmd += ['--model-dir', model_dirs[seed]]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(TAG)]
    if proc.returncode != 0 or not lines:
        print(f'[{task} seed {seed} {order}] FAILED:\n{(proc.stdout + proc.stderr)[-3000:]}', file=sys.stderr, flush=True)
        return None
    score = json.loads(lines[-1][len(TAG):])[key]
    print(f'[{task} seed {seed} {order}] {score:.4f} ({time.perf_counter() - t0:.0f}s)', file=sys.stderr, flush=True)
    return score

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--tasks', nargs='+', choices=list(TASKS), default=list(TASKS))
    p.add_argument('--orders', nargs='+', choices=ORDERS, default=ORDERS[:3])
    p.add_argument('--seeds', nargs='+', type=int, default=[42, 1, 2])
    p.add_argument('--jobs', type=int, default=2, help='workers at once')
    p.add_argument('--threads', type=int, default=1, help='torch threads per worker')
    a = p.parse_args()
    model_dirs = {}
    if 'seq2seq' in a.tasks:  # the seq2seq benchmark's parent builds the model once per seed; so do we
        from bench_seq2seq import build_model
        for s in a.seeds: model_dirs[s] = tempfile.mkdtemp(prefix='study_s2s_'); build_model(model_dirs[s], s)
    runs = [(t, s, o) for t in a.tasks for s in a.seeds for o in a.orders]
    try:
        with ThreadPoolExecutor(a.jobs) as ex:
            scores = dict(zip(runs, ex.map(lambda r: run_one(*r, a.threads, model_dirs), runs)))
    finally:
        for d in model_dirs.values(): shutil.rmtree(d, ignore_errors=True)
    w = max(len(o) for o in a.orders) + 2
    for t in a.tasks:
        print(f'\n## {t}: {TASKS[t][3]} per seed and order (benchmark flags: {" ".join(TASKS[t][1]) or "defaults"})')
        print(f'{"seed":>6}' + ''.join(f'{o:>{w}}' for o in a.orders))
        for s in a.seeds: print(f'{s:>6}' + ''.join(f'{scores[(t, s, o)] or float("nan"):>{w}.4f}' for o in a.orders))
        ok = {o: [scores[(t, s, o)] for s in a.seeds if scores[(t, s, o)] is not None] for o in a.orders}
        print(f'{"mean":>6}' + ''.join(f'{mean(ok[o]) if ok[o] else float("nan"):>{w}.4f}' for o in a.orders))
        print(f'{"worst":>6}' + ''.join(f'{min(ok[o]) if ok[o] else float("nan"):>{w}.4f}' for o in a.orders))
    if any(v is None for v in scores.values()): sys.exit(1)

if __name__ == '__main__':
    main()
