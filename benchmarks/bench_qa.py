#!/usr/bin/env python
"""Extractive question answering: blurr + fastai against the Hugging Face `Trainer`, on the same job.

Same model (all-MiniLM-L6-v2 with a QA head, same seed so the same initial head), same train/valid questions of
`wnut16_qa_df`, epochs, batch size, windows (max_length 128, stride 32), one-cycle schedule (fastai's formula on both
sides) and fused AdamW hyper-parameters, full fine-tuning, no gradient clipping, trained on each question's first
answer. The Trainer side is the usual `run_qa.py` recipe: `Dataset.map` window tokenization with start/end tokens from
the offsets (the CLS token when the answer is not all in the window), `DataCollatorWithPadding`, `group_by_length`
sampling, then the model on the validation windows in order and the usual post-processing (n_best 20 starts x 20 ends,
best start+end logit sum over all of an example's windows, at most 30 tokens). EM/F1 are blurr's `squad_exact_match` /
`squad_f1` against every gold answer for both. Each model is also scored by the other side's post-processing, so a
post-processing difference can be told apart from a training difference. Each side runs in its own fresh subprocess
and prints one JSON line; the parent prints the comparison.

    .venv/bin/python benchmarks/bench_qa.py --epochs 2
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import add_model_arg, model_path, model_per_seed, model_name, add_blurr_dl_args, add_seeds_arg, run_seeds, print_seeds_summary, blurr_dl_kwargs, run_worker, flags, worker_main, print_stack, print_schedule_check, StepProbe, peak_rss_mb, pad_stats, fastai_adamw, FastaiOneCycle, print_rows, fastai_timer, trainer_timer


def load(a):
    "The questions of the job: `question`, `context`, `answers` (every gold answer) and `is_valid`"
    from blurr.embedded import wnut16_qa_df
    return wnut16_qa_df(n=a.n, seed=a.seed)

def head_checksum(model) -> float:
    "Sum of |w| of the QA head right after loading: equal on both sides iff the initial head is the same"
    return float(sum(p.detach().abs().sum() for p in model.qa_outputs.parameters()))

def count_windows(model) -> list:
    "A one-item list counting the windows (rows) the model trains on, from a forward pre-hook"
    n = [0]
    def _pre(m, args, kw):
        if m.training: n[0] += kw['attention_mask'].shape[0]
    model.register_forward_pre_hook(_pre, with_kwargs=True)
    return n


# ---------------------------------------------------------------------------------------------------------------------
# The usual Hugging Face recipe: window features, post-processing, scores
# ---------------------------------------------------------------------------------------------------------------------
def hf_features(tokenizer, d, a, train:bool):
    "run_qa's preprocessing: one feature per window; training gets start/end tokens, validation its example and offsets"
    import datasets
    ans = d.answers.tolist()
    ds = datasets.Dataset.from_dict({'question': d.question.tolist(), 'context': d.context.tolist(),
                                     'text': [x['text'][0] for x in ans], 'start': [int(x['answer_start'][0]) for x in ans]})
    def prep(b, idxs):
        enc = tokenizer(b['question'], b['context'], truncation='only_second', max_length=a.max_length, stride=a.stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        owner = enc.pop('overflow_to_sample_mapping')
        offs = [[o if s == 1 else None for o, s in zip(enc['offset_mapping'][f], enc.sequence_ids(f))] for f in range(len(owner))]
        if train:
            spans = [answer_tokens(enc['input_ids'][f].index(tokenizer.cls_token_id), offs[f], b['start'][o],
                                   b['start'][o] + len(b['text'][o])) for f, o in enumerate(owner)]
            enc['start_positions'], enc['end_positions'] = [s for s, _ in spans], [e for _, e in spans]
            enc.pop('offset_mapping')
        else: enc['offset_mapping'], enc['example_idx'] = offs, [idxs[o] for o in owner]
        return enc
    return ds.map(prep, batched=True, with_indices=True, remove_columns=ds.column_names)

def answer_tokens(cls:int, offs:list, s_char:int, e_char:int) -> tuple[int, int]:
    "First and last token of the answer's characters [s_char, e_char) in a window (`offs` None outside the context), else CLS twice"
    ctx = [t for t, o in enumerate(offs) if o is not None]
    if offs[ctx[0]][0] > s_char or offs[ctx[-1]][1] < e_char: return cls, cls   # not all of the answer is in this window
    return max(t for t in ctx if offs[t][0] <= s_char), min(t for t in ctx if offs[t][1] >= e_char)

def hf_answers(start_logits, end_logits, feats, contexts, n_best=20, max_answer_length=30) -> list[str]:
    "run_qa's post-processing: per example, the best start+end logit sum over its windows' n_best starts x n_best ends"
    import numpy as np
    best = [(-np.inf, '')] * len(contexts)   # no valid span: the empty answer
    for f, (sl, el) in enumerate(zip(start_logits, end_logits)):
        ex, offs = feats['example_idx'][f], feats['offset_mapping'][f]
        sl, el = sl[:len(offs)], el[:len(offs)]   # logits beyond the window are padding
        for s in np.argsort(sl)[::-1][:n_best]:
            for e in np.argsort(el)[::-1][:n_best]:
                if offs[s] is None or offs[e] is None or e < s or e - s + 1 > max_answer_length: continue
                if sl[s] + el[e] > best[ex][0]: best[ex] = (sl[s] + el[e], contexts[ex][offs[s][0]:offs[e][1]])
    return [t for _, t in best]

def blurr_answers(start_logits, end_logits, feats, contexts, tokenizer, max_answer_length=30) -> list[str]:
    "blurr's post-processing (`best_answer_spans`: log-softmax per window, any span of context tokens) on the same windows"
    import torch
    from blurr.data.question_answering import best_answer_spans, span_text
    sl, el = torch.tensor(start_logits), torch.tensor(end_logits)
    offs = torch.full((*sl.shape, 2), -1, dtype=torch.long)   # -1 outside the context, as blurr has it
    for f, o in enumerate(feats['offset_mapping']):
        for t, p in enumerate(o):
            if p is not None: offs[f, t] = torch.tensor(p)
    null = torch.tensor([ids.index(tokenizer.cls_token_id) for ids in feats['input_ids']])
    spans = best_answer_spans(sl, el, offs, null, torch.tensor(feats['example_idx']), max_answer_length)
    return [span_text(contexts[i], offs, sp)['answer'] for i, sp in enumerate(spans)]

def squad_scores(preds, d) -> tuple[float, float]:
    "Mean SQuAD exact match and F1 of `preds` against every gold answer of `d`, with blurr's functions (as for blurr's metric)"
    import numpy as np
    from blurr.modeling.question_answering import squad_exact_match, squad_f1
    golds = [list(x['text']) for x in d.answers]
    return (float(np.mean([squad_exact_match(p, g) for p, g in zip(preds, golds)])),
            float(np.mean([squad_f1(p, g) for p, g in zip(preds, golds)])))

def cross_scores(start_logits, end_logits, feats, d, tokenizer) -> dict:
    "A model's validation EM/F1 through the Trainer-side post-processing and through blurr's, on the same logits"
    ctxs = d.context.tolist()
    em_h, f1_h = squad_scores(hf_answers(start_logits, end_logits, feats, ctxs), d)
    em_b, f1_b = squad_scores(blurr_answers(start_logits, end_logits, feats, ctxs, tokenizer), d)
    return dict(em_hfpp=em_h, f1_hfpp=f1_h, em_blurrpp=em_b, f1_blurrpp=f1_b)

def window_logits(model, tokenizer, ds, bs):
    "Start and end logits (windows x tokens, numpy) of a model on the feature `ds`, in order, padded to the longest window"
    import torch
    ds = ds.remove_columns(['offset_mapping', 'example_idx'])
    width, dev = max(len(x) for x in ds['input_ids']), next(model.parameters()).device
    model.eval(); starts, ends = [], []
    with torch.no_grad():
        for i in range(0, len(ds), bs):
            b = tokenizer.pad(ds[i:i + bs], padding='max_length', max_length=width, return_tensors='pt')
            out = model(**{k: v.to(dev) for k, v in b.items()})
            starts.append(out.start_logits.float().cpu()); ends.append(out.end_logits.float().cpu())
    return torch.cat(starts).numpy(), torch.cat(ends).numpy()


# ---------------------------------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------------------------------
def run_blurr(a) -> dict:
    "The notebook's WNUT-16 QA fine-tuning: blurr's batch-time windows, `squad_metrics` at the end of `fit_one_cycle`"
    import torch
    from fastai.text.all import DataBlock, ColReader, ColSplitter, set_seed
    from blurr.modeling.all import (BlurrLearner, BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_TextBlock, HF_AnswerBlock, HF_QABeforeBatchTransform,
                                    HF_BaseModelWrapper, HF_BaseModelCallback, hf_splitter, TorchAdamW, squad_metrics)
    df = load(a)
    set_seed(a.seed)
    torch.manual_seed(a.seed)  # right before the model is built: the QA head's init
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(model_path(a), task=HF_TASKS_AUTO.QuestionAnswering)
    head0 = head_checksum(model)
    tfm = HF_QABeforeBatchTransform(hf_arch, tok, max_length=a.max_length, stride=a.stride)
    dls = DataBlock(blocks=(HF_TextBlock(before_batch_tfm=tfm), HF_AnswerBlock()), get_x=ColReader(['question', 'context']),
                    get_y=ColReader('answers'), splitter=ColSplitter()).dataloaders(
        df, bs=a.bs, **blurr_dl_kwargs(a))
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, wd=0.01, metrics=squad_metrics(),
                         cbs=HF_BaseModelCallback, splitter=hf_splitter)   # loss: HF_AnswerBlock's QALossFlat (the model's own loss)
    masks = [b[0]['attention_mask'] for b in dls.train]; z, tot = pad_stats(masks); del masks
    probe, windows = StepProbe(model), count_windows(model)
    cb = fastai_timer(probe)
    set_seed(a.seed)   # the pass above drew random numbers: start the fit from the seed
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    _, valid_loss, em, f1 = learn.recorder.values[-1]   # fit_one_cycle's own end-of-epoch validation
    # Cross-check: blurr's model on the Trainer side's validation windows, scored both ways (untimed)
    d = df[df.is_valid].reset_index(drop=True)
    feats = hf_features(tok, d, a, train=False)
    cross = cross_scores(*window_logits(model, tok, feats, a.bs), feats, d, tok)
    train_s = sum(cb.train_s)
    return dict(side='blurr', steps=probe.steps, train_s=train_s, examples=probe.steps * a.bs, windows=windows[0],
                pad_frac=probe.pad_zeros / max(probe.pad_total, 1), pad_frac_pass=z / tot, tokens=probe.pad_total,
                em=float(em), f1=float(f1), valid_loss=float(valid_loss), **cross, head_init_sum=head0, peak_rss_mb=peak_rss_mb(),
                n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()), lrs=probe.lrs, moms=probe.moms,
                **probe.summary(train_s))

def run_hf(a) -> dict:
    "The `run_qa.py` recipe with the `Trainer`, fastai's optimizer settings and schedule"
    import tempfile, torch, datasets
    from transformers import (AutoTokenizer, AutoModelForQuestionAnswering, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)
    datasets.disable_progress_bars()
    df = load(a)
    path = model_path(a)
    set_seed(a.seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(a.seed)
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    head0 = head_checksum(model)
    d = df[df.is_valid].reset_index(drop=True)
    train_ds, feats = hf_features(tokenizer, df[~df.is_valid], a, train=True), hf_features(tokenizer, d, a, train=False)
    steps = a.epochs * (len(train_ds) // a.bs)
    opt = fastai_adamw(model, a.lr)
    sched = FastaiOneCycle(opt, a.lr, steps)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix='bench_qa_'), num_train_epochs=a.epochs,
        per_device_train_batch_size=a.bs, per_device_eval_batch_size=a.bs, train_sampling_strategy='group_by_length',
        dataloader_drop_last=True,  # as fastai does for training: the same steps on both sides
        dataloader_num_workers=0, dataloader_pin_memory=False, max_grad_norm=0.0, fp16=False, bf16=False,
        eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none', disable_tqdm=True, seed=a.seed)
    probe, windows = StepProbe(model), count_windows(model)
    cb = trainer_timer(probe, opt)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), optimizers=(opt, sched), callbacks=[cb])
    masks = [b['attention_mask'] for b in trainer.get_train_dataloader()]; z, tot = pad_stats(masks); del masks
    set_seed(a.seed)
    trainer.train()
    train_s = sum(cb.train_s)
    # Not `trainer.predict`: with `train_sampling_strategy='group_by_length'`, transformers 5 also length-groups the
    # evaluation sampler, so its predictions come back out of the windows' order
    start_logits, end_logits = window_logits(model, tokenizer, feats, a.bs)
    cross = cross_scores(start_logits, end_logits, feats, d, tokenizer)
    return dict(side='hf', steps=probe.steps, train_s=train_s, windows=windows[0],
                examples=probe.steps * a.bs * len(df[~df.is_valid]) / len(train_ds),  # windows trained on, in examples
                pad_frac=probe.pad_zeros / max(probe.pad_total, 1), pad_frac_pass=z / tot, tokens=probe.pad_total,
                em=cross['em_hfpp'], f1=cross['f1_hfpp'], **cross, head_init_sum=head0, peak_rss_mb=peak_rss_mb(),
                n_train=int((~df.is_valid).sum()), n_valid=len(d), n_train_windows=len(train_ds), n_valid_windows=len(feats),
                lrs=probe.lrs, moms=probe.moms, **probe.summary(train_s))


# ---------------------------------------------------------------------------------------------------------------------
# Parent: run each side in a fresh subprocess and compare
# ---------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=None, help='a random sample of N questions of wnut16_qa_df (default: all; 20%% validation)')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--bs', type=int, default=16, help='batch size: examples for blurr (each with all its windows), windows for the Trainer')
    p.add_argument('--lr', type=float, default=1e-4, help="one-cycle peak learning rate (fastai's lr_max)")
    p.add_argument('--max-length', type=int, default=128, help='tokens per window')
    p.add_argument('--stride', type=int, default=32, help='tokens shared by consecutive windows')
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
    return run_worker(__file__, side, flags(a, 'model_dir', 'epochs', 'bs', 'lr', 'max_length', 'stride', 'seed', 'n', 'blurr_workers', 'blurr_order', 'threads'))

def report(res, sides):
    "The tables and, with both sides, the ratios and checks"
    rows = [res[s] for s in sides if res[s] is not None]
    if not rows: return
    print('\n# ex/s = training examples per second of fitting time (blurr: steps x bs examples, each with all its windows;')
    print('# HF: the windows trained on, counted in examples); win/s = windows through the model per second')
    print_rows([('side', 's', lambda r: r['side']), ('steps', 'd', lambda r: r['steps']), ('train_s', '.1f', lambda r: r['train_s']),
                ('ex/s', '.2f', lambda r: r['examples'] / r['train_s']), ('win/s', '.2f', lambda r: r['windows'] / r['train_s']),
                ('median_ms', '.0f', lambda r: r['step_ms_median']), ('pad%', '.1f', lambda r: 100 * r['pad_frac']),
                ('tokens', 'd', lambda r: r['tokens']), ('peak_MB', '.0f', lambda r: r['peak_rss_mb']),
                ('EM', '.4f', lambda r: r['em']), ('F1', '.4f', lambda r: r['f1'])], rows)
    print('\n# per training step (ms): fwd = model forward; bwd = forward end -> optimizer step (loss, backward); '
          'opt = optimizer step; rest = the rest (getting the batch: tokenize into windows and pad for blurr, collate for HF)')
    print_rows([('side', 's', lambda r: r['side'])] + [(k, '.1f', (lambda k: lambda r: r[k + '_ms'])(k)) for k in ('fwd', 'bwd', 'opt', 'rest')], rows)
    print("\n# each model's validation predictions scored through each post-processing (the Trainer side's windows and logits)")
    print_rows([('model', 's', lambda r: r['side']), ('EM hf-pp', '.4f', lambda r: r['em_hfpp']), ('F1 hf-pp', '.4f', lambda r: r['f1_hfpp']),
                ('EM blurr-pp', '.4f', lambda r: r['em_blurrpp']), ('F1 blurr-pp', '.4f', lambda r: r['f1_blurrpp'])], rows)
    if len(rows) < 2: return
    b, h = res['blurr'], res['hf']
    ratio = (b['examples'] / b['train_s']) / (h['examples'] / h['train_s'])
    dem, df1 = 100 * (b['em'] - h['em']), 100 * (b['f1'] - h['f1'])
    print(f'\nblurr/HF ex/s: {ratio:.3f}   (>1: blurr faster)')
    print(f'EM blurr - HF: {dem:+.2f} points, F1 blurr - HF: {df1:+.2f} points  '
          f'(one seed, {b["n_valid"]} validation questions: 1 question = {100 / b["n_valid"]:.2f} EM points)')
    print(f"# the same two models through the Trainer-side post-processing: EM {100 * (b['em_hfpp'] - h['em_hfpp']):+.2f}, "
          f"F1 {100 * (b['f1_hfpp'] - h['f1_hfpp']):+.2f} points; blurr's own metric vs its post-processing on the HF windows: "
          f"EM {b['em']:.4f}/{b['em_blurrpp']:.4f}, F1 {b['f1']:.4f}/{b['f1_blurrpp']:.4f}")
    print(f"# goal (EM and F1 within 1 point, blurr at least as fast): "
          f"{'met' if abs(dem) <= 1 and abs(df1) <= 1 and ratio >= 1 else 'not met'}")
    print(f"# checks: same initial head: {b['head_init_sum'] == h['head_init_sum']}; same train/valid questions: "
          f"{b['n_train'] == h['n_train']}/{b['n_valid'] == h['n_valid']}; steps {b['steps']}/{h['steps']}; windows trained on "
          f"{b['windows']}/{h['windows']} (HF: {h['n_train_windows']} training, {h['n_valid_windows']} validation windows)")
    print_schedule_check(b, h)

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf)
    print_stack('bench_qa')
    print(f'# job: {model_name(a)} QA head, wnut16_qa_df(seed={a.seeds or a.seed}{f", n={a.n}" if a.n else ""}), epochs={a.epochs}, '
          f'bs={a.bs}, lr_max={a.lr:g}, max_length={a.max_length}, stride={a.stride}, fastai one-cycle, fused AdamW '
          '(beta2 0.99, eps 1e-5, wd 0.01), first answer as target, no grad clipping')
    sides = [a.only] if a.only else ['blurr', 'hf']
    with model_per_seed(a, run_side) as run: runs = run_seeds(a, sides, run, lambda res: report(res, sides))
    print_seeds_summary(runs, {'EM': 'em', 'F1': 'f1'}, lambda r: r['examples'] / r['train_s'])
    if any(r is None for _, res in runs for r in res.values()): sys.exit(1)

if __name__ == '__main__':
    main()
