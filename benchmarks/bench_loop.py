#!/usr/bin/env python
"""What a training step costs outside the model: the same loop run on a model that does no work.

A null classifier (one bias vector as its logits, so forward, backward and the fused AdamW step cost microseconds) is
trained four ways on the same sequence-classification DataLoaders (Rotten Tomatoes snippets, MiniLM's tokenizer,
length-sorted batches, bs 32):

- `plain`: a bare PyTorch loop (forward, `F.cross_entropy`, backward, fused AdamW, fastai's one-cycle formula) over
  batches collated before the clock starts: the floor.
- `plain+dl`: the same loop iterating blurr's DataLoader, so the batch (padding from the token cache, collation) counts.
- `fastai`: fastai's `Learner` with blurr's callbacks and `TorchAdamW`, `fit_one_cycle`.
- `blurr`: `BlurrLearner`, the same arguments.

Each side runs `--repeats` times, interleaved, and the best per-step time of each is printed (the noise on a shared
machine only adds time), with the minor page faults a step (memory the allocator took anew). `--profile` prints
cProfile's view of one `BlurrLearner` fit.

`--model tiny` trains harness's random 2-layer BERT instead (the GPU regime on a CPU, the same initial weights on
every side): `efficiency`, the plain loop's best time over a side's best, is blurr's samples/s against the limit of a
bare loop over batches collated beforehand, in one process; `paired_eff` is the median over repeats of the plain loop's
time over the side's in the same repeat (back to back, so a slow spell of the shared machine weighs on both). Each
repeat seeds numpy, with which blurr's DataLoader shuffles, so every side of a repeat trains on the same batches.

    .venv/bin/python benchmarks/bench_loop.py --threads 1                 # the figures in benchmarks/README.md
    .venv/bin/python benchmarks/bench_loop.py --threads 1 --profile 25    # where BlurrLearner's step goes
    .venv/bin/python benchmarks/bench_loop.py --threads 1 --model tiny --epochs 1 --repeats 9   # efficiency
    .venv/bin/python benchmarks/bench_loop.py --threads 1 --workers 1 --sides plain plain+dl blurr   # batches from a worker process
"""
from __future__ import annotations
import argparse, cProfile, pstats, resource, sys, time
import numpy as np
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import print_stack, fastai_adamw, FastaiOneCycle, print_rows, BERT_SHAPES, classification_dls


def null_classifier(n_labels:int):
    "A module with a transformers-style `forward` whose logits are one trained bias vector per row: only the loop is left to time"
    import torch, torch.nn as nn
    from transformers import BertConfig
    from transformers.modeling_outputs import SequenceClassifierOutput
    class NullClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(n_labels))
            self.config = BertConfig(num_labels=n_labels)
        def get_input_embeddings(self): return None   # blurr then skips its tokenizer-size check
        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None):
            return SequenceClassifierOutput(logits=self.bias.expand(len(input_ids), -1))
    return NullClassifier()


def make_model(a, n_labels:int):
    "The model every side trains, the same initial weights each time: the null classifier, or a BERT of `--model`"
    if a.model == 'null': return null_classifier(n_labels)
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from blurr.embedded import default_model_path
    torch.manual_seed(0)
    if BERT_SHAPES[a.model] is None: return AutoModelForSequenceClassification.from_pretrained(default_model_path(), num_labels=n_labels)
    return AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(default_model_path(), num_labels=n_labels, **BERT_SHAPES[a.model]))


def build_dls(a):
    from transformers import AutoTokenizer
    from blurr.embedded import rotten_tomatoes_df, default_model_path
    kw = {} if a.workers is None else {'num_workers': a.workers}
    return classification_dls(rotten_tomatoes_df(a.n, seed=42), 'bert', AutoTokenizer.from_pretrained(default_model_path()), a.bs, a.max_length, **kw)


def time_plain(dls, a, from_dl:bool) -> float:
    "ms a step of the bare loop, over pre-collated batches or (`from_dl`) iterating the DataLoader"
    import torch, torch.nn.functional as F
    model = make_model(a, len(dls.vocab))
    steps = a.epochs * len(dls.train)
    opt = fastai_adamw(model, 1e-3)
    sched = FastaiOneCycle(opt, 1e-3, steps)
    epochs = [dls.train] * a.epochs if from_dl else [[(xb, yb) for xb, yb in dls.train] for _ in range(a.epochs)]
    accepted = ('input_ids', 'attention_mask', 'token_type_ids')
    model.train()
    t0 = time.perf_counter()
    for batches in epochs:
        for xb, yb in batches:
            loss = F.cross_entropy(model(**{k: xb[k] for k in accepted if k in xb}).logits, yb)
            loss.backward()
            opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
    return 1e3 * (time.perf_counter() - t0) / steps


def learner(dls, cls, a):
    from blurr.modeling.core import HF_BaseModelWrapper, HF_BaseModelCallback, hf_splitter, TorchAdamW
    return cls(dls, HF_BaseModelWrapper(make_model(a, len(dls.vocab))), opt_func=TorchAdamW, wd=0.01,
               cbs=HF_BaseModelCallback, splitter=hf_splitter)


def time_learner(dls, a, cls) -> float:
    "ms a training step of `cls` (fastai's `Learner` or `BlurrLearner`) in `fit_one_cycle`, validation left out"
    from fastai.callback.core import Callback
    class TrainTime(Callback):
        order = -100
        def before_fit(self): self.train_s = 0.0
        def before_train(self): self.t0 = time.perf_counter()
        def after_train(self): self.train_s += time.perf_counter() - self.t0
    learn, cb = learner(dls, cls, a), TrainTime()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, 1e-3, cbs=cb)
    return 1e3 * cb.train_s / (a.epochs * len(dls.train))


def paired_median(base:list, side:list) -> float:
    "The median over repeats of `base`'s time over `side`'s in the same repeat: the two ran back to back, so a slow spell of the machine weighs on both"
    r = sorted(b / s for b, s in zip(base, side))
    return (r[(len(r) - 1) // 2] + r[len(r) // 2]) / 2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=2000, help='Rotten Tomatoes snippets (20%% of them validation)')
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--max-length', type=int, default=128)
    p.add_argument('--epochs', type=int, default=4, help='epochs a run (50 steps each at the defaults)')
    p.add_argument('--repeats', type=int, default=5, help='runs of each side, interleaved; the best is reported')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: leave as is)')
    p.add_argument('--model', choices=['null'] + list(BERT_SHAPES), default='null',
                   help="null: a classifier that does no work (the loop alone); tiny: harness's random 2-layer BERT (the GPU regime on a CPU), "
                        "where `efficiency` (the plain loop's time over each side's) is the issue's measure against the limit; minilm, base")
    p.add_argument('--workers', type=int, default=None, help="DataLoader worker processes (default blurr's: none for batches padded from the token cache)")
    p.add_argument('--sides', nargs='+', default=['plain', 'plain+dl', 'fastai', 'blurr'], help='which sides to run')
    p.add_argument('--profile', type=int, default=0, metavar='N', help="print cProfile's N costliest functions of one BlurrLearner fit")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    import torch
    from fastai.learner import Learner
    from blurr.modeling.core import BlurrLearner
    if a.threads: torch.set_num_threads(a.threads)
    print_stack('bench_loop', a.threads)
    dls = build_dls(a)
    print(f"# {a.model} model, Rotten Tomatoes ({a.n} snippets), bs {a.bs}, {len(dls.train)} steps an epoch, {a.epochs} epochs a run, "
          f"best of {a.repeats}, {dls.train.fake_l.num_workers} DataLoader workers")
    sides = {'plain': lambda: time_plain(dls, a, False), 'plain+dl': lambda: time_plain(dls, a, True),
             'fastai': lambda: time_learner(dls, a, Learner), 'blurr': lambda: time_learner(dls, a, BlurrLearner)}
    sides = {k: sides[k] for k in a.sides}
    for f in sides.values(): f()   # warm up: first calls, the token cache
    ms, faults = {k: [] for k in sides}, {k: [] for k in sides}
    steps = a.epochs * len(dls.train)
    for r in range(a.repeats):
        for k in list(sides)[r % len(sides):] + list(sides)[:r % len(sides)]:   # each side first in turn
            f = sides[k]
            np.random.seed(r)   # blurr's DataLoader shuffles with numpy: every side of a repeat trains on the same batches
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt   # pages the allocator got anew (validation included)
            ms[k].append(f())
            faults[k].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps)
    print_rows([('side', 's', lambda r: r[0]), ('best_ms', '.3f', lambda r: min(r[1])), ('median_ms', '.3f', lambda r: sorted(r[1])[len(r[1]) // 2]),
                *([('over_plain_ms', '.3f', lambda r: min(r[1]) - min(ms['plain'])),
                   *([('efficiency', '.3f', lambda r: min(ms['plain']) / min(r[1])),
                      ('paired_eff', '.3f', lambda r: paired_median(ms['plain'], r[1]))] if a.model != 'null' else [])] if 'plain' in ms else []),
                ('faults_per_step', '.0f', lambda r: sorted(faults[r[0]])[len(r[1]) // 2])], list(ms.items()))
    if a.profile:
        prof = cProfile.Profile()
        prof.runcall(time_learner, dls, a, BlurrLearner)
        pstats.Stats(prof).sort_stats('tottime').print_stats(a.profile)

if __name__ == '__main__':
    main()
