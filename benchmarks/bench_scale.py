"""What blurr's DataLoaders cost to build at scale: creation time, time to the first batch, peak memory growth and padding.

The embedded Rotten Tomatoes snippets are repeated to `--rows` rows (20% validation), held as a pandas DataFrame
(`--source df`) or as a memory-mapped `datasets.Dataset` saved to disk and loaded back (`--source ds`), and turned into
blurr's sequence-classification DataLoaders (MiniLM's tokenizer, `--bs`, `--max-length`); `--source learner` gives the
same Dataset to the one-liner `classification_learner` instead (its label pass, split and MiniLM's load are timed too). Each size runs in a fresh
subprocess. Peak memory growth is the high-water mark of the resident set from right before `dataloaders()` to after
the first batch (the kernel's mark is reset there), so building the data itself is left out; with `--source ds` the
Arrow file's own pages are counted in it when read, and the file's size is printed beside it.

Padding share: padded positions / all positions over one epoch of training batches in the order the DataLoader serves
them, measured with each text's true token count (capped at `max_length`); `full sort` is the same figure for batches
of the whole split sorted by token count (the least padding any order gives).

    .venv/bin/python benchmarks/bench_scale.py --rows 10000 100000 1000000 --source ds
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, tempfile, time

from harness import TAG, cur_rss_mb, run_worker, print_rows


def reset_peak_rss():
    "Reset the kernel's high-water mark of this process's resident set (Linux: `clear_refs` 5)"
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')

def hwm_mb() -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    return float('nan')

def repeated_df(rows:int, seed:int=42):
    import numpy as np, pandas as pd
    from blurr.embedded import rotten_tomatoes_df
    base = rotten_tomatoes_df(seed=seed)[['text', 'label']]
    df = base.iloc[np.arange(rows) % len(base)].reset_index(drop=True)
    df['is_valid'] = np.random.default_rng(seed).random(rows) < 0.2
    return df

def pad_share(lengths, order, bs:int) -> float:
    "Padded share of the positions of batches of `bs` consecutive items of `order` (last partial batch dropped)"
    import numpy as np
    n = len(order) // bs * bs
    l = np.asarray(lengths)[np.asarray(order[:n])].reshape(-1, bs)
    return float(1 - l.sum() / (l.max(1) * bs).sum())

def run_blurr(a) -> dict:
    import numpy as np, torch
    from fastai.text.all import DataBlock, CategoryBlock, ColReader, ColSplitter, IndexSplitter, set_seed
    from blurr.utils import BLURR_MODEL_HELPER, HF_TASKS_AUTO
    from blurr.data.core import HF_TextBlock
    from blurr.embedded import default_model_path
    from transformers import AutoTokenizer
    set_seed(a.seed)
    hf_tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    df, tmp, arrow_mb = repeated_df(a.rows, a.seed), None, 0.
    kw = {} if a.cache is None else {'cache_tokens': a.cache == 'on'}
    block = HF_TextBlock(hf_arch='bert', hf_tokenizer=hf_tokenizer, max_length=a.max_length, **kw)
    cat, vocab_s = CategoryBlock(vocab=['fresh', 'rotten']) if a.vocab else CategoryBlock, 0.
    learner = None
    if a.source == 'df':
        source, dblock = df, DataBlock(blocks=(block, cat), get_x=ColReader('text'), get_y=ColReader('label'), splitter=ColSplitter('is_valid'))
    else:
        import datasets
        from blurr.data.core import DatasetReader
        tmp = tempfile.mkdtemp()
        datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(tmp)
        del df
        ds = datasets.load_from_disk(tmp)
        arrow_mb = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp) if f.endswith('.arrow')) / 2**20
        valid = np.flatnonzero(ds.data.column('is_valid').to_numpy())
        source = range(len(ds))
        if a.vocab:   # read from the Arrow column, timed as part of the creation
            t0 = time.perf_counter(); cat = CategoryBlock(vocab=DatasetReader(ds, 'label').column_vocab()); vocab_s = time.perf_counter() - t0
        dblock = DataBlock(blocks=(block, cat), get_x=DatasetReader(ds, 'text'), get_y=DatasetReader(ds, 'label'),
                           splitter=IndexSplitter(valid))
        if a.source == 'learner':   # the one-liner on the Dataset: its label pass, split and model load are timed too
            from blurr.learner import classification_learner
            learner = lambda: classification_learner(ds, default_model_path(), bs=a.bs, max_length=a.max_length, valid='is_valid', **({'tfm_kwargs': kw} if kw else {}))
    import gc; gc.collect()
    rss0 = cur_rss_mb(); reset_peak_rss()
    t0 = time.perf_counter()
    if learner is not None: dls = learner().dls
    else: dls = dblock.dataloaders(source, bs=a.bs, **({} if a.sort_chunk is None else {'sort_chunk': a.sort_chunk}))
    create_s = time.perf_counter() - t0 + vocab_s
    t0 = time.perf_counter(); b = next(iter(dls.train)); first_s = time.perf_counter() - t0
    peak = hwm_mb(); rss1 = cur_rss_mb()
    it, n_b = iter(dls.train), min(a.batches, len(dls.train) - 1)   # the per-batch cost of the data pipeline alone (untimed above)
    t0 = time.perf_counter()
    for _ in range(n_b): next(it)
    batch_ms = 1000 * (time.perf_counter() - t0) / max(n_b, 1)
    # padding of one epoch's order, judged with every training text's true token count (untimed)
    dl = dls.train
    texts = [dl.dataset[i][0] for i in range(len(dl.dataset))] if a.rows <= 200_000 or a.source == 'df' else None
    if texts is None: texts = dl.dataset.tls[0].tfms.fs[0].values(dl.dataset.tls[0].items)
    true = np.concatenate([[min(len(o), a.max_length) for o in hf_tokenizer(texts[i:i + 10000], truncation=False, verbose=False)['input_ids']]
                           for i in range(0, len(texts), 10000)])
    order = list(dl.get_idxs())
    res = dict(rows=a.rows, source=a.source, bs=a.bs, max_length=a.max_length, create_s=create_s, first_batch_s=first_s, batch_ms=batch_ms,
               rss_before_mb=rss0, peak_growth_mb=peak - rss0, rss_after_mb=rss1, arrow_mb=arrow_mb,
               pad_share=pad_share(true, order, a.bs), pad_full_sort=pad_share(true, np.argsort(true, kind='stable'), a.bs),
               first_batch_shape=list(b[0]['input_ids'].shape), cache_mb=getattr(getattr(dl, 'token_cache', None), 'nbytes', 0) / 2**20,
               threads=torch.get_num_threads(), load=os.getloadavg()[0])
    if tmp: shutil.rmtree(tmp, ignore_errors=True)
    return res

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, nargs='+', default=[10_000, 100_000])
    p.add_argument('--source', choices=['df', 'ds', 'learner'], default='df', help="a DataFrame or a saved `datasets.Dataset` through a DataBlock, or the Dataset through `classification_learner` (model load included)")
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--max-length', type=int, default=128)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--cache', choices=['on', 'off'], default=None, help="blurr's token cache (default: blurr's default)")
    p.add_argument('--batches', type=int, default=100, help='training batches timed after the first (ms a batch)')
    p.add_argument('--sort-chunk', type=int, default=None, help="HF_SortedDL's sort_chunk: batches per length-sorted chunk (default: blurr's, 50)")
    p.add_argument('--vocab', action='store_true', help="give CategoryBlock its vocabulary (no pass over the labels): the Arrow column's `DatasetReader.column_vocab()` for --source ds")
    p.add_argument('--worker', choices=['blurr'], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        a.rows = a.rows[0]
        print(TAG + json.dumps(run_blurr(a)), flush=True); return
    rows = []
    for n in a.rows:
        args = ['--rows', n, '--source', a.source, '--bs', a.bs, '--max-length', a.max_length, '--seed', a.seed, '--batches', a.batches] + \
               (['--cache', a.cache] if a.cache else []) + (['--vocab'] if a.vocab else []) + ([] if a.sort_chunk is None else ['--sort-chunk', a.sort_chunk])
        r = run_worker(__file__, 'blurr', args)
        if r is None: continue
        print(json.dumps(r)); rows.append(r)
    pct = lambda k: lambda r: 100 * r[k]
    print_rows([('rows', 'd', lambda r: r['rows']), ('source', 's', lambda r: r['source']), ('create_s', '.1f', lambda r: r['create_s']),
                ('first_batch_s', '.2f', lambda r: r['first_batch_s']), ('batch_ms', '.2f', lambda r: r['batch_ms']), ('peak_growth_MB', '.0f', lambda r: r['peak_growth_mb']),
                ('arrow_MB', '.0f', lambda r: r['arrow_mb']), ('cache_MB', '.1f', lambda r: r['cache_mb']),
                ('pad_%', '.1f', pct('pad_share')), ('full_sort_pad_%', '.1f', pct('pad_full_sort')), ('load', '.1f', lambda r: r['load'])], rows)

if __name__ == '__main__': main()
