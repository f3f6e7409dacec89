# ctctool: the README's two commands are `make demo` and `make test`; both set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
# Installed before ctctool so pip never resolves a bare `torch` to a multi-GB CUDA build.
# Elsewhere choose your own build, e.g. make install TORCH_SPEC='torch==2.13.0+cu128'.
TORCH_SPEC ?= torch==2.13.0
PIP_FLAGS ?= -q
BIN := $(VENV)/bin
STAMP := $(VENV)/.ctctool-installed
DEMO_DIR ?= demo-out
# The demo's two fine-tuning runs stop at their step count or their time budget, whichever
# comes first (--max-time), so that `make demo` stays under 10 minutes on a slow machine.
DEMO_FINETUNE_STEPS ?= 300
DEMO_FINETUNE_TIME ?= 3m
DEMO_SPEECH_STEPS ?= 150
DEMO_SPEECH_TIME ?= 1m
BENCH_DIR ?= bench-out

.PHONY: install demo test test-slow lint bench bench-word-lm models-onnx bench-recipe bench-models bench-finetune bench-digits clean data-ocr \
	data-ocr-unseen data-speech data-speech-engines data-speech-model data-latin-print-corpus model-latin-print \
	model-en-digits

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml setup.py $(wildcard ctctool/decoding/*.pyx)
	$(BIN)/python -m pip install $(PIP_FLAGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	@mkdir -p $(DEMO_DIR)
	@echo "== the models that ship with ctctool: usable before any training" >&2
	$(BIN)/ctctool models
	@echo "== latin-print reads the bundled test lines (paths on stdin), then scores them" >&2
	ls data/ocr/lines/test-0000[0-4].png | $(BIN)/ctctool decode latin-print - --format tsv
	$(BIN)/ctctool eval latin-print data/ocr/test.jsonl --worst 3 --confusions 5
	@echo "== latin-print aligns transcripts to the image: word spans in pixels" >&2
	$(BIN)/ctctool align latin-print data/ocr/test.jsonl --format tsv > $(DEMO_DIR)/latin-print-align.tsv
	grep -m 6 -P '^test-00000\tword' $(DEMO_DIR)/latin-print-align.tsv
	@echo "== the bundled OCR lines: 2,400 training lines in 8 fonts" >&2
	$(BIN)/ctctool manifest stats data/ocr/train.jsonl | head -3
	@echo "== fine-tune latin-print on them, centre-normalizing the lines ($(DEMO_FINETUNE_STEPS) steps or $(DEMO_FINETUNE_TIME), whichever comes first)" >&2
	$(BIN)/ctctool train data/ocr/train.jsonl --val data/ocr/val.jsonl -o $(DEMO_DIR)/ocr.pt \
		--run-dir $(DEMO_DIR)/ocr-run --init latin-print --alphabet union --center-normalize --max-steps $(DEMO_FINETUNE_STEPS) \
		--eval-every $(DEMO_FINETUNE_STEPS) --max-time $(DEMO_FINETUNE_TIME)
	@echo "== evaluate on the held-out test lines (fonts seen in fine-tuning, text not)" >&2
	$(BIN)/ctctool eval $(DEMO_DIR)/ocr.pt data/ocr/test.jsonl --worst 5 --confusions 5
	@echo "== the same text in 20 faces the fine-tuning never saw (15 of them in latin-print's training)" >&2
	$(BIN)/ctctool eval $(DEMO_DIR)/ocr.pt data/ocr/test-unseen-fonts.jsonl --worst 3 --confusions 5
	@echo "== align transcripts with the fine-tuned model; pictures in $(DEMO_DIR)/align-png" >&2
	$(BIN)/ctctool align $(DEMO_DIR)/ocr.pt data/ocr/test.jsonl --format tsv --png $(DEMO_DIR)/align-png \
		> $(DEMO_DIR)/test-align.tsv
	grep -m 8 -P '^test-00000\tword' $(DEMO_DIR)/test-align.tsv
	@echo "== en-digits, the bundled speech model, reads espeak-ng voices it never heard" >&2
	ls data/speech/clips/test-heldout-0000[0-4].flac | $(BIN)/ctctool decode en-digits - --format tsv
	$(BIN)/ctctool eval en-digits data/speech/test-heldout.jsonl --worst 3 --confusions 3
	@echo "== en-digits aligns: word times in seconds (CTM), TextGrids, spectrogram pictures" >&2
	$(BIN)/ctctool align en-digits data/speech/test-heldout.jsonl --format ctm \
		--png $(DEMO_DIR)/speech-png > $(DEMO_DIR)/heldout.ctm
	head -n 6 $(DEMO_DIR)/heldout.ctm
	$(BIN)/ctctool align en-digits data/speech/val.jsonl --format textgrid \
		--out-dir $(DEMO_DIR)/textgrid | head -n 2
	@echo "== fine-tune en-digits on the bundled espeak-ng clips ($(DEMO_SPEECH_STEPS) steps or $(DEMO_SPEECH_TIME))" >&2
	$(BIN)/ctctool train data/speech/train.jsonl --val data/speech/val.jsonl -o $(DEMO_DIR)/speech.pt \
		--run-dir $(DEMO_DIR)/speech-run --init en-digits --alphabet union --max-steps $(DEMO_SPEECH_STEPS) \
		--eval-every $(DEMO_SPEECH_STEPS) --max-time $(DEMO_SPEECH_TIME)
	@echo "== the fine-tuned model: validation voices, voices never heard, other engines (five of their six voices in en-digits' training, other utterances)" >&2
	$(BIN)/ctctool eval $(DEMO_DIR)/speech.pt data/speech/val.jsonl --worst 3 --confusions 3
	$(BIN)/ctctool eval $(DEMO_DIR)/speech.pt data/speech/test-heldout.jsonl --worst 3 --confusions 3
	$(BIN)/ctctool eval $(DEMO_DIR)/speech.pt data/speech/test-engines.jsonl --worst 3 --confusions 3

# The tests also check ctctool's ARPA files against KenLM's reader (the kenlm module compiles
# from source: about 2 minutes, once; make demo does not need it).
TEST_STAMP := $(VENV)/.ctctool-test-extras
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -e ".[dev,kenlm]"
	@touch $(TEST_STAMP)

test: install $(TEST_STAMP)
	$(BIN)/python -m pytest -q

test-slow: install $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check ctctool tests data

# Peers live in their own environment (pyctcdecode pins an older numpy); ctctool is used from
# this checkout, whose compiled extension `make install` built in place.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) "pyctcdecode==0.5.0" fast-ctc-decode flashlight-text kenlm
	@touch $@

# make bench: decoders vs peers, torch threads quiet and beside a busy process, onnxruntime vs
# PyTorch, decode throughput vs tesseract, the training step split, the conv layout, today's training step against
# issue 8's `before` and with and without prepared lines kept (STEP_COST_ARGS='--handwriting
# bench-out/recipe/handwriting' adds that set to both once make bench-recipe has rendered it), word LM vs pyctcdecode and the load time of a large ARPA file
# (the tesseract row needs apt-get install tesseract-ocr tesseract-ocr-eng;
# THROUGHPUT_ARGS='--memory-paths 100000' adds the stdin memory check).
THROUGHPUT_ARGS ?= --threads 1
STEP_COST_ARGS ?=
bench: install $(TEST_STAMP) $(BENCH_VENV)/.installed
	PYTHONPATH=$(CURDIR) $(BENCH_VENV)/bin/python tests/bench/run_bench.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/threads.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/runtime_onnx.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/throughput.py --out $(BENCH_DIR) $(THROUGHPUT_ARGS)
	$(BIN)/python tests/bench/step_split.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/step_cost.py --out $(BENCH_DIR) $(STEP_COST_ARGS)
	$(BIN)/python tests/bench/cache_cost.py --out $(BENCH_DIR) $(STEP_COST_ARGS)
	$(BIN)/python tests/bench/line_prep_cost.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/lstm_cost.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/layout_cost.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/word_lm.py --out $(BENCH_DIR) --peer-python $(BENCH_VENV)/bin/python
	$(BIN)/python tests/bench/arpa_load.py --out $(BENCH_DIR)
	$(BIN)/python tests/bench/kenlm_binary.py --out $(BENCH_DIR)

# Word LM in the beam search vs pyctcdecode 0.5.0 + kenlm on the bundled models' posteriors
# (part of make bench; about 15 minutes on 2 cores). Table: $(BENCH_DIR)/word_lm/word_lm.md
bench-word-lm: install $(BENCH_VENV)/.installed
	$(BIN)/python tests/bench/word_lm.py --out $(BENCH_DIR) --peer-python $(BENCH_VENV)/bin/python

# Ablation of the training recipe on unseen fonts, unseen hands and voices (the handwriting set
# needs the fonts listed in tests/bench/handwriting_set.py): 54 runs, about 9 hours on a quiet
# 2-core machine with the defaults (two at a time, each about 7 min OCR, 6 min speech, 17 min
# handwriting); RECIPE_ARGS='--seeds 1 --variants "before;default"' for a 30-minute look. After an
# interruption, the same RECIPE_ARGS plus --resume skip the finished runs. Table: $(BENCH_DIR)/recipe/recipe.md
RECIPE_ARGS ?= --jobs 2 --threads 1 --seeds 3 --ablation-seeds 1 \
	--variants 'before;default;-ema;augment none;augment strong;-elastic,-wave;no augmentation warm-up;-vtlp;-reverb;-label smoothing;cosine schedule;cosine, no label smoothing;cut at 6m;cut at 6m, -ema;cut at 5m;cut at 5m, -ema;-dropout;dropout 0.4;-weight decay'
bench-recipe: install
	$(BIN)/python tests/bench/recipe.py --out $(BENCH_DIR)/recipe $(RECIPE_ARGS)

# The bundled latin-print model against tesseract 5 on held-out fonts and text, at 4 degradation
# levels (needs: apt-get install tesseract-ocr tesseract-ocr-eng, and the held-out sets that
# `make model-latin-print` renders). Table: $(BENCH_DIR)/models/models.md
bench-models: install
	$(BIN)/python tests/bench/models.py --sets $(LATIN_DIR) --out $(BENCH_DIR)/models

# Fine-tuning latin-print vs training from scratch on 200 lines of an unseen style
# (needs: apt-get install fonts-yanone-kaffeesatz). Table: $(BENCH_DIR)/finetune/finetune.md
bench-finetune: install
	$(BIN)/python tests/bench/finetune.py --out $(BENCH_DIR)/finetune

# A speech model (default: en-digits, once `make model-en-digits` has built it) against PocketSphinx 5
# with a JSGF digit grammar on held-out voices, clean, noisy and telephone-band. PocketSphinx
# lives in its own environment. Table: $(BENCH_DIR)/digits/digits.md
DIGITS_ARGS ?=
.venv-digits/.installed:
	$(PYTHON) -m venv .venv-digits
	.venv-digits/bin/python -m pip install $(PIP_FLAGS) pocketsphinx soundfile numpy
	@touch $@
bench-digits: install .venv-digits/.installed
	$(BIN)/python tests/bench/digits.py --peer-python .venv-digits/bin/python --out $(BENCH_DIR)/digits $(DIGITS_ARGS)

# The text latin-print is trained and tested on (committed; rebuilt from CPython's stdlib docstrings).
data-latin-print-corpus: install
	$(BIN)/python data/latin-print/make_corpus.py

# Rebuild the bundled latin-print model and its card (ctctool/models/latin-print.{pt,json}).
# Needs the font packages listed in data/latin-print/recipe.py. About 10 minutes of rendering and
# 82-97 minutes of training on 2 CPU cores; LATIN_ARGS='--device cuda' on a GPU.
LATIN_DIR ?= runs/latin-print
LATIN_ARGS ?= --steps 6000 --seed 1
model-latin-print: install
	$(BIN)/python data/latin-print/recipe.py build --out $(LATIN_DIR) $(LATIN_ARGS)
	$(MAKE) models-onnx

# Build the en-digits speech model and its card (ctctool/models/en-digits.{pt,json}): 12,000 clips
# from espeak-ng, flite and festival voices (needs: apt-get install espeak-ng flite festival
# festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts), then 8,000 steps. Not yet run to the
# end on CPU; EN_DIGITS_ARGS='--device cuda' on a GPU.
EN_DIGITS_ARGS ?= --steps 8000 --seed 1
model-en-digits: install
	$(BIN)/python data/en-digits/recipe.py --out runs/en-digits $(EN_DIGITS_ARGS)
	$(MAKE) models-onnx

# The bundled models' ONNX exports (ctctool/models/NAME.onnx), which decode, eval and align run
# by default on the CPU; each records its .pt file's SHA-256 and is ignored once that changes.
models-onnx: install
	$(BIN)/python -m pip install $(PIP_FLAGS) "onnx>=1.15"
	for name in latin-print en-digits; do \
		$(BIN)/ctctool export $$name -o ctctool/models/$$name.onnx || exit 1; done

# Rebuild the bundled OCR lines (needs: apt-get install fonts-dejavu-core fonts-liberation fonts-freefont-ttf).
data-ocr: install
	$(BIN)/python data/ocr/make_ocr_lines.py

# Rebuild the unseen-fonts OCR test set (needs the font packages listed in data/ocr/make_unseen_fonts.py).
data-ocr-unseen: install
	$(BIN)/python data/ocr/make_unseen_fonts.py

# Rebuild the other-engines speech test set (needs: apt-get install flite festival festvox-kallpc16k).
data-speech-engines: install
	$(BIN)/python data/speech/make_other_engines.py

# Rebuild the bundled speech clips (needs: apt-get install espeak-ng).
data-speech: install
	$(BIN)/python data/speech/make_speech_clips.py

# Retrain the small bundled speech model the tests align with (about 10 minutes on 2 cores).
data-speech-model: install
	$(BIN)/ctctool train data/speech/train.jsonl --val data/speech/val.jsonl -o data/speech/digits-small.pt \
		--run-dir runs/digits-small --epochs 30 --hidden 96 --channels 16,32,64,64 --stride 4 --seed 1 \
		--device cpu --quiet

clean:
	rm -rf $(VENV) $(BENCH_VENV) .venv-digits build dist *.egg-info $(DEMO_DIR) $(BENCH_DIR) runs .pytest_cache .ruff_cache .hypothesis
	find ctctool -name '*.so' -delete -o -name '__pycache__' -prune -exec rm -rf {} +
