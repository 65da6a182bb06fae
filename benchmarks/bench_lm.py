#!/usr/bin/env python
"""Causal language modeling: blurr + fastai against the Hugging Face `Trainer` with `DataCollatorForLanguageModeling(mlm=False)`.

One job two ways: fine-tune a tiny random Llama (`blurr.testing`'s tiny Llama, its byte-fallback BPE tokenizer trained
on the training documents, `--size` for its width) on documents (`--data rt`: Rotten Tomatoes snippets, `--data
aclsum`: ACLSum abstracts), each document ending with the end-of-sequence token, documents longer than `--max-length`
cut into consecutive blocks that share one token (blurr's `document_blocks`: no target lost). The parent builds the
model once per seed and saves it with its tokenizer to a temporary folder; both sides load that folder (same initial
weights, checked). The tokenizer's pad token is set to `<unk>` (which never occurs in the text) rather than `</s>`:
`DataCollatorForLanguageModeling` masks every token equal to the pad id, so with pad = eos the Trainer would never
learn where a document ends.

- **blurr**: `HF_TextBlock(before_batch_tfm=HF_CausalLMBeforeBatchTransform(..., max_length, packing))`, tokenizing and
  cutting at batch time, blurr's length-sorted `HF_SortedDL`; `BlurrLearner(..., opt_func=TorchAdamW, wd=0.01,
  loss_func=PlainCrossEntropyLossFlat(), metrics=lm_metrics(), cbs=HF_BaseModelCallback, splitter=hf_splitter)`,
  `fit_one_cycle(epochs, lr_max)`.
- **hf**: the documents tokenized once (`Dataset.map`), cut into the same blocks, `DataCollatorForLanguageModeling(
  tokenizer, mlm=False)`, `group_by_length` sampling (`--order random`: shuffled on both sides), fused AdamW with
  fastai's hyper-parameters and fastai's one-cycle formula (`FastaiOneCycle`), no clipping, no evaluation in training.

The training documents are cut to a multiple of `--bs`, so fastai's drop_last drops nothing, and the Trainer keeps its
last partial batch of blocks: both train on every target token of every training document each epoch. Afterwards
both sides compute the validation loss the same way (`valid_loss`: summed cross-entropy over every real target token
of the validation blocks, divided by their number). Each side runs in its own fresh subprocess and prints one JSON line.

`--data instruct` is the instruction (SFT) case: each snippet as a prompt (`Review: ...\nFresh or rotten?`), its
verdict and the end-of-sequence token as the response, the only targets. blurr: `HF_InstructionBlock` (its
`HF_InstructionBeforeBatchTransform`); the Trainer: the prompt tokenized with the tokenizer's special tokens, the
response after it, labels -100 on the prompt, `DataCollatorForSeq2Seq(label_pad_token_id=-100)` (TRL's SFTTrainer
with a completion-only loss builds the same rows). Both sides' rows and trained positions are compared by hash.

    .venv/bin/python benchmarks/bench_lm.py --threads 1 --seeds 1 2 3    # the README figures; --quick for a smoke run
"""
from __future__ import annotations
import argparse, hashlib, json, math, shutil, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import weights_checksum, print_token_tables, print_loss_summary, add_lm_args, run_seeds, run_worker, flags, worker_main, print_stack, print_schedule_check, StepProbe, peak_rss_mb, fastai_adamw, FastaiOneCycle, fastai_timer, trainer_timer

# The tiny Llama's sizes (`blurr.testing`'s is `tiny`); one key-value head, as there
SIZES = {'tiny': dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2),
         'small': dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2),
         'medium': dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4)}


def load(a):
    "The documents: `text` and `is_valid` (`instruct`: also `prompt` and `response`); the training documents cut to a multiple of `a.bs`"
    import pandas as pd
    if a.data in ('rt', 'instruct'):
        from blurr.embedded import rotten_tomatoes_df
        df = rotten_tomatoes_df(a.n, valid_pct=a.valid_pct, seed=42)
        if a.data == 'instruct':   # the review as the prompt, its verdict as the response; `text` (both) trains the tokenizer
            df = df.assign(prompt='Review: ' + df.text + '\nFresh or rotten?', response=df.label)
            df = df.assign(text=df.prompt + ' ' + df.response)[['text', 'prompt', 'response', 'is_valid']]
        else: df = df[['text', 'is_valid']]
    else:
        from blurr.embedded import aclsum_df
        df = aclsum_df('abstract')[['text', 'is_valid']]
    train, valid = df[~df.is_valid], df[df.is_valid]
    return pd.concat([train.iloc[:len(train) // a.bs * a.bs], valid]).reset_index(drop=True)

def build_model(folder, a, seed):
    "The tiny Llama of `a.size` with random weights from `seed`, and its tokenizer (trained on the training documents, pad `<unk>`), saved to `folder`"
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging
    from blurr.testing import tiny_hf_folder
    hf_logging.disable_progress_bar(); hf_logging.set_verbosity_error()
    df = load(a)
    src = tiny_hf_folder('llama', texts=df.text[~df.is_valid].tolist(), vocab_size=a.vocab, max_length=a.max_length)
    tok = AutoTokenizer.from_pretrained(src)
    tok.pad_token, tok.padding_side = tok.unk_token, 'right'
    cfg = AutoConfig.from_pretrained(src, **SIZES[a.size], num_key_value_heads=1, pad_token_id=tok.pad_token_id, use_cache=False,
                                     max_position_embeddings=max(128, a.max_length))
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)

def blocks_hash(blocks) -> str:
    "A short hash of a list of token-id lists: equal on both sides iff they hold the same blocks"
    return hashlib.sha1(json.dumps(blocks).encode()).hexdigest()[:12]

def valid_loss(model, blocks:list, pad_id:int, bs:int=64) -> tuple[float, int]:
    "Mean cross-entropy per real target token over `blocks` (every token of a block but its first is a target; of an `(ids, trained)` pair, each trained one), and the number of targets"
    import torch, torch.nn.functional as F
    model.eval()
    nll, n = 0.0, 0
    blocks = [b if isinstance(b, tuple) else (b, [True] * len(b)) for b in blocks]
    order = sorted(range(len(blocks)), key=lambda i: len(blocks[i][0]))
    with torch.no_grad():
        for s in range(0, len(order), bs):
            rows = [blocks[i] for i in order[s:s + bs]]
            w = max(len(r) for r, _ in rows)
            ids = torch.tensor([r + [pad_id] * (w - len(r)) for r, _ in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (w - len(r)) for r, _ in rows])
            trained = torch.tensor([t + [False] * (w - len(t)) for _, t in rows])
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            keep = trained[:, 1:]
            nll += F.cross_entropy(logits[keep], ids[:, 1:][keep], reduction='sum').item(); n += int(keep.sum())
    return nll / n, n

def common(a, df, w0, probe, tgt, prep_s, epoch_s, train_blocks, vloss, n_vt, vhash, thash) -> dict:
    "What both sides report the same way; `tgt` = [target tokens, rows, positions, real input tokens] over the training batches"
    import torch
    train_s = sum(epoch_s)
    tokens = tgt[3]
    return dict(threads=torch.get_num_threads(), steps=probe.steps, rows=tgt[1], targets=tgt[0], tokens=tokens, positions=tgt[2],
                pad_frac=1 - tokens / max(tgt[2], 1), prep_s=prep_s, train_s=train_s, epoch_s=epoch_s, weights_sum=w0,
                peak_rss_mb=peak_rss_mb(), n_train=int((~df.is_valid).sum()), n_valid=int(df.is_valid.sum()),
                n_train_blocks=len(train_blocks), train_hash=thash, valid_loss=vloss, valid_targets=n_vt, valid_hash=vhash,
                lrs=probe.lrs, moms=probe.moms, **probe.summary(train_s))


# ---------------------------------------------------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------------------------------------------------
def run_blurr(a) -> dict:
    "blurr's causal-LM job: batch-time tokenization and blocks, `PlainCrossEntropyLossFlat`, `lm_metrics`"
    import warnings
    from fastai.text.all import DataBlock, ColReader, ColSplitter, Callback, set_seed
    from blurr.modeling.all import (BlurrLearner, PlainCrossEntropyLossFlat, BLURR_MODEL_HELPER, HF_TASKS_AUTO, HF_TextBlock, HF_BaseModelWrapper, HF_BaseModelCallback,
                                    hf_splitter, TorchAdamW)
    from blurr.data.language_modeling import HF_CausalLMBeforeBatchTransform, HF_InstructionBeforeBatchTransform, HF_InstructionBlock, document_blocks
    from blurr.modeling.language_modeling import lm_metrics
    df = load(a)
    set_seed(a.seed)
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(a.model_dir, task=HF_TASKS_AUTO.CausalLM)
    w0 = weights_checksum(model)
    instruct = a.data == 'instruct'
    if instruct: tfm = HF_InstructionBeforeBatchTransform(hf_arch, tok, max_length=a.max_length)
    else: tfm = HF_CausalLMBeforeBatchTransform(hf_arch, tok, max_length=a.max_length, packing=a.packing)
    block, get_x = (HF_InstructionBlock, ColReader(['prompt', 'response'])) if instruct else (HF_TextBlock, ColReader('text'))
    dl_kwargs = {'batch_order': 'random'} if a.order == 'random' else {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # "documents cut into blocks": wanted here
        dls = DataBlock(blocks=(block(before_batch_tfm=tfm),), get_x=get_x, splitter=ColSplitter()).dataloaders(df, bs=a.bs, **dl_kwargs)
    prep_s = time.perf_counter() - t0   # checking the documents, tokenizing them once to count tokens to sort by
    if instruct: blocks = {v: [tfm.token_parts(pr) for pr in zip(df.prompt[df.is_valid == v], df.response[df.is_valid == v])] for v in (False, True)}
    else: blocks = {v: [b for ids in tfm.document_ids(df.text[df.is_valid == v]) for b in document_blocks(ids, a.max_length)] for v in (False, True)}
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, wd=0.01, loss_func=PlainCrossEntropyLossFlat(),
                         metrics=lm_metrics(), cbs=HF_BaseModelCallback, splitter=hf_splitter)
    learn.hf_logits_at_targets.enabled = not a.all_logits
    probe, tgt = StepProbe(model), [0, 0, 0, 0]
    class CountTargets(Callback):   # blurr's causal rows carry no attention mask: the pad token (never in the text) marks the padding
        def before_batch(self):
            if self.training:
                y = self.yb[0]; tgt[0] += int((y != -100).sum()); tgt[1] += y.shape[0]; tgt[2] += y.numel()
                tgt[3] += int((self.xb[0]['input_ids'] != tok.pad_token_id).sum())
    learn.add_cb(CountTargets())
    cb = fastai_timer(probe)
    set_seed(a.seed)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(a.epochs, lr_max=a.lr, cbs=cb)
    blurr_ppl = learn.recorder.values[-1][2]   # lm_metrics at the last epoch, over blurr's own validation rows
    vloss, n_vt = valid_loss(model, blocks[True], tok.pad_token_id)
    return dict(side='blurr', blurr_valid_loss=float(learn.recorder.values[-1][1]), blurr_log_ppl=math.log(blurr_ppl),
                **common(a, df, w0, probe, tgt, prep_s, cb.train_s, blocks[False], vloss, n_vt, blocks_hash(blocks[True]), blocks_hash(blocks[False])))

def cut_blocks(ids:list, max_length:int) -> list:
    "A document's ids in consecutive blocks of at most `max_length`, each after the first starting with the last token of the one before (written apart from blurr's `document_blocks`; the results are compared)"
    if len(ids) <= max_length: return [ids]
    out, start = [], 0
    while start < len(ids) - 1:
        out.append(ids[start:start + max_length]); start += max_length - 1
    return out

def run_hf(a) -> dict:
    "The `run_clm.py`-style recipe with the `Trainer`, documents cut into blocks instead of concatenated, fastai's optimizer settings and schedule"
    import datasets
    from transformers import (AutoTokenizer, AutoModelForCausalLM, DataCollatorForLanguageModeling, DataCollatorForSeq2Seq, Trainer,
                              TrainingArguments, set_seed)
    from blurr.data.language_modeling import document_blocks
    datasets.disable_progress_bars()
    df = load(a)
    set_seed(a.seed)
    tok, model = AutoTokenizer.from_pretrained(a.model_dir), AutoModelForCausalLM.from_pretrained(a.model_dir)
    tok.padding_side = 'right'   # the tiny tokenizer loads as 'left'; training rows are padded on the right (as blurr's)
    w0 = weights_checksum(model)
    instruct = a.data == 'instruct'
    def to_ds(rows):
        def prep(b):
            ids = tok(b['text'])['input_ids']
            ids = [o + [tok.eos_token_id] if o[-1:] != [tok.eos_token_id] else o for o in ids]
            assert not any(tok.pad_token_id in o for o in ids), 'the pad token occurs in the text: the collator would mask it'
            return {'input_ids': [blk for o in ids for blk in cut_blocks(o, a.max_length)]}
        def prep_pairs(b):   # SFT: the prompt with the tokenizer's special tokens, the response and eos; labels on the response only
            p = tok(b['prompt'])['input_ids']
            r = [o + [tok.eos_token_id] for o in tok(b['response'], add_special_tokens=False)['input_ids']]
            assert all(len(x) + len(y) <= a.max_length for x, y in zip(p, r)), 'a row longer than max_length'
            return {'input_ids': [x + y for x, y in zip(p, r)], 'labels': [[-100] * len(x) + y for x, y in zip(p, r)]}
        ds = datasets.Dataset.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        return ds.map(prep_pairs if instruct else prep, batched=True, remove_columns=ds.column_names)
    cols = ['prompt', 'response'] if instruct else ['text']
    t0 = time.perf_counter()
    train_ds = to_ds(df[~df.is_valid][cols])
    prep_s = time.perf_counter() - t0   # tokenizing (and cutting) the training documents once
    def rows_of(ds):   # token ids, with whether each is trained (a response token) for instruction rows
        d = ds.to_dict()
        return [(i, [l != -100 for l in ls]) for i, ls in zip(d['input_ids'], d['labels'])] if instruct else d['input_ids']
    valid_blocks, train_blocks = rows_of(to_ds(df[df.is_valid][cols])), rows_of(train_ds)
    if not instruct:
        ids = tok(df.text.tolist())['input_ids']   # our blocks against blurr's `document_blocks`, document by document
        assert all(cut_blocks(o + [tok.eos_token_id], a.max_length) == document_blocks(o + [tok.eos_token_id], a.max_length) for o in ids)
    steps = a.epochs * math.ceil(len(train_ds) / a.bs)
    opt = fastai_adamw(model, a.lr)
    sched = FastaiOneCycle(opt, a.lr, steps)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix='bench_lm_'), num_train_epochs=a.epochs,
        per_device_train_batch_size=a.bs, train_sampling_strategy='group_by_length' if a.order == 'length' else 'random',
        dataloader_drop_last=False,   # the training documents are a multiple of bs; blocks beyond that stay in
        dataloader_num_workers=0, dataloader_pin_memory=False, max_grad_norm=0.0, fp16=False, bf16=False,
        eval_strategy='no', save_strategy='no', logging_strategy='no', report_to='none', disable_tqdm=True, seed=a.seed)
    probe, tgt = StepProbe(model), [0, 0, 0, 0]
    def _count(m, args, kw):
        if m.training:
            l = kw['labels']; tgt[0] += int((l[:, 1:] != -100).sum()); tgt[1] += l.shape[0]; tgt[2] += l.numel()
            tgt[3] += int(kw['attention_mask'].sum())
    model.register_forward_pre_hook(_count, with_kwargs=True)
    cb = trainer_timer(probe, opt)
    collator = DataCollatorForSeq2Seq(tok, label_pad_token_id=-100) if instruct else DataCollatorForLanguageModeling(tok, mlm=False)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, processing_class=tok, optimizers=(opt, sched),
                      data_collator=collator, callbacks=[cb])
    set_seed(a.seed)
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)
    vloss, n_vt = valid_loss(model, valid_blocks, tok.pad_token_id)
    return dict(side='hf', **common(a, df, w0, probe, tgt, prep_s, cb.train_s, train_blocks, vloss, n_vt,
                                    blocks_hash(valid_blocks), blocks_hash(train_blocks)))


# ---------------------------------------------------------------------------------------------------------------------
# Parent: build the model, run each side in a fresh subprocess and compare
# ---------------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', choices=['rt', 'aclsum', 'instruct'], default='rt',
                   help="Rotten Tomatoes snippets, ACLSum abstracts (150, its own split), or instruction rows: a snippet as the prompt, its verdict ('fresh'/'rotten') as the response")
    p.add_argument('--n', type=int, default=4000, help='Rotten Tomatoes snippets (a random sample)')
    p.add_argument('--valid-pct', type=float, default=0.2, help='validation share of the Rotten Tomatoes snippets')
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--bs', type=int, default=16, help='documents per batch (blurr) / blocks per batch (Trainer)')
    p.add_argument('--lr', type=float, default=3e-3, help="one-cycle peak learning rate (fastai's lr_max)")
    p.add_argument('--max-length', type=int, default=128, help='longest row in tokens; longer documents are cut into blocks')
    p.add_argument('--size', choices=list(SIZES), default='tiny', help="the tiny Llama's width: " +
                   ', '.join(f"{k} {v['hidden_size']}" for k, v in SIZES.items()))
    p.add_argument('--vocab', type=int, default=1000, help='vocabulary of the tokenizer trained on the training documents')
    p.add_argument('--packing', action='store_true', help="blurr packs short documents into full rows (the Trainer's side does not)")
    add_lm_args(p)
    a = p.parse_args(argv)
    if a.packing and a.data == 'instruct': p.error('--packing: instruction rows are one sample each, not packed')
    if a.quick: a.n, a.epochs = 480, 1
    return a

def run_side(side, a):
    return run_worker(__file__, side, flags(a, 'model_dir', 'data', 'n', 'valid_pct', 'epochs', 'bs', 'lr', 'max_length', 'size',
                                            'vocab', 'order', 'seed', 'threads', 'packing', 'all_logits'))

def tokens_per_s(r) -> float: return r['tokens'] / r['train_s']

def report(res, sides):
    rows = [res[s] for s in sides if res[s] is not None]
    if not rows: return
    print_token_tables(rows, 'next-token targets', 'mean CE per validation target (same code, both sides)',
                       'tokenizing, cutting and padding for blurr, collating for HF')
    if 'blurr' in res and res['blurr'] is not None:
        b = res['blurr']
        print(f"# blurr's own figures at the last epoch: valid loss {b['blurr_valid_loss']:.4f} (mean of batch means), "
              f"log(lm_metrics perplexity) {b['blurr_log_ppl']:.4f} (per token), valid_loss here {b['valid_loss']:.4f}")
    if len(rows) < 2: return
    b, h = res['blurr'], res['hf']
    ratio, dl = tokens_per_s(b) / tokens_per_s(h), (b['valid_loss'] - h['valid_loss']) / h['valid_loss']
    print(f"\nblurr/HF tokens/s: {ratio:.3f} (>1: blurr faster); counting prep_s: {(h['prep_s'] + h['train_s']) / (b['prep_s'] + b['train_s']):.3f}; "
          f"valid loss blurr {b['valid_loss']:.4f} vs HF {h['valid_loss']:.4f} ({100 * dl:+.2f}%)")
    print(f"# goal (at least 1.1x the Trainer's tokens/s, valid loss within 2%): {'met' if ratio >= 1.1 and abs(dl) <= 0.02 else 'not met'} (one seed)")
    print(f"# checks: same initial weights: {b['weights_sum'] == h['weights_sum']}; same training/validation blocks: "
          f"{b['train_hash'] == h['train_hash']}/{b['valid_hash'] == h['valid_hash']}; documents {b['n_train']}/{h['n_train']} train, "
          f"{b['n_valid']}/{h['n_valid']} valid; training blocks {b['n_train_blocks']}/{h['n_train_blocks']}; "
          f"tokens {b['tokens']}/{h['tokens']} ({'same' if b['tokens'] == h['tokens'] else 'DIFFER'}); targets {b['targets']}/{h['targets']} "
          f"({'same' if b['targets'] == h['targets'] else 'DIFFER'}); steps {b['steps']}/{h['steps']}; rows {b['rows']}/{h['rows']}; "
          f"validation targets {b['valid_targets']}/{h['valid_targets']}; threads {b['threads']}/{h['threads']}")
    print_schedule_check(b, h)

def main(argv=None):
    a = parse_args(argv)
    if a.worker: return worker_main(a, run_blurr, run_hf)
    print_stack('bench_lm', a.threads)
    sides = [a.only] if a.only else ['blurr', 'hf']
    s = SIZES[a.size]
    print(f"# job: tiny random Llama ({a.size}: hidden {s['hidden_size']}, ffn {s['intermediate_size']}, {s['num_hidden_layers']} layers, "
          f"vocab {a.vocab}), {'ACLSum abstracts' if a.data == 'aclsum' else 'Rotten Tomatoes: %d snippets, %g validation%s' % (a.n, a.valid_pct, ' (as prompts, verdicts as responses)' * (a.data == 'instruct'))}, "
          f"epochs={a.epochs}, bs={a.bs}, lr_max={a.lr:g}, max_length={a.max_length}, {a.order} order, "
          f"{'blurr packs, ' if a.packing else ''}fastai one-cycle, fused AdamW (beta2 0.99, eps 1e-5, wd 0.01), no grad clipping; "
          f"blurr's logits in training: {'every position' if a.all_logits else 'the target positions only (HF_LogitsAtTargets)'}", flush=True)
    built = {}
    def run_with_model(side, a):
        if a.seed not in built:
            if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
            a.model_dir = built[a.seed] = tempfile.mkdtemp(prefix='bench_lm_model_')
            build_model(a.model_dir, a, a.seed)
        return run_side(side, a)
    try: runs = run_seeds(a, sides, run_with_model, lambda res: report(res, sides))
    finally:
        if a.model_dir: shutil.rmtree(a.model_dir, ignore_errors=True)
    print_loss_summary(runs, tokens_per_s, min_ratio=1.1)
    if any(r is None for _, res in runs for r in res.values()): sys.exit(1)

if __name__ == '__main__':
    main()
