#!/usr/bin/env python
"""Masked language modeling: blurr + fastai against the Hugging Face `Trainer` with `DataCollatorForLanguageModeling(mlm=True)`.

The MiniLM setting for language modeling (next to bench_lm.py's tiny causal Llama): fine-tune all-MiniLM-L6-v2 (the
embedded folder, a 6-layer uncased BERT) as a masked language model on Rotten Tomatoes snippets (`--n`, 20%
validation). The checkpoint has no masked-LM head beyond the output embedding tied to the input one: the head's
transform and bias start random. The parent loads `AutoModelForMaskedLM` once per seed after `torch.manual_seed(seed)`
and saves it with its tokenizer to a temporary folder; both sides load that folder (same initial weights, checked).
Both mask 15% of the non-special tokens of each training row afresh every batch, BERT's way (80% the mask token, 10% a
random token, 10% left as they are).

- **blurr**: `HF_TextBlock(before_batch_tfm=HF_MLMBeforeBatchTransform(..., masking=TokenMasking(p=0.15)))`, tokenizing
  and masking at batch time, blurr's length-sorted `HF_SortedDL`; `BlurrLearner(..., opt_func=TorchAdamW, wd=0.01,
  loss_func=PlainCrossEntropyLossFlat(), metrics=lm_metrics(), cbs=HF_BaseModelCallback, splitter=hf_splitter)`,
  `fit_one_cycle(epochs, lr_max)` (its own validation each epoch, with blurr's fixed validation masks, is timed apart).
- **hf**: the `run_mlm.py` recipe: the snippets tokenized once (`Dataset.map`, with the special-tokens mask the
  collator reads), `DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15)`, `group_by_length`
  sampling (`--order random`: shuffled on both sides), fused AdamW with fastai's hyper-parameters and fastai's one-cycle
  formula (`FastaiOneCycle`), no clipping, no evaluation in training.

The training snippets are cut to a multiple of `--bs` (fastai's drop_last and the Trainer's `dataloader_drop_last`
drop nothing: the same steps), and no snippet is longer than `--max-length` (checked). Before training (in the parent)
and after it (in each side) the validation loss is computed the same way: `mask_valid` masks the validation snippets
once, BERT's way, from a generator seeded with 0 (the same masks on every side, checked by their hash), and
`valid_loss` is the summed cross-entropy over the masked positions divided by their number, in eval mode. lr 1e-4
lowers it clearly from the start on both sides. One epoch by default: at MiniLM size one seed's two sides already take
several minutes on a 2-core CPU. Each side runs in its own fresh subprocess and prints one JSON line.

    .venv/bin/python benchmarks/bench_mlm.py --seeds 1 2 3    # --quick for a smoke run (480 snippets, 1 epoch)
"""
from __future__ import annotations
import argparse, hashlib, json, math, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import weights_checksum, print_token_tables, print_loss_summary, add_lm_args, run_seeds, run_worker, flags, worker_main, print_stack, print_schedule_check, StepProbe, peak_rss_mb, fastai_adamw, FastaiOneCycle, fastai_timer, trainer_timer


def load(a):
    "The snippets: `text` and `is_valid`; the training ones cut to a multiple of `a.bs`"
    import pandas as pd
    from blurr.embedded import rotten_tomatoes_df
    df = rotten_tomatoes_df(a.n, valid_pct=a.valid_pct, seed=42)[['text', 'is_valid']]
    train, valid = df[~df.is_valid], df[df.is_valid]
    return pd.concat([train.iloc[:len(train) // a.bs * a.bs], valid]).reset_index(drop=True)

def quiet_hf():
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()   # the load report of the head the checkpoint lacks

def build_model(folder, a, seed) -> tuple[float, str]:
    "MiniLM with a masked-LM head (its missing parts initialised from `seed`) and its tokenizer, saved to `folder`; the validation loss before training and the masks' hash"
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from blurr.embedded import default_model_path
    quiet_hf()
    if a.threads: torch.set_num_threads(a.threads)   # as in the workers, for the loss before training
    df, tok = load(a), AutoTokenizer.from_pretrained(default_model_path())
    longest = max(map(len, tok(df.text.tolist())['input_ids']))
    assert longest <= a.max_length, f'a snippet has {longest} tokens, more than --max-length {a.max_length}: the sides would cut it differently'
    torch.manual_seed(seed)
    model = AutoModelForMaskedLM.from_pretrained(default_model_path())
    model.save_pretrained(folder); tok.save_pretrained(folder)
    rows = mask_valid(tok, df.text[df.is_valid], a.max_length)
    return valid_loss(model, rows, tok.pad_token_id)[0], rows_hash(rows)

def rows_hash(rows) -> str:
    "A short hash of a list of (input ids, labels): equal on both sides iff they hold the same masked rows"
    return hashlib.sha1(json.dumps(rows).encode()).hexdigest()[:12]

def mask_valid(tok, texts, max_length:int, p:float=0.15, seed:int=0) -> list:
    "Each validation snippet masked once, BERT's way, from one generator seeded with `seed`: [(input ids, labels)], labels -100 where not scored"
    import torch
    g = torch.Generator().manual_seed(seed)
    enc = tok(list(texts), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    rows = []
    for ids, special in zip(enc['input_ids'], enc['special_tokens_mask']):
        ids = torch.tensor(ids)
        maskable = (torch.tensor(special) == 0) & (ids != tok.pad_token_id)
        target = maskable & (torch.rand(len(ids), generator=g) < p)     # p of the maskable tokens are scored
        r = torch.rand(len(ids), generator=g)                            # what the model reads at a target:
        inputs = ids.clone()
        inputs[target & (r < 0.8)] = tok.mask_token_id                   # 80% the mask token,
        swap = target & (r >= 0.8) & (r < 0.9)                           # 10% a random token,
        inputs[swap] = torch.randint(len(tok), (int(swap.sum()),), generator=g)
        rows.append((inputs.tolist(), ids.masked_fill(~target, -100).tolist()))   # 10% the token itself
    return rows

def valid_loss(model, rows:list, pad_id:int, bs:int=32) -> tuple[float, int]:
    "Mean cross-entropy per masked token of `rows` (summed over the masked positions, divided by their number), and that number"
    import torch, torch.nn.functional as F
    model.eval()
    dev = next(model.parameters()).device
    nll, n = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    with torch.no_grad():
        for s in range(0, len(order), bs):
            batch = [rows[i] for i in order[s:s + bs]]
            w = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([x + [pad_id] * (w - len(x)) for x, _ in batch], device=dev)
            labels = torch.tensor([y + [-100] * (w - len(y)) for _, y in batch], device=dev)
            mask = torch.tensor([[1] * len(x) + [0] * (w - len(x)) for x, _ in batch], device=dev)
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            keep = labels != -100
            nll += F.cross_entropy(logits[keep], labels[keep], reduction='sum').item(); n += int(keep.sum())
    return nll / n, n

def common(a, df, model, tok, w0, probe, tgt, prep_s, epoch_s) -> dict:
    "What both sides report the same way, with the validation loss of the trained `model`; `tgt` = [masked targets, rows, positions] over the training batches"
    import torch
    train_s = sum(epoch_s)
    rows = mask_valid(tok, df.text[df.is_valid], a.max_length)
    vloss, n_vt = valid_loss(model, rows, tok.pad_token_id)
    tokens = probe.pad_total - probe.pad_zeros
    return dict(threads=torch.get_num_threads(), steps=probe.steps, rows=tgt[1], targets=tgt[0], tokens=tokens, positions=tgt[2],
                pad_frac=1 - tokens / max(tgt[2], 1), prep_s=prep_s, train_s=train_s, epoch_s=epoch_s, weights_sum=w0,
                peak_rss_mb=peak_rss_mb(), n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()),
                valid_loss=vloss, valid_targets=n_vt, valid_hash=rows_hash(rows), lrs=probe.lrs, moms=probe.moms, **probe.summary(train_s))


# ---------------------------------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------------------------------
def run_blurr(a) -> dict:
    "blurr's masked-LM job: batch-time tokenization and masking, `PlainCrossEntropyLossFlat`, `lm_metrics`"
    from fastai.text.all import DataBlock, ColReader, ColSplitter, Callback, set_seed
    from blurr.modeling.all import (BlurrLearner, PlainCrossEntropyLossFlat, BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_TextBlock, HF_BaseModelWrapper,
                                    HF_BaseModelCallback, hf_splitter, TorchAdamW)
    from blurr.data.masked_lm import HF_MLMBeforeBatchTransform, TokenMasking
    from blurr.modeling.language_modeling import lm_metrics
    quiet_hf()
    df = load(a)
    set_seed(a.seed)
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(a.model_dir, task=HF_TASKS_AUTO.MaskedLM)
    w0 = weights_checksum(model)
    tfm = HF_MLMBeforeBatchTransform(hf_arch, tok, masking=TokenMasking(p=0.15), max_length=a.max_length)
    dl_kwargs = {'batch_order': 'random'} if a.order == 'random' else {}
    t0 = time.perf_counter()
    dls = DataBlock(blocks=(HF_TextBlock(before_batch_tfm=tfm),), get_x=ColReader('text'),
                    splitter=ColSplitter()).dataloaders(df, bs=a.bs, **dl_kwargs)
    prep_s = time.perf_counter() - t0   # checking the snippets, tokenizing them once to count tokens to sort by
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, wd=0.01, loss_func=PlainCrossEntropyLossFlat(),
                         metrics=lm_metrics(), cbs=HF_BaseModelCallback, splitter=hf_splitter)
    learn.hf_logits_at_targets.enabled = not a.all_logits
    probe, tgt = StepProbe(model), [0, 0, 0]
    class CountTargets(Callback):
        def before_batch(self):
            if self.training: y = self.yb[0]; tgt[0] += int((y != -100).sum()); tgt[1] += y.shape[0]; tgt[2] += y.numel()
    learn.add_cb(CountTargets())
    cb = fastai_timer(probe)
    set_seed(a.seed)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    _, blurr_loss, blurr_ppl, blurr_acc = learn.recorder.values[-1]   # at the last epoch, over blurr's own validation masks
    return dict(side='blurr', blurr_valid_loss=float(blurr_loss), blurr_log_ppl=math.log(blurr_ppl), blurr_token_acc=float(blurr_acc),
                valid_s=sum(cb.valid_s), **common(a, df, model, tok, w0, probe, tgt, prep_s, cb.train_s))

def run_hf(a) -> dict:
    "The `run_mlm.py` recipe with the `Trainer` (one row per snippet), fastai's optimizer settings and schedule"
    import datasets
    from transformers import AutoTokenizer, AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed
    datasets.disable_progress_bars(); quiet_hf()
    df = load(a)
    set_seed(a.seed)
    tok, model = AutoTokenizer.from_pretrained(a.model_dir), AutoModelForMaskedLM.from_pretrained(a.model_dir)
    w0 = weights_checksum(model)
    t0 = time.perf_counter()
    ds = datasets.Dataset.from_dict({'text': df.text[~df.is_valid].tolist()})
    train_ds = ds.map(lambda b: tok(b['text'], truncation=True, max_length=a.max_length, return_special_tokens_mask=True),
                      batched=True, remove_columns=['text'])
    prep_s = time.perf_counter() - t0   # tokenizing the training snippets once
    steps = a.epochs * (len(train_ds) // a.bs)
    opt = fastai_adamw(model, a.lr)
    sched = FastaiOneCycle(opt, a.lr, steps)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix='bench_mlm_'), num_train_epochs=a.epochs,
        per_device_train_batch_size=a.bs, train_sampling_strategy='group_by_length' if a.order == 'length' else 'random',
        dataloader_drop_last=True,   # as fastai does for training (the training rows are a multiple of bs: nothing dropped)
        remove_unused_columns=False,   # keeps special_tokens_mask for the collator (it pops it), as run_mlm.py means to
        dataloader_num_workers=0, dataloader_pin_memory=False, max_grad_norm=0.0, fp16=False, bf16=False,
        eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none', disable_tqdm=True, seed=a.seed)
    probe, tgt = StepProbe(model), [0, 0, 0]
    def _count(m, args, kw):
        if m.training: l = kw['labels']; tgt[0] += int((l != -100).sum()); tgt[1] += l.shape[0]; tgt[2] += l.numel()
    model.register_forward_pre_hook(_count, with_kwargs=True)
    cb = trainer_timer(probe, opt)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tok, optimizers=(opt, sched),
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15), callbacks=[cb])
    set_seed(a.seed)
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)   # nothing was saved in it
    return dict(side='hf', **common(a, df, model, tok, w0, probe, tgt, prep_s, cb.train_s))


# ---------------------------------------------------------------------------------------------------------------------
# Parent: build the model, run each side in a fresh subprocess and compare
# ---------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=4000, help='Rotten Tomatoes snippets (a random sample)')
    p.add_argument('--valid-pct', type=float, default=0.2, help='validation share of the snippets')
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-4, help="one-cycle peak learning rate (fastai's lr_max)")
    p.add_argument('--max-length', type=int, default=128, help='longest row in tokens (no snippet may be longer: checked)')
    add_lm_args(p)
    a = p.parse_args(argv)
    if a.quick: a.n, a.epochs = 480, 1
    return a

def run_side(side, a):
    return run_worker(__file__, side, flags(a, 'model_dir', 'n', 'valid_pct', 'epochs', 'bs', 'lr', 'max_length', 'order', 'seed', 'threads', 'all_logits'))

def tokens_per_s(r) -> float: return r['tokens'] / r['train_s']

def report(res, sides, before):
    "The tables and, with both sides, the ratio, the goal and the checks; `before` = (validation loss before training, masks' hash) from the parent"
    rows = [res[s] for s in sides if res[s] is not None]
    if not rows: return
    print_token_tables(rows, 'masked tokens scored', 'mean CE per masked validation token (same masks, same code, both sides)',
                       'tokenizing, masking and padding for blurr, collating and masking for HF')
    print(f"# valid loss before training (same masks, in the parent): {before[0]:.4f}; after: " +
          ', '.join(f"{r['side']} {r['valid_loss']:.4f}" for r in rows))
    if res.get('blurr') is not None:
        b = res['blurr']
        print(f"# blurr's own figures at the last epoch (its own fixed validation masks): valid loss {b['blurr_valid_loss']:.4f} (mean of batch means), "
              f"log(lm_metrics perplexity) {b['blurr_log_ppl']:.4f} (per token), token accuracy {b['blurr_token_acc']:.4f}; validation took {b['valid_s']:.1f}s")
    if len(rows) < 2: return
    b, h = res['blurr'], res['hf']
    ratio, dl = tokens_per_s(b) / tokens_per_s(h), (b['valid_loss'] - h['valid_loss']) / h['valid_loss']
    print(f"\nblurr/HF tokens/s: {ratio:.3f} (>1: blurr faster); counting prep_s: {(h['prep_s'] + h['train_s']) / (b['prep_s'] + b['train_s']):.3f}; "
          f"valid loss blurr {b['valid_loss']:.4f} vs HF {h['valid_loss']:.4f} ({100 * dl:+.2f}%)")
    print(f"# goal (at least 1.0x the Trainer's tokens/s, valid loss within 2%): {'met' if ratio >= 1.0 and abs(dl) <= 0.02 else 'not met'} (one seed)")
    print(f"# checks: same initial weights: {b['weights_sum'] == h['weights_sum']}; same validation masks: "
          f"{b['valid_hash'] == h['valid_hash'] == before[1]}; snippets {b['n_train']}/{h['n_train']} train, {b['n_valid']}/{h['n_valid']} valid; "
          f"tokens {b['tokens']}/{h['tokens']} ({'same' if b['tokens'] == h['tokens'] else 'DIFFER'}); targets {b['targets']}/{h['targets']} "
          f"(masks drawn apart); steps {b['steps']}/{h['steps']}; rows {b['rows']}/{h['rows']}; "
          f"validation targets {b['valid_targets']}/{h['valid_targets']}; threads {b['threads']}/{h['threads']}")
    print_schedule_check(b, h)

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf)
    print_stack('bench_mlm', a.threads)
    sides = [a.only] if a.only else ['blurr', 'hf']
    print(f"# job: all-MiniLM-L6-v2 as a masked LM (15% of the tokens, 80/10/10), Rotten Tomatoes: {a.n} snippets, {a.valid_pct:g} validation, "
          f"epochs={a.epochs}, bs={a.bs}, lr_max={a.lr:g}, max_length={a.max_length}, {a.order} order, "
          f"fastai one-cycle, fused AdamW (beta2 0.99, eps 1e-5, wd 0.01), no grad clipping; blurr's logits in training: "
          f"{'every position' if a.all_logits else 'the masked positions only (HF_LogitsAtTargets)'}", flush=True)
    built, before = {}, {}   # seed -> the folder of its initial weights; (validation loss before training, masks' hash)
    def run_with_model(side, a):
        if a.seed not in built:
            if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
            a.model_dir = built[a.seed] = tempfile.mkdtemp(prefix='bench_mlm_model_')
            before[a.seed] = build_model(a.model_dir, a, a.seed)
        return run_side(side, a)
    try: runs = run_seeds(a, sides, run_with_model, lambda res: report(res, sides, before[a.seed]))
    finally:
        if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
    print_loss_summary(runs, tokens_per_s)
    if any(r is None for _, res in runs for r in res.values()): sys.exit(1)

if __name__ == '__main__':
    main()
