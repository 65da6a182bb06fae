"""What the benchmark scripts share: running each side in a fresh subprocess, seeds and their means, per-step timing
probes, fastai's AdamW and one-cycle schedule for the Trainer side, memory and padding figures, and table printing.

Each `bench_*.py` script imports from here (never from another script)."""
from __future__ import annotations
import argparse, json, math, os, resource, shutil, subprocess, sys, tempfile, time
from contextlib import contextmanager
from importlib.metadata import version

TAG = 'BENCH_JSON '   # the prefix of the one result line a worker prints


def peak_rss_mb() -> float:
    "Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cur_rss_mb() -> float:
    "Current resident set size of this process"
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
    except OSError: pass
    return float('nan')


def pad_stats(masks) -> tuple[int, int]:
    "(zeros, positions) of a list of attention masks"
    z = sum(int((m == 0).sum()) for m in masks)
    return z, sum(m.numel() for m in masks)


class StepProbe:
    """Per-step timestamps and padding of the training batches actually used, from hooks on the Hugging Face model.

    The same probe is attached to the model on both sides; each side calls `opt_begin`/`opt_end` around
    `optimizer.step()` (fastai: before_step/after_step; Trainer: on_pre_optimizer_step/on_optimizer_step)."""
    def __init__(self, model):
        self.reset()
        self.handles = [model.register_forward_pre_hook(self._pre, with_kwargs=True), model.register_forward_hook(self._post)]

    def reset(self):
        self.fwd = self.bwd = self.opt = 0.0
        self.steps, self.pad_zeros, self.pad_total = 0, 0, 0
        self.lrs, self.moms, self.t_ends, self.per_step = [], [], [], []  # per_step: (fwd, bwd, opt) ms
        self.t_fwd0 = self.t_fwd1 = self.t_opt0 = None
        self.faults, self.faults_last = 0, None   # minor page faults from one optimizer step to the next (memory the allocator got anew)

    def _pre(self, module, args, kwargs):
        if not module.training: return
        m = kwargs.get('attention_mask')
        if m is not None: self.pad_zeros += int((m == 0).sum()); self.pad_total += m.numel()
        self.t_fwd0 = time.perf_counter()

    def _post(self, module, args, out):
        if not module.training: return
        self.t_fwd1 = time.perf_counter()
        self.fwd += self.t_fwd1 - self.t_fwd0
        self.per_step.append([round(1e3 * (self.t_fwd1 - self.t_fwd0), 1)])

    def opt_begin(self, lr, mom):
        self.t_opt0 = time.perf_counter()
        self.bwd += self.t_opt0 - self.t_fwd1  # loss (fastai) + backward (+ Trainer's grad-norm)
        self.per_step[-1].append(round(1e3 * (self.t_opt0 - self.t_fwd1), 1))
        self.lrs.append(float(lr)); self.moms.append(float(mom))

    def opt_end(self):
        t = time.perf_counter()
        self.opt += t - self.t_opt0
        self.per_step[-1].append(round(1e3 * (t - self.t_opt0), 1))
        self.steps += 1; self.t_ends.append(t)
        f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if self.faults_last is not None: self.faults += f - self.faults_last
        self.faults_last = f

    def summary(self, train_s):
        s = max(self.steps, 1)
        d = sorted(y - x for x, y in zip(self.t_ends, self.t_ends[1:]))  # step-to-step wall times (first step left out)
        med = (d[len(d) // 2] if len(d) % 2 else (d[len(d) // 2 - 1] + d[len(d) // 2]) / 2) if d else float('nan')
        return dict(step_ms_median=1e3 * med, per_step_fwd_bwd_opt_ms=self.per_step,
                    faults_per_step=self.faults / max(self.steps - 1, 1), fwd_ms=1e3 * self.fwd / s, bwd_ms=1e3 * self.bwd / s, opt_ms=1e3 * self.opt / s,
                    rest_ms=1e3 * (train_s - self.fwd - self.bwd - self.opt) / s)


def fastai_timer(probe):
    "A fastai callback timing each epoch's training phase (`train_s`) and validation (`valid_s`) apart, and the optimizer step"
    from fastai.callback.core import Callback
    class BenchCB(Callback):
        order = -100
        def before_fit(self): self.train_s, self.valid_s = [], []
        def before_train(self): self.t0 = time.perf_counter()
        def after_train(self): self.train_s.append(time.perf_counter() - self.t0)
        def before_validate(self): self.t0 = time.perf_counter()
        def after_validate(self): self.valid_s.append(time.perf_counter() - self.t0)
        def before_step(self):
            h = self.learn.opt.hypers[0]
            probe.opt_begin(h['lr'], h['mom'])
        def after_step(self): probe.opt_end()
    return BenchCB()


def trainer_timer(probe, opt):
    "A Trainer callback timing each training epoch (on_epoch_begin..on_epoch_end; eval is off) and the optimizer step"
    from transformers import TrainerCallback
    class BenchCB(TrainerCallback):
        def __init__(self): self.train_s = []
        def on_epoch_begin(self, args, state, control, **kw): self.t0 = time.perf_counter()
        def on_epoch_end(self, args, state, control, **kw): self.train_s.append(time.perf_counter() - self.t0)
        def on_pre_optimizer_step(self, args, state, control, **kw):
            probe.opt_begin(opt.param_groups[0]['lr'], opt.param_groups[0]['betas'][0])
        def on_optimizer_step(self, args, state, control, **kw): probe.opt_end()
    return BenchCB()


def decay_split(model):
    "fastai's split (`norm_bias_params`, Learner(wd_bn_bias=False)): no weight decay on LayerNorm params and biases"
    import torch.nn as nn
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
                  nn.LayerNorm)
    no_wd = set()
    for m in model.modules():
        if isinstance(m, norm_types): no_wd.update(id(p) for p in m.parameters())
        elif getattr(m, 'bias', None) is not None and isinstance(m.bias, nn.Parameter): no_wd.add(id(m.bias))
    ps = list(model.parameters())
    return [p for p in ps if id(p) not in no_wd], [p for p in ps if id(p) in no_wd]


def fastai_adamw(model, lr:float, fused:bool=True):
    "torch AdamW with fastai's defaults (betas 0.9/0.99, eps 1e-5, wd 0.01 except on norms and biases), as blurr's `TorchAdamW`"
    import torch
    decay, no_decay = decay_split(model)
    return torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}],
                             lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01, fused=fused)


def fastai_cos(start, end, pos): return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def fastai_one_cycle(pos, start, middle, end, pct=0.25):
    "fastai's `combined_cos(pct, start, middle, end)` at `pos` in [0, 1)"
    return fastai_cos(start, middle, pos / pct) if pos < pct else fastai_cos(middle, end, (pos - pct) / (1 - pct))


def FastaiOneCycle(opt, lr_max, total_steps, div=25., div_final=1e5, pct_start=0.25, moms=(0.95, 0.85, 0.95)):
    "A torch scheduler giving optimizer step i the lr and beta1 that `fit_one_cycle` gives it (at pos = i/total_steps)"
    import torch
    class _Sched(torch.optim.lr_scheduler.LRScheduler):
        def get_lr(self):
            pos = min(self.last_epoch, total_steps - 1) / total_steps
            return [fastai_one_cycle(pos, lr_max / div, lr_max, lr_max / div_final, pct_start)] * len(self.optimizer.param_groups)
        def step(self, *args, **kwargs):
            super().step(*args, **kwargs)
            pos = min(self.last_epoch, total_steps - 1) / total_steps
            for g in self.optimizer.param_groups: g['betas'] = (fastai_one_cycle(pos, *moms, pct_start), g['betas'][1])
    return _Sched(opt)


def worker_main(a, run_blurr=None, run_hf=None, run_plain=None, **run_sides):
    "In a worker process: run side `a.worker` (blurr, hf, a plain loop, or one named in `run_sides`) and print its result as one tagged JSON line"
    import torch
    if getattr(a, 'threads', None): torch.set_num_threads(a.threads)
    res = {'blurr': run_blurr, 'hf': run_hf, 'plain': run_plain, **run_sides}[a.worker](a)
    res.pop('per_step_fwd_bwd_opt_ms', None)
    sys.stdout.flush()
    print(TAG + json.dumps(res), flush=True)


def print_stack(name:str, threads:int|None=None):
    "The benchmark's first line: library versions, threads and cores"
    import torch
    print(f'# {name}: torch {torch.__version__}, transformers {version("transformers")}, fastai {version("fastai")}, '
          f'threads {threads or torch.get_num_threads()}, cpus {os.cpu_count()}')


def print_schedule_check(b:dict, h:dict):
    "How far apart the two sides' per-step learning rates and beta1 were"
    if not b.get('lrs') or len(b['lrs']) != len(h.get('lrs', [])): return
    dl, dm = (max(abs(x - y) for x, y in zip(b[k], h[k])) for k in ('lrs', 'moms'))
    print(f"# schedule (each step's lr and beta1): max |lr diff| {dl:.3g} ({100 * dl / max(b['lrs']):.2f}% of the peak), "
          f"max |beta1 diff| {dm:.3g}")


def run_worker(script:str, side:str, args:list[str]) -> dict | None:
    "Run one side of a benchmark (`script --worker side *args`) in a fresh subprocess; its result dict, or None if it failed"
    cmd = [sys.executable, os.path.abspath(script), '--worker', side, *map(str, args)]
    print(f'[{side}] running: {" ".join(cmd[2:])}', file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(TAG)]
    if proc.returncode != 0 or not lines:
        print(f'[{side}] FAILED (exit {proc.returncode}); last output:\n{(proc.stdout + proc.stderr)[-4000:]}', file=sys.stderr)
        return None
    print(f'[{side}] done in {time.perf_counter() - t0:.0f}s', file=sys.stderr, flush=True)
    return json.loads(lines[-1][len(TAG):])


def add_blurr_dl_args(p):
    "The options for blurr's DataLoader (unset: blurr's defaults)"
    p.add_argument('--blurr-workers', type=int, default=None, help="blurr DataLoader worker processes (default: blurr's)")
    p.add_argument('--blurr-order', choices=['shuffled', 'grouped', 'random'], default=None,
                   help="order of blurr's training batches (`HF_SortedDL(batch_order=...)`; default: the task's own)")


def add_seeds_arg(p):
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='run the comparison once per seed (instead of --seed) and end with the means over the seeds')


def run_seeds(a, sides:list, run_side, report) -> list[tuple[int, dict]]:
    """Each side once per seed of `a.seeds` (or for `a.seed`), each run reported by `report(res)`: [(seed, res)].
    The sides take turns going first from one seed to the next, so a machine that drifts over a run favours neither."""
    runs = []
    for i, seed in enumerate(a.seeds or [a.seed]):
        a.seed = seed
        if a.seeds: print(f'\n## seed {seed}', flush=True)
        res = {s: run_side(s, a) for s in (sides if i % 2 == 0 else sides[::-1])}
        res = {s: res[s] for s in sides}
        report(res)
        runs.append((seed, res))
    return runs


def seed_means(runs:list, scores:dict, speed) -> dict:
    "Over the seeds that ran on both sides: the runs, each side's mean of each score (`name: key`), blurr - HF in points, the speed ratios and their mean"
    runs = [(seed, res) for seed, res in runs if res.get('blurr') is not None and res.get('hf') is not None]
    if not runs: return dict(runs=runs)
    means = {name: tuple(sum(res[side][key] for _, res in runs) / len(runs) for side in ('blurr', 'hf')) for name, key in scores.items()}
    ratios = [speed(res['blurr']) / speed(res['hf']) for _, res in runs]
    return dict(runs=runs, means=means, diffs={name: 100 * (b - h) for name, (b, h) in means.items()}, ratios=ratios,
                mean_ratio=sum(ratios) / len(ratios))


def print_seeds_summary(runs:list, scores:dict, speed, min_ratio:float=1.0):
    "With several seeds: each side's mean of each score (`name: key`, fractions shown in points), the speed ratios, and the goal on the means"
    m = seed_means(runs, scores, speed)
    if len(m['runs']) < 2: return
    print(f'\n## means over seeds {", ".join(str(seed) for seed, _ in m["runs"])}')
    for name, key in scores.items():
        (b, h), per_seed = m['means'][name], ', '.join(f"{100 * (res['blurr'][key] - res['hf'][key]):+.2f}" for _, res in m['runs'])
        print(f'{name}: blurr {b:.4f}, HF {h:.4f}, blurr - HF {m["diffs"][name]:+.2f} points (per seed: {per_seed})')
    print(f"blurr/HF speed: {', '.join(f'{r:.3f}' for r in m['ratios'])}; mean {m['mean_ratio']:.3f}")
    print(f"# goal on the means (every score within 1 point or above the Trainer's, blurr at least {min_ratio:g}x as fast): "
          f"{'met' if all(d >= -1 for d in m['diffs'].values()) and m['mean_ratio'] >= min_ratio else 'not met'}; "
          f"within 1 point either way: {'yes' if all(abs(d) <= 1 for d in m['diffs'].values()) else 'no'}")


def weights_checksum(model) -> float:
    "Sum of |w| over every parameter right after loading: equal on both sides iff they start from the same weights"
    return float(sum(p.detach().abs().sum() for p in model.parameters()))


def print_loss_summary(runs:list, speed, min_ratio:float=1.0, unit:str='tokens/s'):
    "With several seeds: the mean `speed` of each side and their ratios, the mean validation loss and its difference, the per-step split, and the goal (at least `min_ratio`, loss within 2%)"
    m = seed_means(runs, {'valid_loss': 'valid_loss'}, speed)
    if len(m['runs']) < 2: return
    (bl, hl), = m['means'].values()
    dl = (bl - hl) / hl
    mean = lambda side, f: sum(f(res[side]) for _, res in m['runs']) / len(m['runs'])
    print(f'\n## means over seeds {", ".join(str(s) for s, _ in m["runs"])}')
    print(f"{unit}: blurr {mean('blurr', speed):.0f}, HF {mean('hf', speed):.0f}; blurr/HF per seed "
          f"{', '.join(f'{r:.3f}' for r in m['ratios'])}; mean {m['mean_ratio']:.3f}")
    per_seed = ', '.join(f"{100 * (res['blurr']['valid_loss'] - res['hf']['valid_loss']) / res['hf']['valid_loss']:+.2f}%" for _, res in m['runs'])
    print(f"valid loss: blurr {bl:.4f}, HF {hl:.4f} ({100 * dl:+.2f}%; per seed: {per_seed})")
    for side in ('blurr', 'hf'):
        print(f"per step {side}: " + ', '.join(f"{k} {mean(side, lambda r: r[k + '_ms']):.2f}" for k in ('fwd', 'bwd', 'opt', 'rest')) +
              f" ms; median step {mean(side, lambda r: r['step_ms_median']):.1f} ms; page faults a step {mean(side, lambda r: r['faults_per_step']):.0f}")
    print(f"# goal on the means (blurr at least {min_ratio:g}x the Trainer's {unit}, valid loss within 2%): "
          f"{'met' if m['mean_ratio'] >= min_ratio and abs(dl) <= 0.02 else 'not met'} (speed {m['mean_ratio']:.3f}, loss {100 * dl:+.2f}%)")


def print_token_tables(rows:list, targets:str, valid_loss:str, batch:str):
    "The language-model benchmarks' two tables, each side a row: tokens, targets, padding and speed; the per-step split. The legends name what `targets`, `valid_loss` and getting a `batch` mean for the task"
    print(f'\n# tokens = real (non-pad) input tokens over all training steps; targets = {targets} among them; tokens/s over '
          'training time (epochs, no validation); epoch_s = mean per epoch; prep_s = building the data (blurr: DataLoaders, '
          f'HF: Dataset.map); pad% = padding share of the positions; valid_loss = {valid_loss}')
    print_rows([('side', 's', lambda r: r['side']), ('steps', 'd', lambda r: r['steps']), ('rows', 'd', lambda r: r['rows']),
                ('tokens', 'd', lambda r: r['tokens']), ('targets', 'd', lambda r: r['targets']),
                ('pad%', '.1f', lambda r: 100 * r['pad_frac']), ('prep_s', '.2f', lambda r: r['prep_s']),
                ('epoch_s', '.2f', lambda r: r['train_s'] / len(r['epoch_s'])), ('tokens/s', '.0f', lambda r: r['tokens'] / r['train_s']),
                ('median_ms', '.1f', lambda r: r['step_ms_median']), ('peak_MB', '.0f', lambda r: r['peak_rss_mb']),
                ('valid_loss', '.4f', lambda r: r['valid_loss'])], rows)
    print('\n# per training step (ms): fwd = model forward (HF: with its loss); bwd = forward end -> optimizer step (blurr: loss, '
          'backward; HF: backward and the gradient norm the Trainer computes every step); opt = optimizer step; rest = the rest '
          f'(getting the batch: {batch}; callbacks); page_faults = minor page faults a step (memory the allocator took from the system anew)')
    print_rows([('side', 's', lambda r: r['side'])] + [(k, '.2f', (lambda k: lambda r: r[k + '_ms'])(k)) for k in ('fwd', 'bwd', 'opt', 'rest')] +
               [('page_faults', '.0f', lambda r: r['faults_per_step'])], rows)


def classification_dls(df, hf_arch:str, hf_tokenizer, bs:int, max_length:int|None=None, **kwargs):
    "blurr's DataLoaders for the classification benchmarks: the 'text' column labelled by 'label', validation rows marked in 'is_valid'"
    from fastai.text.all import DataBlock, CategoryBlock, ColReader, ColSplitter
    from blurr.data.core import HF_TextBlock
    blocks = (HF_TextBlock(hf_arch=hf_arch, hf_tokenizer=hf_tokenizer, max_length=max_length), CategoryBlock)
    return DataBlock(blocks=blocks, get_x=ColReader('text'), get_y=ColReader('label'), splitter=ColSplitter('is_valid')).dataloaders(df, bs=bs, **kwargs)


def blurr_dl_kwargs(a) -> dict:
    "`dataloaders` keyword arguments for blurr's side from the options that are set"
    return {k: v for k, v in (('num_workers', a.blurr_workers), ('batch_order', a.blurr_order)) if v is not None}


def flags(a, *names) -> list[str]:
    "Command-line flags repeating the options `names` of the parsed `a` that are set (a switch that is on: its flag alone)"
    res = []
    for n in names:
        v = getattr(a, n)
        if v is None or v is False: continue
        res.append(f"--{n.replace('_', '-')}")
        if v is not True: res.append(repr(v) if isinstance(v, float) else str(v))
    return res

def add_lm_args(p):
    "The options the language-model benchmarks (`bench_lm.py`, `bench_mlm.py`) share after their job's own: batch order, a quick run, blurr's logits, seeds, one side, threads, and the workers' hidden ones"
    p.add_argument('--order', choices=['length', 'random'], default='length',
                   help="length-sorted batches (blurr's default order, the Trainer's group_by_length) or shuffled on both sides")
    p.add_argument('--quick', action='store_true', help='a smoke run: 480 snippets, 1 epoch (the figures mean little)')
    p.add_argument('--all-logits', action='store_true',
                   help="blurr computes the logits of every position in training, as the Trainer does (default: only at the targets, `HF_LogitsAtTargets`)")
    p.add_argument('--seed', type=int, default=42)
    add_seeds_arg(p)
    p.add_argument('--only', choices=['blurr', 'hf'])
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads in each worker (default: leave as is)')
    p.add_argument('--worker', choices=['blurr', 'hf'], help=argparse.SUPPRESS)
    p.add_argument('--model-dir', help=argparse.SUPPRESS)


def print_rows(cols, rows):
    cells = [[name for name, _, _ in cols]] + [[format(f(r), fmt) for _, fmt, f in cols] for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    for i, c in enumerate(cells):
        print('  '.join(s.rjust(w[j]) if j else s.ljust(w[j]) for j, s in enumerate(c)))
        if i == 0: print('  '.join('-' * x for x in w))


# ---------------------------------------------------------------------------------------------------------------------
# The model of the encoder benchmarks: the embedded MiniLM, or a random BERT of another shape with MiniLM's tokenizer
# ---------------------------------------------------------------------------------------------------------------------
BERT_SHAPES = {
    'minilm': None,   # all-MiniLM-L6-v2's real weights (the embedded folder)
    # The GPU regime on this CPU: forward+backward+optimizer in about 5-20 ms a step, so what a library does outside the
    # model weighs as it does next to a base-size model on a GPU
    'tiny': dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
    'base': dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),   # bert-base's shape
}

def add_model_arg(p):
    "`--model`: which encoder the benchmark trains (and the hidden `--model-dir` the parent hands its workers)"
    p.add_argument('--model', choices=list(BERT_SHAPES), default='minilm',
                   help="minilm: all-MiniLM-L6-v2's weights; tiny: a random 2-layer width-64 BERT (the GPU regime on a CPU); "
                        "base: a random bert-base-shaped BERT (for a GPU); random ones with MiniLM's tokenizer, the same weights on every side")
    p.add_argument('--model-dir', help=argparse.SUPPRESS)


def model_path(a) -> str:
    "The folder a worker loads its model and tokenizer from"
    from blurr.embedded import default_model_path
    return a.model_dir or str(default_model_path())


def save_random_bert(folder:str, shape:str, seed:int):
    "A BERT of `BERT_SHAPES[shape]` with random weights from `seed` and MiniLM's tokenizer, saved to `folder` (task heads are added by each side from the seed)"
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from blurr.embedded import default_model_path
    path = default_model_path()
    torch.manual_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(path, **BERT_SHAPES[shape])).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)


@contextmanager
def model_per_seed(a, run_side):
    "`run_side` that, for a random `--model`, first saves that seed's model in a temporary folder (`a.model_dir`) shared by the sides"
    built = {}
    def run(side, a):
        if BERT_SHAPES[a.model] is not None and a.seed not in built:
            for d in built.values(): shutil.rmtree(d, ignore_errors=True)
            a.model_dir = built[a.seed] = tempfile.mkdtemp(prefix=f'bench_{a.model}_')
            save_random_bert(a.model_dir, a.model, a.seed)
        return run_side(side, a)
    try: yield run
    finally:
        for d in built.values(): shutil.rmtree(d, ignore_errors=True)
        a.model_dir = None


def model_name(a) -> str:
    return {'minilm': 'all-MiniLM-L6-v2'}.get(a.model, f"random BERT ({a.model}: " + ', '.join(f'{k}={v}' for k, v in (BERT_SHAPES[a.model] or {}).items()) + ')')
