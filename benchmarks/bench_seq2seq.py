#!/usr/bin/env python
"""Text-to-text (seq2seq): blurr + fastai against the Hugging Face `Seq2SeqTrainer` with `predict_with_generate`.

The job of the notebook `23_modeling.seq2seq` ("A tiny model learns a text-to-text task"), made larger: pairs of
`tiny_corpus` sentences, the source being two sentences and the target the first one, and a tiny random BART (4 + 4
layers, the tiny byte-level BPE tokenizer with 1,000 tokens) of width `--d-model`: 64 (0.4M parameters, the
notebook's) by default, or several widths in turn (128: 1.4M, 256: 5.5M), each judged apart. The parent builds each
model once per seed and saves it with its tokenizer to a temporary folder; both sides load that folder, so they start
from the same weights (checked). Same rows, epochs, batch size, source/target lengths (128/64), one-cycle schedule
(fastai's formula on both sides) and fused AdamW hyper-parameters, no gradient clipping. The Trainer side is the usual
`run_summarization.py` recipe: `Dataset.map` tokenization, `DataCollatorForSeq2Seq`, `group_by_length` sampling
(`--order random`: shuffled batches on both sides), then `trainer.predict` with `predict_with_generate=True`. Both
generate greedily on the validation set with the same `max_new_tokens` (blurr: `seq2seq_metrics` at the last epoch)
and are scored with blurr's `rouge_scores` against the labels decoded next to each text. Each side runs in its own
fresh subprocess and prints one JSON line; the parent prints the comparison (with several widths, then the goal at
each).

`--model minilm` is the real-weights setting instead: the README's summarization example, MiniLM warm-started into an
encoder-decoder (new cross-attention weights drawn from the seed) on the 100 ACLSum abstracts, 50 to validate, with
the example's lengths (256/64), batch size (4), epochs (5) and peak lr (5e-4).

    .venv/bin/python benchmarks/bench_seq2seq.py --seeds 42 1 2
    .venv/bin/python benchmarks/bench_seq2seq.py --model minilm --seeds 42 1 2
"""
from __future__ import annotations
import argparse, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import weights_checksum, add_blurr_dl_args, add_seeds_arg, run_seeds, seed_means, print_seeds_summary, blurr_dl_kwargs, run_worker, flags, worker_main, print_stack, print_schedule_check, StepProbe, peak_rss_mb, fastai_adamw, FastaiOneCycle, print_rows, fastai_timer, trainer_timer

ROUGE = ('rouge1', 'rouge2', 'rougeL', 'rougeLsum')


# Each model's job: its data and defaults. `tiny` is the GPU regime (a 25-45 ms step on this CPU), `minilm` real weights
# (MiniLM warm-started into an encoder-decoder, the README's summarization example: ACLSum abstracts to their outcome)
JOBS = {'tiny': dict(max_length=128, max_target_length=64, bs=16, epochs=3, lr=3e-3),
        'minilm': dict(max_length=256, max_target_length=64, bs=4, epochs=5, lr=5e-4)}

def load(a):
    "The job's pairs: `text`, `summary`, `is_valid`"
    import pandas as pd
    if a.model == 'minilm':
        from blurr.embedded import aclsum_df
        return aclsum_df()[['text', 'summary', 'is_valid']]
    # the notebook's pairs, `a.n` of them: `text` (two sentences), `summary` (the first); the last `a.n_valid` are validation
    from blurr.testing import tiny_corpus
    s = tiny_corpus(2 * a.n)
    df = pd.DataFrame({'text': [x + ' ' + y for x, y in zip(s[:a.n], s[a.n:])], 'summary': s[:a.n]})
    df['is_valid'] = df.index >= a.n - a.n_valid
    return df

def build_model(folder, seed, d_model=64):
    """The job's model saved with its tokenizer to `folder` (done once, in the parent): the notebook's tiny BART (`d_model`,
    ffn twice that) with random weights from `seed`, or (`d_model=None`) MiniLM warm-started into an encoder-decoder,
    its new cross-attention weights drawn from `seed`"""
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM
    from transformers.utils import logging as hf_logging
    from blurr.testing import tiny_hf_objects, tiny_hf_folder
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    if d_model is None:
        from transformers import AutoTokenizer
        from blurr.embedded import default_model_path
        from blurr.modeling.seq2seq import encoder_decoder_from_pretrained
        tok = AutoTokenizer.from_pretrained(default_model_path())
        torch.manual_seed(seed)
        encoder_decoder_from_pretrained(default_model_path(), tok).save_pretrained(folder)
        tok.save_pretrained(folder)
        return
    _, _, tok, _ = tiny_hf_objects('bart', task=None, vocab_size=1000, max_length=128)
    cfg = AutoConfig.from_pretrained(tiny_hf_folder('bart', vocab_size=1000, max_length=128), d_model=d_model,
                                     encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model)
    torch.manual_seed(seed)
    AutoModelForSeq2SeqLM.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)

def count_labels(n:list, labels):
    "Add the positions and the padding (-100) of a batch of `labels` to `n`"
    n[0] += labels.numel(); n[1] += int((labels == -100).sum())

def count_targets(model) -> list:
    "[label positions, label padding] over the training batches, from a forward pre-hook (target side of `pad%`)"
    n = [0, 0]
    def _pre(m, args, kw):
        if m.training and kw.get('labels') is not None: count_labels(n, kw['labels'])
    model.register_forward_pre_hook(_pre, with_kwargs=True)
    return n

def gen_kwargs(a) -> dict:
    "The same greedy decoding on both sides"
    return dict(max_new_tokens=a.max_target_length, num_beams=1, do_sample=False)

def target_labels(a, tok, targets:list[str]) -> list[list[int]]:
    """Each target's token ids cut to `max_target_length`, as blurr's batch transform makes its labels: an encoder-decoder
    warm-started from BERT starts its decoder with [CLS], so a leading [CLS] is dropped from the labels (with room for it)"""
    start = tok.cls_token_id if a.model == 'minilm' else None
    ids = tok(text_target=targets, max_length=a.max_target_length + (start is not None), truncation=True)['input_ids']
    return [o[1:] if start is not None and o[:1] == [start] else o for o in ids]

def scores(a, preds, targets, df, tok) -> dict:
    "blurr's `rouge_scores` (as `seq2seq_metrics`), exact copies, mean generated tokens, targets = validation summaries (as the tokenizer decodes their labels)?"
    from blurr.modeling.seq2seq import rouge_scores
    norm = lambda ts: sorted(' '.join(t.split()) for t in ts)
    summaries = tok.batch_decode(target_labels(a, tok, df.summary[df.is_valid].tolist()), skip_special_tokens=True)
    return dict(rouge_scores(preds, targets), exact=sum(p == t for p, t in zip(preds, targets)) / len(targets), n_gen=len(preds),
                gen_len=sum(len(ids) for ids in tok(preds, add_special_tokens=False)['input_ids']) / len(preds),
                targets_ok=norm(targets) == norm(summaries))

def common(a, df, w0, probe, tgt, prep_s, train_s) -> dict:
    "What both sides report the same way"
    import torch
    return dict(threads=torch.get_num_threads(), steps=probe.steps, prep_s=prep_s, train_s=train_s, samples=probe.steps * a.bs,
                pad_frac=probe.pad_zeros / max(probe.pad_total, 1), tokens=probe.pad_total, tgt_pad_frac=tgt[1] / max(tgt[0], 1),
                weights_sum=w0, peak_rss_mb=peak_rss_mb(),
                n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()), lrs=probe.lrs, moms=probe.moms,
                **probe.summary(train_s))


# ---------------------------------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------------------------------
def run_blurr(a) -> dict:
    "The notebook's training: batch-time tokenization, `PlainCrossEntropyLossFlat`, `seq2seq_metrics` at the last epoch"
    from fastai.text.all import DataBlock, ColReader, ColSplitter, Callback, set_seed
    from blurr.modeling.all import (BlurrLearner, PlainCrossEntropyLossFlat, BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_TextBlock, HF_TextTargetBlock,
                                    HF_Seq2SeqBeforeBatchTransform, HF_BaseModelWrapper, HF_BaseModelCallback, hf_splitter,
                                    TorchAdamW, GenerationState, SharedStateMetric, rouge_scores)
    df = load(a)
    set_seed(a.seed)
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(a.model_dir, task=HF_TASKS_AUTO.Seq2SeqLM)
    w0 = weights_checksum(model)
    tfm = HF_Seq2SeqBeforeBatchTransform(hf_arch, tok, max_length=a.max_length, max_target_length=a.max_target_length)
    # --order random: shuffled training batches (`batch_order='random'`) unless --blurr-order says otherwise
    dl_kwargs = {'batch_order': 'random'} if a.order == 'random' else {}
    t0 = time.perf_counter()
    dls = DataBlock(blocks=(HF_TextBlock(before_batch_tfm=tfm), HF_TextTargetBlock()), get_x=ColReader('text'),
                    get_y=ColReader('summary'), splitter=ColSplitter()).dataloaders(df, bs=a.bs, **{**dl_kwargs, **blurr_dl_kwargs(a)})
    prep_s = time.perf_counter() - t0   # checking texts, counting tokens to sort by
    # `seq2seq_metrics(every='last')`, with its scoring function keeping the texts it scores for our own checks
    texts = {}
    def score(preds, targets): texts.update(preds=preds, targets=targets); return rouge_scores(preds, targets)
    state = GenerationState(score, every='last', **gen_kwargs(a))   # one state: the four scores of one generation pass
    metrics = [SharedStateMetric(state, k) for k in ROUGE]
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, wd=0.01, loss_func=PlainCrossEntropyLossFlat(),
                         metrics=metrics, cbs=HF_BaseModelCallback, splitter=hf_splitter)
    probe, tgt = StepProbe(model), [0, 0]
    class CountTargets(Callback):
        "The labels of the training batches, counted here: the model gets decoder inputs instead (`HF_BaseModelCallback`)"
        def before_batch(self):
            if self.training: count_labels(tgt, self.yb[0])
    learn.add_cb(CountTargets())
    cb = fastai_timer(probe)   # its valid_s: the last one is where seq2seq_metrics(every='last') generates
    set_seed(a.seed)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    train_s = sum(cb.train_s)
    valid_loss = learn.recorder.values[-1][1]
    res = scores(a, texts['preds'], texts['targets'], df, tok)   # the last validation's generated texts and decoded targets
    assert all(abs(res[k] - v) < 1e-9 for k, v in zip(ROUGE, learn.recorder.values[-1][2:])), 'rescoring differs from the metric'
    return dict(side='blurr', gen_s=cb.valid_s[-1], valid_loss=float(valid_loss), **res, **common(a, df, w0, probe, tgt, prep_s, train_s))

def run_hf(a) -> dict:
    "The `run_summarization.py` recipe with the `Seq2SeqTrainer`, fastai's optimizer settings and schedule"
    import torch, datasets
    from transformers import (AutoTokenizer, AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, Seq2SeqTrainer,
                              Seq2SeqTrainingArguments, set_seed)
    datasets.disable_progress_bars()
    df = load(a)
    set_seed(a.seed)
    tok, model = AutoTokenizer.from_pretrained(a.model_dir), AutoModelForSeq2SeqLM.from_pretrained(a.model_dir)
    w0 = weights_checksum(model)
    def to_ds(d):
        def prep(b):
            enc = tok(b['text'], max_length=a.max_length, truncation=True)
            enc['labels'] = target_labels(a, tok, b['summary'])
            return enc
        ds = datasets.Dataset.from_dict({'text': d.text.tolist(), 'summary': d.summary.tolist()})
        return ds.map(prep, batched=True, remove_columns=ds.column_names)
    t0 = time.perf_counter()
    train_ds, valid_ds = to_ds(df[~df.is_valid]), to_ds(df[df.is_valid])
    prep_s = time.perf_counter() - t0   # tokenizing every text once
    steps = a.epochs * (len(train_ds) // a.bs)
    opt = fastai_adamw(model, a.lr)
    sched = FastaiOneCycle(opt, a.lr, steps)
    args = Seq2SeqTrainingArguments(output_dir=tempfile.mkdtemp(prefix='bench_s2s_'), num_train_epochs=a.epochs,
        per_device_train_batch_size=a.bs, per_device_eval_batch_size=a.bs,
        train_sampling_strategy='group_by_length' if a.order == 'length' else 'random',
        dataloader_drop_last=True,  # as fastai does for training: the same steps on both sides
        dataloader_num_workers=0, dataloader_pin_memory=False, max_grad_norm=0.0, fp16=False, bf16=False,
        eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none', disable_tqdm=True, seed=a.seed,
        predict_with_generate=True, generation_num_beams=1)
    probe, tgt = StepProbe(model), count_targets(model)
    cb = trainer_timer(probe, opt)
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train_ds, processing_class=tok, optimizers=(opt, sched),
                             data_collator=DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100), callbacks=[cb])
    set_seed(a.seed)
    trainer.train()
    train_s = sum(cb.train_s)
    # Every validation row (drop_last would drop the last partial batch). transformers 5 length-groups the evaluation
    # sampler too under 'group_by_length', so the rows come back out of order: each generated text is scored against
    # the labels that came back with it, as blurr's metric does, which makes the order irrelevant.
    trainer.args.dataloader_drop_last = False
    t0 = time.perf_counter()
    pred = trainer.predict(valid_ds, **gen_kwargs(a))
    gen_s = time.perf_counter() - t0
    def dec(ids):   # -100 pads the batches to one width: decode it as padding
        ids = torch.as_tensor(ids)
        return [t.strip() for t in tok.batch_decode(ids.masked_fill(ids < 0, tok.pad_token_id), skip_special_tokens=True)]
    res = scores(a, dec(pred.predictions), dec(pred.label_ids), df, tok)
    assert res['n_gen'] == len(valid_ds), (res['n_gen'], len(valid_ds))
    shutil.rmtree(args.output_dir, ignore_errors=True)   # nothing was saved in it
    return dict(side='hf', gen_s=gen_s, valid_loss=pred.metrics['test_loss'], **res, **common(a, df, w0, probe, tgt, prep_s, train_s))


# ---------------------------------------------------------------------------------------------------------------------
# Parent: build the model, run each side in a fresh subprocess and compare
# ---------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', choices=list(JOBS), default='tiny',
                   help="tiny: a random BART on tiny_corpus pairs (the GPU regime); minilm: MiniLM warm-started into an encoder-decoder on ACLSum")
    p.add_argument('--n', type=int, default=2000, help='tiny: pairs built from tiny_corpus(2n)')
    p.add_argument('--n-valid', type=int, default=200, help='tiny: the last N pairs are the validation set')
    p.add_argument('--epochs', type=int, help='default: 3 (tiny), 5 (minilm)')
    p.add_argument('--bs', type=int, help='default: 16 (tiny), 4 (minilm)')
    p.add_argument('--lr', type=float, help="one-cycle peak learning rate (fastai's lr_max); default: 3e-3 (tiny), 5e-4 (minilm)")
    p.add_argument('--max-length', type=int, help='longest source in tokens; default: 128 (tiny), 256 (minilm)')
    p.add_argument('--max-target-length', type=int, help='longest target in tokens, and max_new_tokens when generating; default: 64')
    p.add_argument('--seed', type=int, default=42)
    add_seeds_arg(p)
    p.add_argument('--d-model', type=int, nargs='+', default=[64],
                   help="tiny: the BART's width (its feed-forward layers are twice as wide); several: each in turn, judged apart")
    p.add_argument('--only', choices=['blurr', 'hf'])
    p.add_argument('--order', choices=['length', 'random'], default='length',
                   help="training order: length-grouped batches (blurr's HF_SortedDL, the Trainer's group_by_length) or "
                        "shuffled (blurr's batch_order='random', the Trainer's random sampler)")
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads in each worker (default: leave as is)')
    add_blurr_dl_args(p)
    p.add_argument('--worker', choices=['blurr', 'hf'], help=argparse.SUPPRESS)
    p.add_argument('--model-dir', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    for k, v in JOBS[a.model].items():
        if getattr(a, k) is None: setattr(a, k, v)
    return a

def run_side(side, a):
    "Run one side in a fresh subprocess; its result dict, or None if it failed"
    return run_worker(__file__, side, flags(a, 'model', 'model_dir', 'n', 'n_valid', 'epochs', 'bs', 'lr', 'max_length', 'max_target_length', 'seed', 'order', 'blurr_workers', 'blurr_order', 'threads'))

def report(res, sides):
    "The tables and, with both sides, the ratios, the goal and the checks"
    rows = [res[s] for s in sides if res[s] is not None]
    if not rows: return
    print('\n# prep_s = preparing the data (blurr: DataLoaders, which check the texts and count tokens to sort by; HF: Dataset.map,')
    print('# which tokenizes every text once); samples/s = training pairs per second of fitting time; gen_s = the validation set through the model with its labels')
    print('# (loss) and greedy generation: blurr the last epoch\'s validation (seq2seq_metrics), HF trainer.predict; gen_len =')
    print('# mean tokens per generated text (generation takes longer for a model that writes longer texts)')
    print_rows([('side', 's', lambda r: r['side']), ('steps', 'd', lambda r: r['steps']), ('prep_s', '.2f', lambda r: r['prep_s']),
                ('train_s', '.1f', lambda r: r['train_s']),
                ('samples/s', '.2f', lambda r: r['samples'] / r['train_s']), ('median_ms', '.0f', lambda r: r['step_ms_median']),
                ('pad%', '.1f', lambda r: 100 * r['pad_frac']), ('tgt_pad%', '.1f', lambda r: 100 * r['tgt_pad_frac']),
                ('tokens', 'd', lambda r: r['tokens']), ('peak_MB', '.0f', lambda r: r['peak_rss_mb']),
                ('gen_s', '.2f', lambda r: r['gen_s']), ('gen/s', '.1f', lambda r: r['n_gen'] / r['gen_s']),
                ('gen_len', '.1f', lambda r: r['gen_len'])], rows)
    print('\n# validation: greedy texts scored with blurr\'s rouge_scores against the decoded labels; exact = identical to the target')
    print_rows([('side', 's', lambda r: r['side'])] + [(k, '.4f', (lambda k: lambda r: r[k])(k)) for k in ROUGE] +
               [('exact', '.4f', lambda r: r['exact']), ('valid_loss', '.4f', lambda r: r['valid_loss'])], rows)
    print('\n# per training step (ms): fwd = model forward (HF: with its loss); bwd = forward end -> optimizer step (blurr: '
          'loss, backward; HF: backward, the gradient norm the Trainer computes every step); opt = optimizer step; '
          'rest = the rest (getting the batch: tokenizing and padding for blurr, collating for HF)')
    print_rows([('side', 's', lambda r: r['side'])] + [(k, '.1f', (lambda k: lambda r: r[k + '_ms'])(k)) for k in ('fwd', 'bwd', 'opt', 'rest')], rows)
    if len(rows) < 2: return
    b, h = res['blurr'], res['hf']
    ratio = (b['samples'] / b['train_s']) / (h['samples'] / h['train_s'])
    d = {k: 100 * (b[k] - h[k]) for k in ROUGE}
    end_to_end = (h['prep_s'] + h['train_s']) / (b['prep_s'] + b['train_s'])
    print(f'\nblurr/HF samples/s: {ratio:.3f}   (>1: blurr faster); blurr/HF generation speed: {h["gen_s"] / b["gen_s"]:.3f}; '
          f'blurr/HF speed counting data preparation (prep_s + train_s): {end_to_end:.3f}')
    print('ROUGE blurr - HF (points): ' + ', '.join(f'{k} {v:+.2f}' for k, v in d.items()) +
          f'  (one seed, {b["n_valid"]} validation pairs)')
    print(f"# goal (every ROUGE within 1 point or above the Trainer's, blurr at least as fast to train): "
          f"{'met' if all(v >= -1 for v in d.values()) and ratio >= 1 else 'not met'}; "
          f"within 1 point either way: {'yes' if all(abs(v) <= 1 for v in d.values()) else 'no'}")
    print(f"# checks: same initial weights: {b['weights_sum'] == h['weights_sum']}; same train/valid pairs: "
          f"{b['n_train'] == h['n_train']}/{b['n_valid'] == h['n_valid']}; steps {b['steps']}/{h['steps']}; "
          f"texts generated {b['n_gen']}/{h['n_gen']}; decoded targets = the validation summaries: "
          f"{b['targets_ok']}/{h['targets_ok']}; threads {b['threads']}/{h['threads']}")
    print_schedule_check(b, h)

def run_width(a, sides, d_model) -> list:
    "Every seed at one model width (`None`: MiniLM's encoder-decoder): [(seed, res)], with the means over the seeds"
    job = (f'tiny random BART (d_model {d_model}, ffn {2 * d_model}, vocab 1000), {a.n} tiny_corpus pairs ({a.n_valid} validation)'
           if d_model else 'MiniLM warm-started into an encoder-decoder (random cross-attention), ACLSum abstracts to outcomes (100 training, 50 validation)')
    print(f'\n# job: {job}, '
          f'epochs={a.epochs}, bs={a.bs}, lr_max={a.lr:g}, max_length={a.max_length}, max_target_length={a.max_target_length}, '
          f'{a.order} order, fastai one-cycle, fused AdamW (beta2 0.99, eps 1e-5, wd 0.01), no grad clipping, greedy generation '
          f'(max_new_tokens={a.max_target_length})', flush=True)
    built = {}   # seed -> the folder of its initial weights, built once for both sides
    def run_with_model(side, a):
        if a.seed not in built:
            if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
            a.model_dir = built[a.seed] = tempfile.mkdtemp(prefix='bench_s2s_model_')
            build_model(a.model_dir, a.seed, d_model)
        return run_side(side, a)
    try: runs = run_seeds(a, sides, run_with_model, lambda res: report(res, sides))
    finally:
        if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
        a.model_dir = None
    print_seeds_summary(runs, {k: k for k in ROUGE}, samples_per_s)
    return runs

def samples_per_s(r) -> float: return r['samples'] / r['train_s']

def print_widths_summary(by_width:dict):
    "The goal at each model width, on the means over the seeds that ran on both sides"
    print('\n## goal at each width (every ROUGE within 1 point or above the Trainer\'s, blurr at least as fast to train; means over the seeds)')
    for d_model, runs in by_width.items():
        m = seed_means(runs, {k: k for k in ROUGE}, samples_per_s)
        if not m['runs']: continue
        met = all(v >= -1 for v in m['diffs'].values()) and m['mean_ratio'] >= 1
        print(f"d_model {d_model}: speed {m['mean_ratio']:.3f}, ROUGE-L {m['diffs']['rougeL']:+.2f} points, "
              f"goal {'met' if met else 'not met'} ({len(m['runs'])} seed(s))")

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf)
    print_stack('bench_seq2seq', a.threads)
    sides = [a.only] if a.only else ['blurr', 'hf']
    by_width = {d: run_width(a, sides, d) for d in (a.d_model if a.model == 'tiny' else [None])}
    if len(sides) == 2 and len(by_width) > 1: print_widths_summary(by_width)
    if any(r is None for runs in by_width.values() for _, res in runs for r in res.values()): sys.exit(1)

if __name__ == '__main__':
    main()
