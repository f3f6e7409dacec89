"""Decoder defaults in one place (pyctcdecode's habit)."""

DEFAULT_BEAM_WIDTH = 16
DEFAULT_NBEST = 1
# Per-frame pruning: symbols whose log-probability at a frame is below this are not used to
# extend prefixes at that frame (blank and repeats always are). log(1e-4) ~ -9.2; measured in
# `make bench`: top-1 agreement with the unpruned search stays >= 99% at this cut.
DEFAULT_PRUNE_LOG_PROB = -9.2
DEFAULT_TOP_K = 0  # 0 = no cap on symbols per frame beyond the threshold
DEFAULT_LM_ALPHA = 0.5  # weight of the character LM's log-probability
DEFAULT_LM_BETA = 0.0  # bonus per emitted character (counters the LM's preference for short output)
DEFAULT_HOTWORD_BOOST = 2.0  # log-score bonus per matched character of a hotword
DEFAULT_LM_ORDER = 6  # characters of context + 1
