#!/usr/bin/env python
"""Sequence classification: blurr + fastai against the Hugging Face `Trainer`, on the same job.

Each side runs in its own fresh subprocess (so peak memory is per side and neither warms the other) and prints one JSON
line; the parent prints a comparison table. Same model (all-MiniLM-L6-v2 from the embedded folder, num_labels=2, same
seed, so the same initial head), same train/valid rows, epochs, batch size, max_length, one-cycle schedule and AdamW
hyper-parameters, full fine-tuning, no gradient clipping.

    .venv/bin/python benchmarks/bench_seqcls.py --n 2000 --epochs 1

See benchmarks/README.md for what is measured and how.
"""
from __future__ import annotations
import argparse, json, os, platform, sys, time
from importlib.metadata import version

from harness import TAG, peak_rss_mb, cur_rss_mb, pad_stats, StepProbe, fastai_timer, trainer_timer, fastai_adamw, FastaiOneCycle, worker_main, run_worker, add_blurr_dl_args, add_seeds_arg, run_seeds, print_seeds_summary, blurr_dl_kwargs, flags, print_rows, add_model_arg, model_path, model_per_seed, model_name, classification_dls

def load_df(a):
    from blurr.embedded import rotten_tomatoes_df
    df = rotten_tomatoes_df(n=a.n, valid_pct=0.2, seed=a.seed)
    return df, sorted(df.label.unique())

def head_checksum(model) -> float:
    "Sum of |w| of the classifier head right after loading: equal on both sides iff the initial head is the same"
    return float(sum(p.detach().abs().sum() for p in model.classifier.parameters()))

def common_result(a, t_start, df, head0, model):
    import torch
    p = next(model.parameters())
    return dict(n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()), epochs=a.epochs, bs=a.bs, lr=a.lr,
                max_length=a.max_length, seed=a.seed, threads=torch.get_num_threads(), device=str(p.device),
                dtype=str(p.dtype).replace('torch.', ''), attn=getattr(model.config, '_attn_implementation', None),
                head_init_sum=head0, trainable=all(q.requires_grad for q in model.parameters()),
                n_params=sum(q.numel() for q in model.parameters()),
                n_params_matmul=sum(q.numel() for q in model.parameters()) - model.get_input_embeddings().weight.numel(),
                total_s=time.perf_counter() - t_start)


def blurr_objects(a):
    "What blurr's side and the plain loop share: the rows, the model (its head from the seed) and blurr's DataLoaders"
    import torch
    from fastai.text.all import set_seed
    from blurr.utils import BLURR_MODEL_HELPER, HF_TASKS_AUTO
    df, _ = load_df(a)
    set_seed(a.seed)
    torch.manual_seed(a.seed)  # right before the model is built: the classifier head's init
    hf_arch, _, hf_tokenizer, hf_model = BLURR_MODEL_HELPER.get_hf_objects(
        model_path(a), task=HF_TASKS_AUTO.SequenceClassification, config_kwargs={'num_labels': 2})
    head0 = head_checksum(hf_model)
    return df, hf_model, head0, classification_dls(df, hf_arch, hf_tokenizer, a.bs, a.max_length, **blurr_dl_kwargs(a))


# ---------------------------------------------------------------------------------------------------------------------
# (a) blurr + fastai
# ---------------------------------------------------------------------------------------------------------------------
def run_blurr(a) -> dict:
    t_start = time.perf_counter()
    from functools import partial
    from fastai.text.all import Adam, accuracy, set_seed
    import blurr.data.core  # noqa: F401  (imported before the RSS reading, as before)
    from blurr.modeling.core import BlurrLearner, HF_BaseModelWrapper, HF_BaseModelCallback, hf_splitter, TorchAdamW
    rss_imports = cur_rss_mb()

    df, hf_model, head0, dls = blurr_objects(a)
    opt_func = TorchAdamW if a.opt == 'fused' else partial(Adam, decouple_wd=True)
    # no loss_func: the targets' CrossEntropyLossFlat, which BlurrLearner computes on plain tensors
    learn = BlurrLearner(dls, HF_BaseModelWrapper(hf_model), opt_func=opt_func, wd=0.01,
                         metrics=accuracy, cbs=HF_BaseModelCallback, splitter=hf_splitter)
    if a.precision == 'bf16': learn.to_bf16()   # bfloat16 autocast, on the CPU too (blurr runs fastai's MixedPrecision on the model's device)
    if a.precision == 'fp16': learn.to_fp16()
    learn.create_opt()
    learn.unfreeze()  # never frozen; made explicit. Full fine-tuning:
    assert all(p.requires_grad for p in hf_model.parameters()), 'some parameters are frozen'
    n_groups = len(learn.opt.param_groups)

    # One untimed pass over the training DataLoader: padding of its batches and the cost of the data pipeline alone
    # (blurr tokenizes and pads at batch time, so this is work that also happens inside the timed fit).
    t0 = time.perf_counter(); masks = [b[0]['attention_mask'] for b in dls.train]; data_pass_s = time.perf_counter() - t0
    z, tot = pad_stats(masks); n_batches = len(masks); del masks
    rss_before_fit = cur_rss_mb()

    probe = StepProbe(hf_model)
    cb = fastai_timer(probe)

    set_seed(a.seed)  # the data pass above drew random numbers: start the fit from the seed
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    train_s = sum(cb.train_s)
    rss_after_fit = peak_rss_mb()

    train_loss, valid_loss, acc = learn.recorder.values[-1]  # fit_one_cycle's own end-of-epoch validation
    return dict(side='blurr', steps=probe.steps, train_s=train_s, samples=probe.steps * a.bs, train_batches=n_batches,
                pad_frac_pass=z / tot, pad_frac_fit=probe.pad_zeros / max(probe.pad_total, 1), tokens_fit=probe.pad_total,
                pad_zeros_fit=probe.pad_zeros,
                data_pass_ms_per_batch=1e3 * data_pass_s / max(n_batches, 1), **probe.summary(train_s),
                val_acc=float(acc), val_loss=float(valid_loss), opt_param_groups=n_groups,
                rss_after_imports_mb=rss_imports, rss_before_fit_mb=rss_before_fit, peak_rss_fit_mb=rss_after_fit,
                peak_rss_mb=peak_rss_mb(), lrs=probe.lrs, moms=probe.moms, **common_result(a, t_start, df, head0, hf_model))


# ---------------------------------------------------------------------------------------------------------------------
# (b) Hugging Face Trainer
# ---------------------------------------------------------------------------------------------------------------------


def run_hf(a) -> dict:
    t_start = time.perf_counter()
    import tempfile
    import torch, datasets
    from transformers import (AutoConfig, AutoTokenizer, AutoModelForSequenceClassification, DataCollatorWithPadding,
                              Trainer, TrainingArguments, set_seed)
    datasets.disable_progress_bars()
    rss_imports = cur_rss_mb()

    df, vocab = load_df(a)
    path = model_path(a)
    set_seed(a.seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoConfig.from_pretrained(path, num_labels=2)
    torch.manual_seed(a.seed)  # right before the model is built: the classifier head's init
    model = AutoModelForSequenceClassification.from_pretrained(path, config=config)
    head0 = head_checksum(model)

    def to_ds(d):
        ds = datasets.Dataset.from_dict({'text': d.text.tolist(), 'label': [vocab.index(l) for l in d.label]})
        return ds.map(lambda b: tokenizer(b['text'], truncation=True, max_length=a.max_length), batched=True,
                      remove_columns=['text'])
    t0 = time.perf_counter()
    train_ds, valid_ds = to_ds(df[~df.is_valid]), to_ds(df[df.is_valid])
    tokenize_s = time.perf_counter() - t0

    out_dir = tempfile.mkdtemp(prefix='bench_hf_')
    args = TrainingArguments(
        output_dir=out_dir, num_train_epochs=a.epochs, per_device_train_batch_size=a.bs, per_device_eval_batch_size=a.bs,
        train_sampling_strategy='group_by_length',  # transformers 5's name for group_by_length=True
        dataloader_drop_last=True,  # fastai drops the last partial training batch; same steps on both sides
        dataloader_num_workers=0, dataloader_pin_memory=False, gradient_accumulation_steps=1,
        max_grad_norm=0.0,  # no clipping, like fastai (the Trainer still computes the grad norm each step)
        fp16=a.precision == 'fp16', bf16=a.precision == 'bf16', use_cpu=not torch.cuda.is_available(), eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none',
        disable_tqdm=True, seed=a.seed, learning_rate=a.lr, weight_decay=0.01)

    steps = a.epochs * (len(train_ds) // a.bs)
    opt = fastai_adamw(model, a.lr, fused=(a.opt == 'fused'))
    # fastai's fit_one_cycle defaults: div=25, div_final=1e5, pct_start=0.25, cosine both ways, moms=(0.95, 0.85, 0.95)
    # cycled as Adam's beta1. 'fastai' (default) evaluates fastai's formula at the same positions fastai uses (step
    # i of N at pos i/N); 'onecycle' is torch's OneCycleLR with the matching arguments, which places the phase ends
    # at steps 0.25N-1 and N-1 instead (a shorter warm-up and the annealing one step ahead of fastai's).
    if a.hf_sched == 'onecycle':
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=a.lr, total_steps=steps, pct_start=0.25, anneal_strategy='cos', div_factor=25.,
            final_div_factor=1e5 / 25,  # final lr = (lr/25)/(1e5/25) = lr/1e5, fastai's lr_max/div_final
            cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)
    else: sched = FastaiOneCycle(opt, a.lr, steps)

    probe = StepProbe(model)
    cb = trainer_timer(probe, opt)

    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=valid_ds, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), optimizers=(opt, sched), callbacks=[cb])
    assert all(p.requires_grad for p in model.parameters()), 'some parameters are frozen'

    # One untimed pass over the training DataLoader the Trainer builds: padding and the cost of collation alone
    t0 = time.perf_counter()
    masks = [b['attention_mask'] for b in trainer.get_train_dataloader()]
    data_pass_s = time.perf_counter() - t0
    z, tot = pad_stats(masks); n_batches = len(masks); del masks
    assert n_batches * a.epochs == steps, (n_batches, steps)
    rss_before_fit = cur_rss_mb()

    set_seed(a.seed)  # the data pass above drew random numbers: start the fit from the seed
    train_out = trainer.train()
    train_s = sum(cb.train_s)
    rss_after_fit = peak_rss_mb()

    # Evaluate on every validation row (dataloader_drop_last would drop the last partial eval batch)
    trainer.args.dataloader_drop_last = False
    pred = trainer.predict(valid_ds)
    logits, labels = pred.predictions, pred.label_ids
    assert len(labels) == len(valid_ds), (len(labels), len(valid_ds))
    acc = float((logits.argmax(-1) == labels).mean())
    val_loss = float(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)))

    # What the Trainer's unconditional per-step grad-norm (clip_grad_norm_ with max_norm=inf) costs, measured apart
    g0 = time.perf_counter()
    for _ in range(5): trainer.accelerator.clip_grad_norm_([p for p in model.parameters() if p.grad is not None] or
                                                             [torch.zeros(1, requires_grad=True)], float('inf'))
    gn_ms = 1e3 * (time.perf_counter() - g0) / 5

    return dict(side='hf', steps=probe.steps, train_s=train_s, train_runtime=train_out.metrics.get('train_runtime'),
                samples=probe.steps * a.bs, train_batches=n_batches, pad_frac_pass=z / tot,
                pad_frac_fit=probe.pad_zeros / max(probe.pad_total, 1), tokens_fit=probe.pad_total,
                pad_zeros_fit=probe.pad_zeros,
                data_pass_ms_per_batch=1e3 * data_pass_s / max(n_batches, 1), **probe.summary(train_s),
                val_acc=acc, val_loss=val_loss, opt_param_groups=len(opt.param_groups), tokenize_s=tokenize_s,
                gradnorm_ms_apart=gn_ms, rss_after_imports_mb=rss_imports, rss_before_fit_mb=rss_before_fit,
                peak_rss_fit_mb=rss_after_fit, peak_rss_mb=peak_rss_mb(), lrs=probe.lrs, moms=probe.moms,
                **common_result(a, t_start, df, head0, model))


# ---------------------------------------------------------------------------------------------------------------------
# (c) the limit: a plain PyTorch loop over the same batches, collated beforehand
# ---------------------------------------------------------------------------------------------------------------------
def run_plain(a) -> dict:
    """The model, fused AdamW and fastai's one-cycle schedule, nothing else, over blurr's own length-sorted training batches
    tokenized and padded before the clock starts: what any library's per-step work costs is what blurr loses against this"""
    t_start = time.perf_counter()
    import inspect, torch
    import torch.nn.functional as F
    df, model, head0, dls = blurr_objects(a)
    accepted = set(inspect.signature(model.forward).parameters)
    def model_inputs(xb): return {k: v for k, v in xb.items() if k in accepted}
    epochs = [[(model_inputs(xb), yb) for xb, yb in dls.train] for _ in range(a.epochs)]   # each epoch's own order, as blurr's fit
    steps = sum(map(len, epochs))
    opt = fastai_adamw(model, a.lr, fused=True)
    sched = FastaiOneCycle(opt, a.lr, steps)
    autocast = torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=a.precision == 'bf16')
    probe = StepProbe(model)
    model.train()
    train_s = 0.0
    for batches in epochs:
        t0 = time.perf_counter()
        for xb, yb in batches:
            with autocast: loss = F.cross_entropy(model(**xb).logits.float(), yb)
            loss.backward()
            probe.opt_begin(opt.param_groups[0]['lr'], opt.param_groups[0]['betas'][0])
            opt.step()
            probe.opt_end()
            sched.step()
            opt.zero_grad(set_to_none=True)
        train_s += time.perf_counter() - t0
    model.eval(); correct = n = 0; losses = []
    with torch.no_grad(), autocast:
        for xb, yb in dls.valid:
            logits = model(**model_inputs(xb)).logits.float()
            correct += int((logits.argmax(-1) == yb).sum()); n += len(yb); losses.append(F.cross_entropy(logits, yb, reduction='sum').item())
    return dict(side='plain', steps=probe.steps, train_s=train_s, samples=probe.steps * a.bs, train_batches=len(epochs[0]),
                pad_frac_pass=probe.pad_zeros / max(probe.pad_total, 1), pad_frac_fit=probe.pad_zeros / max(probe.pad_total, 1),
                tokens_fit=probe.pad_total, pad_zeros_fit=probe.pad_zeros, data_pass_ms_per_batch=0.0, **probe.summary(train_s),
                val_acc=correct / n, val_loss=sum(losses) / n, opt_param_groups=len(opt.param_groups), rss_after_imports_mb=float('nan'),
                rss_before_fit_mb=float('nan'), peak_rss_fit_mb=peak_rss_mb(), peak_rss_mb=peak_rss_mb(), lrs=probe.lrs, moms=probe.moms,
                **common_result(a, t_start, df, head0, model))


# ---------------------------------------------------------------------------------------------------------------------
# Parent: run each side in a fresh subprocess and compare
# ---------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=4000, help='rows sampled from rotten_tomatoes_df (20%% of them validation)')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-4, help="one-cycle peak learning rate (fastai's lr_max)")
    p.add_argument('--max-length', type=int, default=128)
    p.add_argument('--seed', type=int, default=42)
    add_seeds_arg(p)
    p.add_argument('--only', choices=['blurr', 'hf', 'plain'], help='run one side only')
    p.add_argument('--no-plain', action='store_true', help="skip the plain PyTorch loop (the limit blurr's efficiency is measured against)")
    add_model_arg(p)
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads in each worker (default: leave as is)')
    p.add_argument('--hf-sched', choices=['fastai', 'onecycle'], default='fastai',
                   help="Trainer side's scheduler: fastai's one-cycle formula exactly (default) or torch's OneCycleLR")
    p.add_argument('--opt', choices=['fused', 'fastai'], default='fused',
                   help="optimizer: torch's fused AdamW on both sides (blurr's TorchAdamW; the Trainer's own default, "
                        "adamw_torch_fused) or fastai's Adam for blurr against torch's plain AdamW")
    p.add_argument('--precision', choices=['fp32', 'bf16', 'fp16'], default='fp32',
                   help="float32, or mixed precision on both sides (blurr: learn.to_bf16()/to_fp16(); Trainer: bf16/fp16=True); fp16 on CUDA only")
    add_blurr_dl_args(p)
    p.add_argument('--worker', choices=['blurr', 'hf', 'plain'], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_side(side, a) -> dict | None:
    res = run_worker(__file__, side, flags(a, 'model_dir', 'n', 'epochs', 'bs', 'lr', 'max_length', 'seed', 'hf_sched', 'opt', 'precision', 'blurr_workers', 'blurr_order', 'threads'))
    if res is not None: print(TAG + json.dumps(res), flush=True)  # the side's JSON line
    return res

def header(a):
    import torch
    thr = f'{a.threads} (--threads)' if a.threads else f'{torch.get_num_threads()} (torch default)'
    print(f'# bench_seqcls: torch {torch.__version__}, transformers {version("transformers")}, fastai {version("fastai")}, '
          f'datasets {version("datasets")}, python {platform.python_version()}')
    print(f'# threads {thr}, cpus {os.cpu_count()}, TOKENIZERS_PARALLELISM={os.environ.get("TOKENIZERS_PARALLELISM", "(unset)")}')
    print(f'# job: {model_name(a)}, rotten_tomatoes_df(n={a.n}, seed={a.seeds or a.seed}), epochs={a.epochs}, bs={a.bs}, '
          f'lr_max={a.lr:g}, max_length={a.max_length}, one-cycle (HF side: {a.hf_sched}), '
          f'AdamW(beta1 cycled 0.95-0.85-0.95, beta2 0.99, eps 1e-5, wd 0.01 except biases/LayerNorm), no grad clipping, {a.precision}')
    sys.stdout.flush()

def table(rows: list[dict]):
    cols = [('side', 's', lambda r: r['side']), ('steps', 'd', lambda r: r['steps']),
            ('train_s', '.1f', lambda r: r['train_s']), ('samples/s', '.2f', lambda r: r['samples'] / r['train_s']),
            ('ms/step', '.0f', lambda r: 1e3 * r['train_s'] / max(r['steps'], 1)),
            ('median', '.0f', lambda r: r['step_ms_median']),
            ('pad%', '.1f', lambda r: 100 * r['pad_frac_fit']), ('pad%_pass', '.1f', lambda r: 100 * r['pad_frac_pass']),
            ('tokens', 'd', lambda r: r['tokens_fit']), ('real_tok', 'd', lambda r: r['tokens_fit'] - r['pad_zeros_fit']),
            ('peak_MB', '.0f', lambda r: r['peak_rss_mb']),
            ('val_acc', '.4f', lambda r: r['val_acc']), ('val_loss', '.4f', lambda r: r['val_loss'])]
    if rows[0]['device'].startswith('cuda'): cols.append(('MFU%', '.1f', lambda r: 100 * mfu(r)))
    print_rows(cols, rows)
    if rows[0]['device'].startswith('cuda'):
        print(f'# MFU: 6 x (parameters outside the token embedding) x tokens through the model (padding included) per second, '
              f'over {PEAK_TFLOPS:g} TFLOP/s (H100/H200 dense bf16; fp32 runs on TF32 or less, so read it as relative there)')
    print('\n# per training step (ms): fwd = model forward; bwd = forward end -> optimizer.step start (fastai: loss +')
    print('# backward; Trainer: backward + grad-norm); opt = optimizer.step; rest = everything else in the epoch (batch')
    print('# fetch: tokenize+pad (blurr) or collate (HF), zero_grad, scheduler, callbacks); data = the untimed DataLoader')
    print('# pass alone, per batch')
    cols = [('side', 's', lambda r: r['side'])] + [(k, '.1f', (lambda k: lambda r: r[k + '_ms'])(k))
                                                  for k in ('fwd', 'bwd', 'opt', 'rest')]
    cols += [('data', '.1f', lambda r: r['data_pass_ms_per_batch']),
             ('rss_before_fit_MB', '.0f', lambda r: r['rss_before_fit_mb']),
             ('rss_imports_MB', '.0f', lambda r: r['rss_after_imports_mb'])]
    print_rows(cols, rows)


PEAK_TFLOPS = 989.   # H100/H200 SXM dense bf16 tensor-core peak

def mfu(r) -> float:
    "Model FLOP utilisation of the training steps: the usual 6 N D estimate (attention's own FLOPs left out)"
    return 6 * r['n_params_matmul'] * r['tokens_fit'] / r['train_s'] / (PEAK_TFLOPS * 1e12)


def compare(b: dict, h: dict):
    sps_b, sps_h = b['samples'] / b['train_s'], h['samples'] / h['train_s']
    print(f'\nblurr/HF samples/s: {sps_b / sps_h:.3f}   (>1: blurr faster)')
    print(f'accuracy blurr - HF: {100 * (b["val_acc"] - h["val_acc"]):+.2f} points  '
          f'(one seed, {b["n_valid"]} validation rows: 1 row = {100 / b["n_valid"]:.2f} points)')
    print(f'peak RSS blurr/HF: {b["peak_rss_mb"] / h["peak_rss_mb"]:.3f}')
    same = lambda k: 'yes' if b[k] == h[k] else f'NO ({b[k]} vs {h[k]})'
    print(f'\n# checks: same initial head: {same("head_init_sum")}; same steps: {same("steps")}; '
          f'same train/valid rows: {same("n_train")}/{same("n_valid")}; '
          f'same non-pad tokens trained on: {"yes" if b["tokens_fit"] - b["pad_zeros_fit"] == h["tokens_fit"] - h["pad_zeros_fit"] else "no"}; '
          f'all params trainable: {b["trainable"]}/{h["trainable"]}; '
          f'threads {b["threads"]}/{h["threads"]}; device {b["device"]}/{h["device"]}; dtype {b["dtype"]}/{h["dtype"]}; '
          f'attention {b["attn"]}/{h["attn"]}')
    if b['lrs'] and len(b['lrs']) == len(h['lrs']):
        lr_max = max(b['lrs'])
        dl = max(abs(x - y) for x, y in zip(b['lrs'], h['lrs']))
        dm = max(abs(x - y) for x, y in zip(b['moms'], h['moms']))
        print(f'# schedule (lr, beta1 of the optimizer at each step): max |lr diff| = {dl:.3g} ({100 * dl / lr_max:.2f}% of '
              f'lr_max), max |beta1 diff| = {dm:.3g}; first lr {b["lrs"][0]:.3g}/{h["lrs"][0]:.3g}, peak '
              f'{max(b["lrs"]):.3g}/{max(h["lrs"]):.3g}, last {b["lrs"][-1]:.3g}/{h["lrs"][-1]:.3g}')
    print(f'# HF extras: train_runtime (Trainer metric) {h["train_runtime"]:.1f}s vs epoch-timed {h["train_s"]:.1f}s; '
          f'one-off tokenization (Dataset.map, untimed) {h["tokenize_s"]:.2f}s; grad-norm done every step measured apart: '
          f'{h["gradnorm_ms_apart"]:.1f} ms')

def efficiency(res) -> float: return (res['blurr']['samples'] / res['blurr']['train_s']) / (res['plain']['samples'] / res['plain']['train_s'])

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf, run_plain)
    header(a)
    sides = [a.only] if a.only else ['blurr', 'hf'] + ([] if a.no_plain else ['plain'])
    def report(res):
        rows = [r for r in res.values() if r is not None]
        if rows:
            print()
            table(rows)
        if res.get('blurr') and res.get('hf'): compare(res['blurr'], res['hf'])
        if res.get('blurr') and res.get('plain'): print(f"blurr/plain loop samples/s (efficiency against the limit, goal >= 0.97): {efficiency(res):.3f}")
    with model_per_seed(a, run_side) as run: runs = run_seeds(a, sides, run, report)
    print_seeds_summary(runs, {'accuracy': 'val_acc'}, lambda r: r['samples'] / r['train_s'], min_ratio=1.1)   # issue 17's goal at bs 32
    effs = [efficiency(res) for _, res in runs if res.get('blurr') and res.get('plain')]
    if len(effs) > 1: print(f"blurr/plain loop: {', '.join(f'{e:.3f}' for e in effs)}; mean {sum(effs) / len(effs):.3f} (goal >= 0.97)")
    if any(r is None for _, res in runs for r in res.values()): sys.exit(1)

if __name__ == '__main__':
    main()
