#!/usr/bin/env python
"""Token classification (NER): blurr + fastai against the Hugging Face `Trainer`, on the same job.

Same model (all-MiniLM-L6-v2, one output per WNUT-16 tag, same seed so the same initial head), same train/valid
tweets of `wnut16_df`, epochs, batch size, max_length, one-cycle schedule (fastai's formula on both sides) and fused
AdamW hyper-parameters, full fine-tuning, no gradient clipping, first-sub-token labels on both sides. The Trainer side
is the usual recipe: `Dataset.map` tokenization with label alignment, `DataCollatorForTokenClassification`,
`group_by_length` sampling. Entity F1 is seqeval's on word-level tags (each word's first sub-token) for both.
Each side runs in its own fresh subprocess and prints one JSON line; the parent prints the comparison.

    .venv/bin/python benchmarks/bench_ner.py --epochs 2
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import (add_model_arg, model_path, model_per_seed, model_name, add_blurr_dl_args, add_seeds_arg, run_seeds, print_seeds_summary, blurr_dl_kwargs, run_worker, flags, worker_main, print_stack, StepProbe, peak_rss_mb, pad_stats, fastai_adamw, FastaiOneCycle, print_rows, fastai_timer,
                          trainer_timer)


def load(a):
    from blurr.embedded import wnut16_df
    df = wnut16_df(n=a.n, seed=a.seed)
    tags = sorted({t for ts in df.tags for t in ts})  # all of them: a small sample may hold tags only in validation
    vocab = sorted(set(tags) | {'I-' + t[2:] for t in tags if t.startswith('B-')})  # what HF_TokenCategorize builds
    return df, vocab

def head_checksum(model) -> float: return float(sum(p.detach().abs().sum() for p in model.classifier.parameters()))

def entity_scores(targs, preds) -> dict:
    from seqeval.metrics import f1_score, precision_score, recall_score, accuracy_score
    return dict(f1=f1_score(targs, preds, zero_division=0), precision=precision_score(targs, preds, zero_division=0),
                recall=recall_score(targs, preds, zero_division=0), word_acc=accuracy_score(targs, preds))


def run_blurr(a) -> dict:
    import torch
    from fastai.text.all import DataBlock, ColReader, ColSplitter, set_seed
    from blurr.modeling.all import (BlurrLearner, PlainCrossEntropyLossFlat, BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_TextBlock, HF_TokenCategoryBlock,
                                    HF_TokenClassBeforeBatchTransform, HF_BaseModelWrapper, HF_BaseModelCallback,
                                    hf_splitter, TorchAdamW, seqeval_metrics)
    df, vocab = load(a)
    set_seed(a.seed)
    hf_arch, _, tok, _ = BLURR_MODEL_HELPER.get_hf_objects(model_path(a), task=None)
    tfm = HF_TokenClassBeforeBatchTransform(hf_arch, tok, max_length=a.max_length)
    dls = DataBlock(blocks=(HF_TextBlock(before_batch_tfm=tfm), HF_TokenCategoryBlock(vocab=vocab)), get_x=ColReader('words'),
                    get_y=ColReader('tags'), splitter=ColSplitter()).dataloaders(
        df, bs=a.bs, **blurr_dl_kwargs(a))
    assert list(dls.vocab) == vocab, (list(dls.vocab), vocab)
    torch.manual_seed(a.seed)
    model = BLURR_MODEL_HELPER.get_hf_objects(model_path(a), task=HF_TASKS_AUTO.TokenClassification,
                                              config_kwargs={'num_labels': len(vocab)})[3]
    head0 = head_checksum(model)
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, wd=0.01, loss_func=PlainCrossEntropyLossFlat(),
                         metrics=seqeval_metrics(), cbs=HF_BaseModelCallback, splitter=hf_splitter)
    masks = [b[0]['attention_mask'] for b in dls.train]; z, tot = pad_stats(masks); del masks
    probe = StepProbe(model)
    cb = fastai_timer(probe)
    set_seed(a.seed)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    _, valid_loss, p, r, f1, acc = learn.recorder.values[-1]
    # Cross-check of blurr's metric: the Trainer side's scoring (argmax where the label is not -100) on blurr's model
    targs, preds = [], []
    learn.model.eval()
    with torch.no_grad():
        for xb, yb in dls.valid:
            logits = learn.model(xb)['logits']
            for prow, row in zip(logits.argmax(-1), yb):
                targs.append([vocab[l] for l in row.tolist() if l != -100])
                preds.append([vocab[q] for q, l in zip(prow.tolist(), row.tolist()) if l != -100])
    f1_trainer_scoring = entity_scores(targs, preds)['f1']
    train_s = sum(cb.train_s)
    return dict(side='blurr', steps=probe.steps, train_s=train_s, samples=probe.steps * a.bs,
                pad_frac=probe.pad_zeros / max(probe.pad_total, 1), pad_frac_pass=z / tot, tokens=probe.pad_total,
                f1=f1, f1_trainer_scoring=f1_trainer_scoring, precision=p, recall=r, word_acc=acc, head_init_sum=head0, peak_rss_mb=peak_rss_mb(),
                n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()), **probe.summary(train_s))


def run_hf(a) -> dict:
    import tempfile, torch, datasets
    from transformers import (AutoConfig, AutoTokenizer, AutoModelForTokenClassification, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)
    datasets.disable_progress_bars()
    df, vocab = load(a)
    path = model_path(a)
    set_seed(a.seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(a.seed)
    model = AutoModelForTokenClassification.from_pretrained(path, config=AutoConfig.from_pretrained(path, num_labels=len(vocab)))
    head0 = head_checksum(model)
    o2i = {t: i for i, t in enumerate(vocab)}

    def align(batch):   # the usual recipe: the first sub-token of each word carries its tag, the others -100
        enc = tokenizer(batch['words'], is_split_into_words=True, truncation=True, max_length=a.max_length)
        labels = []
        for i, tags in enumerate(batch['tags']):
            prev, row = None, []
            for w in enc.word_ids(i):
                row.append(-100 if w is None or w == prev else o2i[tags[w]]); prev = w
            labels.append(row)
        enc['labels'] = labels
        return enc
    def to_ds(d): return datasets.Dataset.from_dict({'words': list(map(list, d.words)), 'tags': list(map(list, d.tags))}).map(
        align, batched=True, remove_columns=['words', 'tags'])
    train_ds, valid_ds = to_ds(df[~df.is_valid]), to_ds(df[df.is_valid])
    steps = a.epochs * (len(train_ds) // a.bs)
    opt = fastai_adamw(model, a.lr)
    sched = FastaiOneCycle(opt, a.lr, steps)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix='bench_ner_'), num_train_epochs=a.epochs,
        per_device_train_batch_size=a.bs, per_device_eval_batch_size=a.bs, train_sampling_strategy='group_by_length',
        dataloader_drop_last=True,  # as fastai does for training: the same steps on both sides
        dataloader_num_workers=0, dataloader_pin_memory=False, max_grad_norm=0.0, fp16=False, bf16=False,
        eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none', disable_tqdm=True, seed=a.seed)
    probe = StepProbe(model)
    cb = trainer_timer(probe, opt)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=DataCollatorForTokenClassification(tokenizer), optimizers=(opt, sched), callbacks=[cb])
    masks = [b['attention_mask'] for b in trainer.get_train_dataloader()]; z, tot = pad_stats(masks); del masks
    set_seed(a.seed)
    trainer.train()
    train_s = sum(cb.train_s)
    trainer.args.dataloader_drop_last = False   # evaluate every validation tweet
    pred = trainer.predict(valid_ds)
    logits, labels = pred.predictions, pred.label_ids
    targs = [[vocab[l] for l in row if l != -100] for row in labels]
    preds = [[vocab[p] for p, l in zip(prow, row) if l != -100] for prow, row in zip(logits.argmax(-1), labels)]
    return dict(side='hf', steps=probe.steps, train_s=train_s, samples=probe.steps * a.bs,
                pad_frac=probe.pad_zeros / max(probe.pad_total, 1), pad_frac_pass=z / tot, tokens=probe.pad_total,
                **entity_scores(targs, preds), head_init_sum=head0, peak_rss_mb=peak_rss_mb(),
                n_train=len(train_ds), n_valid=len(valid_ds), **probe.summary(train_s))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=None, help='a random sample of N tweets of wnut16_df (default: all; 20%% validation)')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--lr', type=float, default=3e-4, help="one-cycle peak learning rate (fastai's lr_max)")
    p.add_argument('--max-length', type=int, default=128)
    p.add_argument('--seed', type=int, default=42)
    add_seeds_arg(p)
    p.add_argument('--only', choices=['blurr', 'hf'])
    add_blurr_dl_args(p)
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads in each worker (default: leave as is)')
    add_model_arg(p)
    p.add_argument('--worker', choices=['blurr', 'hf'], help=argparse.SUPPRESS)
    return p.parse_args(argv)

def run_side(side, a):
    "Run one side in a fresh subprocess; its result dict, or None if it failed"
    return run_worker(__file__, side, flags(a, 'model_dir', 'epochs', 'bs', 'lr', 'max_length', 'seed', 'n', 'blurr_workers', 'blurr_order', 'threads'))

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf)
    print_stack('bench_ner')
    print(f'# job: {model_name(a)}, wnut16_df(seed={a.seeds or a.seed}{f", n={a.n}" if a.n else ""}), epochs={a.epochs}, bs={a.bs}, '
          f'lr_max={a.lr:g}, max_length={a.max_length}, fastai one-cycle, fused AdamW (beta2 0.99, eps 1e-5, wd 0.01), '
          f"first-sub-token labels, no grad clipping; blurr batch_order={a.blurr_order or 'default'}")
    sides = [a.only] if a.only else ['blurr', 'hf']
    with model_per_seed(a, run_side) as run: runs = run_seeds(a, sides, run, report)
    print_seeds_summary(runs, {'entity F1': 'f1'}, lambda r: r['samples'] / r['train_s'])
    if any(r is None for _, res in runs for r in res.values()): sys.exit(1)

def report(res):
    "The tables and, with both sides, the ratio and checks"
    rows = [r for r in res.values() if r is not None]
    cols = [('side', 's', lambda r: r['side']), ('steps', 'd', lambda r: r['steps']), ('train_s', '.1f', lambda r: r['train_s']),
            ('samples/s', '.2f', lambda r: r['samples'] / r['train_s']), ('median_ms', '.0f', lambda r: r['step_ms_median']),
            ('pad%', '.1f', lambda r: 100 * r['pad_frac']), ('tokens', 'd', lambda r: r['tokens']),
            ('peak_MB', '.0f', lambda r: r['peak_rss_mb']), ('entity_f1', '.4f', lambda r: r['f1']),
            ('precision', '.4f', lambda r: r['precision']), ('recall', '.4f', lambda r: r['recall']),
            ('word_acc', '.4f', lambda r: r['word_acc'])]
    if rows: print(); print_rows(cols, rows)
    if rows:
        print('\n# per training step (ms): fwd = model forward; bwd = forward end -> optimizer step (loss, backward); '
              'opt = optimizer step; rest = the rest (getting the batch: tokenize, align and pad for blurr, collate for HF)')
        print_rows([('side', 's', lambda r: r['side'])] + [(k, '.1f', (lambda k: lambda r: r[k + '_ms'])(k)) for k in ('fwd', 'bwd', 'opt', 'rest')], rows)
    if len(rows) == 2:
        b, h = res['blurr'], res['hf']
        print(f"\nblurr/HF samples/s: {(b['samples'] / b['train_s']) / (h['samples'] / h['train_s']):.3f}   (>1: blurr faster)")
        print(f"entity F1 blurr - HF: {100 * (b['f1'] - h['f1']):+.2f} points")
        print(f"# blurr's F1 scored the Trainer's way (argmax where the label is not -100): {b['f1_trainer_scoring']:.4f}")
        print(f"# checks: same initial head: {b['head_init_sum'] == h['head_init_sum']}; same train/valid tweets: "
              f"{b['n_train'] == h['n_train']}/{b['n_valid'] == h['n_valid']}; steps {b['steps']}/{h['steps']}")

if __name__ == '__main__':
    main()
