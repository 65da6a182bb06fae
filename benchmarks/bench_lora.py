#!/usr/bin/env python
"""LoRA against full fine-tuning: MiniLM (all-MiniLM-L6-v2) on the embedded Rotten Tomatoes snippets, the same data,
epochs and seeds for both; prints the validation accuracy of each run, the share of parameters training and the time.

    .venv/bin/python benchmarks/bench_lora.py --seeds 42 43 44 --n 2000
"""
from __future__ import annotations
import argparse, contextlib, io, statistics, time, warnings
from blurr.data.all import *
from blurr.modeling.all import *
from blurr.modeling.lora import lora_model
from blurr.embedded import default_model_path, rotten_tomatoes_df
from harness import classification_dls

def run(method:str, seed:int, n:int, epochs:int, lr:float, r:int) -> dict:
    "Validation accuracy, trainable share and seconds of one run: `method` is 'full' (the main job's `fine_tune`) or 'lora'"
    set_seed(seed, reproducible=True)
    hf_arch, _, tok, model = BLURR_MODEL_HELPER.get_hf_objects(default_model_path(), task=HF_TASKS_AUTO.SequenceClassification,
                                                              config_kwargs={'num_labels': 2})
    n_all = sum(p.numel() for p in model.parameters())
    df = rotten_tomatoes_df(n=n, seed=seed)
    dls = classification_dls(df, hf_arch, tok, bs=32)
    if method == 'lora':
        with contextlib.redirect_stdout(io.StringIO()): model = lora_model(model, r=r, alpha=2 * r)
    learn = BlurrLearner(dls, HF_BaseModelWrapper(model), opt_func=TorchAdamW, loss_func=PlainCrossEntropyLossFlat(), metrics=[accuracy],
                         cbs=[HF_BaseModelCallback], splitter=hf_splitter)
    share = sum(p.numel() for p in learn.model.parameters() if p.requires_grad) / n_all
    t0 = time.time()
    with learn.no_bar(), learn.no_logging():
        if method == 'full': learn.fine_tune(epochs - 1, base_lr=lr)       # one epoch of the head, then the rest unfrozen
        else: learn.fit_one_cycle(epochs, lr_max=lr)
        acc = learn.validate()[1]
    return dict(method=method, seed=seed, accuracy=acc, share=share, seconds=time.time() - t0)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 43, 44])
    p.add_argument('--n', type=int, default=2000, help='snippets (80%% for training)')
    p.add_argument('--epochs', type=int, default=2, help='epochs in all, for both methods')
    p.add_argument('--full-lr', type=float, default=1e-3, help="full fine-tuning's base_lr (the main job's)")
    p.add_argument('--lora-lr', type=float, default=2e-3)
    p.add_argument('--r', type=int, default=8)
    a = p.parse_args()
    warnings.filterwarnings('ignore')
    res = []
    for seed in a.seeds:
        for method, lr in (('full', a.full_lr), ('lora', a.lora_lr)):
            res.append(run(method, seed, a.n, a.epochs, lr, a.r))
            o = res[-1]
            print(f"{o['method']:<5} seed {o['seed']}: accuracy {o['accuracy']:.4f}, {o['share']:.2%} training, {o['seconds']:.0f} s", flush=True)
    for method in ('full', 'lora'):
        accs = [o['accuracy'] for o in res if o['method'] == method]
        print(f"{method:<5} mean accuracy {statistics.mean(accs):.4f} over {len(accs)} seed(s)")

if __name__ == '__main__': main()
