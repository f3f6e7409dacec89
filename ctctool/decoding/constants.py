"""Decoder defaults in one place (pyctcdecode's habit)."""

import math

DEFAULT_BEAM_WIDTH = 16
DEFAULT_NBEST = 1
# The widest beam (and the most alternatives) a search takes. Its work arrays hold beam x
# alphabet candidates per thread (about 84 bytes each): 4096 x 5,000 symbols is 1.7 GB, and a
# beam of 10^8 asked for terabytes. Peers' widest settings are in the hundreds to low thousands.
MAX_BEAM_WIDTH = 4096
# Per-frame pruning: symbols whose probability at a frame is below 1e-3 do not extend prefixes
# at that frame (blank and repeats always count). Measured with `make bench` (T=500, V=100,
# beam 32): top-1 identical to the unpruned search on 100/100 peaky and 100/100 hard
# utterances, 4.6x faster than unpruned on peaky input. -inf turns pruning off.
DEFAULT_PRUNE_LOG_PROB = math.log(1e-3)  # about -6.9
# Beam pruning: prefixes whose score is more than this many nats below the frame's best are
# dropped, however wide the beam (pyctcdecode's beam_prune_logp, flashlight's beamThreshold).
# inf = off (the search is then exact with a wide enough beam and no per-frame cut).
DEFAULT_BEAM_PRUNE = math.inf
DEFAULT_TOP_K = 0  # 0 = no cap on symbols per frame beyond the threshold
DEFAULT_LM_ALPHA = 0.5  # weight of the character LM's log-probability
DEFAULT_LM_BETA = 0.0  # bonus per emitted character (counters the LM's preference for short output)
DEFAULT_HOTWORD_BOOST = 2.0  # log-score bonus per matched character of a hotword
DEFAULT_LM_ORDER = 6  # characters of context + 1
# Word LM: natural-log score while a spelled word starts no vocabulary word, kept as the cost of a
# word outside the vocabulary. Tuned on the validation half of `tests/bench/word_lm.py`'s OCR set
# (-1, -3, -6, -10 tried with alpha and beta).
DEFAULT_UNK_OFFSET = -3.0
