# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled CTC prefix beam search. The readable reference is ``beam_py.py``: this file does
the same operations in the same order (so scores are bit-identical), with C arrays instead
of lists and dicts, and without the GIL so a batch decodes on several threads."""

from libc.math cimport exp, log1p, INFINITY
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memset

cdef double NEG_INF = -INFINITY
cdef uint64_t HASH_MULTIPLIER = 0x9E3779B97F4A7C15ULL


# Below this difference (nats) exp(d) < 2^-57, where log1p(x) rounds to x itself: the sum skips
# the log1p call and stays bit-identical to the twin's ``a + log1p(exp(b - a))``.
cdef double LOG1P_IDENTITY = -40.0


cdef inline double log_add(double a, double b) noexcept nogil:
    cdef double d
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a < b:
        d = a; a = b; b = d
    d = b - a
    if d < LOG1P_IDENTITY:
        return a + exp(d)
    return a + log1p(exp(d))


# ------------------------------------------------------------------ read-only scorer tables

cdef struct Table:
    const int64_t* keys
    const int32_t* next
    const double* value
    int bits
    int64_t nsym


cdef inline bint table_get(const Table* t, int64_t state, int64_t symbol, int32_t* next, double* value) noexcept nogil:
    cdef int64_t key = state * t.nsym + symbol
    cdef uint64_t mask = ((<uint64_t>1) << t.bits) - 1
    cdef uint64_t slot = (<uint64_t>key * HASH_MULTIPLIER) >> (64 - t.bits)
    cdef int64_t k
    while True:
        k = t.keys[slot]
        if k == key:
            next[0] = t.next[slot]
            value[0] = t.value[slot]
            return True
        if k == -1:
            return False
        slot = (slot + 1) & mask


cdef struct Scoring:
    bint active
    bint has_lm
    bint has_lex
    bint has_hot
    Table lm
    const double* lm_bw
    const int32_t* lm_bs
    const int32_t* lm_sym
    int32_t lm_start
    double alpha
    double beta
    Table lex
    const uint8_t* lex_end
    Table hot
    const uint8_t* hot_end
    int32_t space
    bint has_wlm
    Table wlm          # (context, word) -> (next context, ln p)
    const double* wlm_bw
    const int32_t* wlm_bs
    int32_t wlm_start
    double w_alpha
    double w_beta
    double unk_offset
    Table prefix       # (vocabulary-trie node, label) -> (child, best unigram ln p below it)
    const int32_t* prefix_word


cdef inline double backoff_step(const Table* t, const double* weights, const int32_t* shorter, int32_t state,
                                int32_t symbol, int32_t* next) noexcept nogil:
    """log P(symbol | state) of an n-gram table, backing off to shorter contexts (the root
    scores every symbol, so the walk ends); the next state in ``next``."""
    cdef double acc = 0.0
    cdef double value
    cdef int32_t target
    while True:
        if table_get(t, state, symbol, &target, &value):
            next[0] = target
            return acc + value
        acc += weights[state]
        state = shorter[state]


cdef inline double lm_step(const Scoring* s, int32_t state, int32_t symbol, int32_t* next) noexcept nogil:
    return backoff_step(&s.lm, s.lm_bw, s.lm_bs, state, symbol, next)


cdef int32_t EOS_WORD = 0
cdef int32_t UNK_WORD = 1


cdef inline double wlm_step(const Scoring* s, int32_t state, int32_t word, int32_t* next) noexcept nogil:
    return backoff_step(&s.wlm, s.wlm_bw, s.wlm_bs, state, word, next)


cdef inline double word_end(const Scoring* s, int32_t* state, int32_t node, double ahead) noexcept nogil:
    """Score of the word spelled up to vocabulary-trie ``node`` (-1: no vocabulary word starts
    so), its lookahead taken back; advances the context ``state``. A word outside the
    vocabulary is <unk> and keeps the unk offset as a cost."""
    cdef int32_t word = s.prefix_word[node] if node > 0 else -1
    cdef double logp
    if word >= 0:
        logp = wlm_step(s, state[0], word, state)
        return s.w_alpha * logp + s.w_beta - ahead
    logp = wlm_step(s, state[0], UNK_WORD, state)
    return s.w_alpha * logp + s.w_beta + s.unk_offset - ahead


# ------------------------------------------------------------------ the prefix trie

cdef struct Trie:
    int64_t size
    int64_t capacity
    int32_t* parent
    int32_t* label
    double* extra
    int32_t* lm
    int32_t* lex
    int32_t* hot
    double* hot_acc
    int32_t* wctx   # word-LM context state
    int32_t* wnode  # vocabulary-trie node of the partial word (0: none, -1: starts no word)
    double* wahead  # the partial word's lookahead, in the score
    int32_t* stamp  # frame at which the node was last in the beam (+1), 0 = never
    int32_t* slot   # its index in that beam
    # children: open addressing over key = parent * num_labels + label
    int64_t* child_keys
    int32_t* child_nodes
    int child_bits
    int64_t child_count
    int64_t num_labels


cdef bint trie_init(Trie* t, int64_t num_labels, int64_t capacity) noexcept nogil:
    t.size = 0
    t.capacity = capacity
    t.num_labels = num_labels
    t.parent = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.label = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.extra = <double*>malloc(capacity * sizeof(double))
    t.lm = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.lex = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.hot = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.hot_acc = <double*>malloc(capacity * sizeof(double))
    t.wctx = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.wnode = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.wahead = <double*>malloc(capacity * sizeof(double))
    t.stamp = <int32_t*>calloc(capacity, sizeof(int32_t))
    t.slot = <int32_t*>malloc(capacity * sizeof(int32_t))
    t.child_bits = 10
    t.child_count = 0
    t.child_keys = <int64_t*>malloc((<int64_t>1 << t.child_bits) * sizeof(int64_t))
    t.child_nodes = <int32_t*>malloc((<int64_t>1 << t.child_bits) * sizeof(int32_t))
    if (t.parent == NULL or t.label == NULL or t.extra == NULL or t.lm == NULL or t.lex == NULL or t.hot == NULL
            or t.hot_acc == NULL or t.wctx == NULL or t.wnode == NULL or t.wahead == NULL or t.stamp == NULL or t.slot == NULL or t.child_keys == NULL or t.child_nodes == NULL):
        return False
    memset(t.child_keys, 0xFF, (<int64_t>1 << t.child_bits) * sizeof(int64_t))
    return True


cdef void trie_free(Trie* t) noexcept nogil:
    free(t.parent); free(t.label); free(t.extra); free(t.lm); free(t.lex); free(t.hot); free(t.hot_acc)
    free(t.wctx); free(t.wnode); free(t.wahead)
    free(t.stamp); free(t.slot); free(t.child_keys); free(t.child_nodes)


cdef inline int32_t trie_find(const Trie* t, int32_t node, int32_t label) noexcept nogil:
    cdef int64_t key = <int64_t>node * t.num_labels + label
    cdef uint64_t mask = ((<uint64_t>1) << t.child_bits) - 1
    cdef uint64_t slot = (<uint64_t>key * HASH_MULTIPLIER) >> (64 - t.child_bits)
    cdef int64_t k
    while True:
        k = t.child_keys[slot]
        if k == key:
            return t.child_nodes[slot]
        if k == -1:
            return -1
        slot = (slot + 1) & mask


cdef inline void child_insert(int64_t* keys, int32_t* nodes, int bits, int64_t key, int32_t node) noexcept nogil:
    cdef uint64_t mask = ((<uint64_t>1) << bits) - 1
    cdef uint64_t slot = (<uint64_t>key * HASH_MULTIPLIER) >> (64 - bits)
    while keys[slot] != -1:
        slot = (slot + 1) & mask
    keys[slot] = key
    nodes[slot] = node


cdef bint grow_children(Trie* t) noexcept nogil:
    cdef int bits = t.child_bits + 1
    cdef int64_t size = (<int64_t>1) << bits
    cdef int64_t old_size = (<int64_t>1) << t.child_bits
    cdef int64_t* keys = <int64_t*>malloc(size * sizeof(int64_t))
    cdef int32_t* nodes = <int32_t*>malloc(size * sizeof(int32_t))
    cdef int64_t i
    if keys == NULL or nodes == NULL:
        free(keys); free(nodes)
        return False
    memset(keys, 0xFF, size * sizeof(int64_t))
    for i in range(old_size):
        if t.child_keys[i] != -1:
            child_insert(keys, nodes, bits, t.child_keys[i], t.child_nodes[i])
    free(t.child_keys); free(t.child_nodes)
    t.child_keys, t.child_nodes, t.child_bits = keys, nodes, bits
    return True


cdef inline bint grow(void** array, int64_t count, size_t item) noexcept nogil:
    cdef void* p = realloc(array[0], count * item)
    if p == NULL:
        return False
    array[0] = p
    return True


cdef bint grow_nodes(Trie* t) noexcept nogil:
    cdef int64_t cap = t.capacity * 2
    if not (grow(<void**>&t.parent, cap, sizeof(int32_t)) and grow(<void**>&t.label, cap, sizeof(int32_t))
            and grow(<void**>&t.extra, cap, sizeof(double)) and grow(<void**>&t.lm, cap, sizeof(int32_t))
            and grow(<void**>&t.lex, cap, sizeof(int32_t)) and grow(<void**>&t.hot, cap, sizeof(int32_t))
            and grow(<void**>&t.hot_acc, cap, sizeof(double)) and grow(<void**>&t.stamp, cap, sizeof(int32_t))
            and grow(<void**>&t.wctx, cap, sizeof(int32_t)) and grow(<void**>&t.wnode, cap, sizeof(int32_t))
            and grow(<void**>&t.wahead, cap, sizeof(double))
            and grow(<void**>&t.slot, cap, sizeof(int32_t))):
        return False
    memset(t.stamp + t.capacity, 0, (cap - t.capacity) * sizeof(int32_t))
    t.capacity = cap
    return True


cdef int32_t trie_add(Trie* t, int32_t parent, int32_t label, double extra, int32_t lm, int32_t lex, int32_t hot,
                      double hot_acc, int32_t wctx, int32_t wnode, double wahead) noexcept nogil:
    """Append a node; -1 when out of memory."""
    if t.size == t.capacity and not grow_nodes(t):
        return -1
    if (t.child_count + 1) * 2 > ((<int64_t>1) << t.child_bits) and not grow_children(t):
        return -1
    cdef int32_t node = <int32_t>t.size
    t.parent[node] = parent
    t.label[node] = label
    t.extra[node] = extra
    t.lm[node] = lm
    t.lex[node] = lex
    t.hot[node] = hot
    t.hot_acc[node] = hot_acc
    t.wctx[node] = wctx
    t.wnode[node] = wnode
    t.wahead[node] = wahead
    t.stamp[node] = 0
    t.size += 1
    if parent >= 0:
        child_insert(t.child_keys, t.child_nodes, t.child_bits, <int64_t>parent * t.num_labels + label, node)
        t.child_count += 1
    return node


# ------------------------------------------------------------------ scoring an extension

cdef inline bint extend(const Scoring* s, const Trie* t, int32_t node, int32_t label, double* delta_out,
                        int32_t* lm_out, int32_t* lex_out, int32_t* hot_out, double* acc_out, int32_t* wctx_out,
                        int32_t* wnode_out, double* wahead_out) noexcept nogil:
    """Scorer delta and states for prefix(node) + label; False when the extension is forbidden."""
    cdef double delta = 0.0
    cdef double logp, value
    cdef int32_t lm_state = t.lm[node]
    cdef int32_t lex_node = t.lex[node]
    cdef int32_t hot_node = t.hot[node]
    cdef double hot_acc = t.hot_acc[node]
    cdef int32_t wctx = t.wctx[node]
    cdef int32_t wnode = t.wnode[node]
    cdef double wahead = t.wahead[node]
    cdef double now
    cdef int32_t target
    if s.has_lm:
        logp = lm_step(s, lm_state, s.lm_sym[label], &lm_state)
        delta = delta + s.alpha * logp
    delta = delta + s.beta
    if s.has_lex:
        if label == s.space:
            if not (lex_node == 0 or s.lex_end[lex_node]):
                return False
            lex_node = 0
        else:
            if not table_get(&s.lex, lex_node, label, &target, &value):
                return False
            lex_node = target
    if s.has_hot:
        if label == s.space and hot_node >= 0 and table_get(&s.hot, hot_node, label, &target, &value):
            # A phrase hotword goes on across the space; a hotword completed here is kept
            # (its bonus is no longer withdrawn) even if the longer phrase is not.
            if s.hot_end[hot_node]:
                hot_acc = 0.0
            hot_node = target
            delta = delta + value
            hot_acc = hot_acc + value
        elif label == s.space:
            if not (hot_node >= 0 and s.hot_end[hot_node]):
                delta = delta - hot_acc
            hot_node = 0
            hot_acc = 0.0
        elif hot_node >= 0:
            if table_get(&s.hot, hot_node, label, &target, &value):
                hot_node = target
                delta = delta + value
                hot_acc = hot_acc + value
            else:
                delta = delta - hot_acc
                hot_node = -1
                hot_acc = 0.0
    if s.has_wlm:
        if label == s.space:
            if wnode != 0:  # a word ends here (repeated spaces end none)
                delta = delta + word_end(s, &wctx, wnode, wahead)
                wnode = 0
                wahead = 0.0
        else:
            if wnode >= 0 and table_get(&s.prefix, wnode, label, &target, &value):
                wnode = target
                now = s.w_alpha * value
            else:
                wnode = -1
                now = s.unk_offset
            delta = delta + (now - wahead)
            wahead = now
    delta_out[0] = delta
    lm_out[0] = lm_state
    lex_out[0] = lex_node
    hot_out[0] = hot_node
    acc_out[0] = hot_acc
    wctx_out[0] = wctx
    wnode_out[0] = wnode
    wahead_out[0] = wahead
    return True


cdef inline double final_score(const Scoring* s, const Trie* t, int32_t node) noexcept nogil:
    cdef double fin = 0.0
    cdef int32_t ignored
    if s.has_lm:
        fin = fin + s.alpha * lm_step(s, t.lm[node], 0, &ignored)
    if s.has_lex and not (t.lex[node] == 0 or s.lex_end[t.lex[node]]):
        return NEG_INF
    if s.has_hot and not (t.hot[node] >= 0 and s.hot_end[t.hot[node]]):
        fin = fin - t.hot_acc[node]
    cdef int32_t wctx = t.wctx[node]
    if s.has_wlm:
        if t.wnode[node] != 0:
            fin = fin + word_end(s, &wctx, t.wnode[node], t.wahead[node])
        fin = fin + s.w_alpha * wlm_step(s, wctx, EOS_WORD, &ignored)
    return fin


# ------------------------------------------------------------------ selection helpers

cdef struct Scored:
    double score
    int64_t index


cdef inline bint ahead(const Scored* a, const Scored* b) noexcept nogil:
    """Strict total order: higher score first, then lower index (candidate or label)."""
    return a.score > b.score or (a.score == b.score and a.index < b.index)


cdef void scored_sift_down(Scored* heap, int64_t n, int64_t i) noexcept nogil:
    """Heap whose root is the *worst* item; moves heap[i] down to its place."""
    cdef Scored item = heap[i]
    cdef int64_t child
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and ahead(&heap[child], &heap[child + 1]):
            child += 1
        if ahead(&heap[child], &item):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


cdef void scored_sift_up(Scored* heap, int64_t i) noexcept nogil:
    cdef Scored item = heap[i]
    cdef int64_t parent
    while i > 0:
        parent = (i - 1) // 2
        if ahead(&item, &heap[parent]):
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = item


cdef int64_t SMALL_SORT = 128  # up to this many kept items the insertion sort takes fewer instructions


cdef int64_t select_best(const double* total, int64_t count, int64_t keep, int64_t* best,
                         Scored* heap) noexcept nogil:
    """The best ``keep`` finite candidates into ``best[0..n)``, best first; returns n.
    ``heap`` is scratch room for ``keep`` items."""
    cdef int64_t n = 0, k, i, j
    cdef Scored item
    for k in range(count):
        if total[k] == NEG_INF:
            continue
        item.score = total[k]
        item.index = k
        if n < keep:
            heap[n] = item
            scored_sift_up(heap, n)
            n += 1
        elif ahead(&item, &heap[0]):
            heap[0] = item
            scored_sift_down(heap, n, 0)
    if n <= SMALL_SORT:
        # Worst first, as the heap's levels roughly are already (few moves), then read backwards.
        for i in range(1, n):
            item = heap[i]
            j = i - 1
            while j >= 0 and ahead(&heap[j], &item):
                heap[j + 1] = heap[j]
                j -= 1
            heap[j + 1] = item
        for i in range(n):
            best[i] = heap[n - 1 - i].index
        return n
    i = n  # heap-sort: repeatedly move the worst to the end -> best first
    while i > 1:
        i -= 1
        item = heap[0]; heap[0] = heap[i]; heap[i] = item
        scored_sift_down(heap, i, 0)
    for i in range(n):
        best[i] = heap[i].index
    return n


cdef int64_t kept_symbols(const float* frame, int64_t num, double threshold, int64_t top_k, int64_t* out,
                          Scored* heap) noexcept nogil:
    """Labels >= threshold (optionally the top_k of them by score, ties to the lower label),
    ascending; returns how many. ``heap`` is scratch room for ``num`` items."""
    cdef int64_t n = 0, c, i, j, tmp
    cdef Scored item
    for c in range(1, num):
        if <double>frame[c] >= threshold:
            out[n] = c
            n += 1
    if 0 < top_k < n:
        j = 0
        for i in range(n):
            item.score = <double>frame[out[i]]
            item.index = out[i]
            if j < top_k:
                heap[j] = item
                scored_sift_up(heap, j)
                j += 1
            elif ahead(&item, &heap[0]):
                heap[0] = item
                scored_sift_down(heap, j, 0)
        n = top_k
        for i in range(n):
            out[i] = heap[i].index
        # ascending label order (insertion sort; top_k is small)
        for i in range(1, n):
            tmp = out[i]
            j = i - 1
            while j >= 0 and out[j] > tmp:
                out[j + 1] = out[j]
                j -= 1
            out[j + 1] = tmp
    return n


# ------------------------------------------------------------------ the search

cdef struct Output:
    int64_t count
    int64_t* lengths
    int32_t** labels
    double* acoustic
    double* lm
    int32_t** first
    int32_t** last
    double** confidence


cdef void output_free(Output* out) noexcept nogil:
    cdef int64_t i
    if out.labels != NULL:
        for i in range(out.count):
            free(out.labels[i]); free(out.first[i]); free(out.last[i]); free(out.confidence[i])
    free(out.lengths); free(out.labels); free(out.acoustic); free(out.lm); free(out.first); free(out.last)
    free(out.confidence)


cdef double VITERBI_BEAM = 40.0  # nats: trellis states this far below the frame's best are dropped


cdef int viterbi(const float* lp, int64_t frames, int64_t num, const int32_t* labels, int64_t n,
                 int32_t* first, int32_t* last, double* confidence, double band,
                 double* path_score) noexcept nogil:
    """Best path for ``labels``; only states within ``band`` nats of each frame's best (and able to
    reach the end in time) stay active, so long inputs cost about T x band instead of T x 2L.
    0: done; 1: out of memory; 2: the band lost every path to the end (call again with a wider
    band; with an infinite band: the labels have probability 0)."""
    cdef int64_t states = 2 * n + 1, t, s, k, state, lo = 0, hi = 1, new_lo, new_hi, floor_state
    cdef double best, top, candidate
    cdef uint8_t choice
    cdef int32_t* ext = <int32_t*>calloc(states, sizeof(int32_t))
    cdef double* score = <double*>malloc(states * sizeof(double))
    cdef double* new = <double*>malloc(states * sizeof(double))
    cdef double* tmp
    cdef uint8_t* back = <uint8_t*>malloc(frames * states * sizeof(uint8_t))
    cdef double* sums = <double*>calloc(n, sizeof(double))
    cdef int64_t* counts = <int64_t*>calloc(n, sizeof(int64_t))
    if ext == NULL or score == NULL or new == NULL or back == NULL or sums == NULL or counts == NULL:
        free(ext); free(score); free(new); free(back); free(sums); free(counts)
        return 1
    for k in range(n):
        ext[2 * k + 1] = labels[k]
    score[0] = <double>lp[0]
    score[1] = <double>lp[ext[1]]
    for t in range(1, frames):
        new_lo = lo
        new_hi = hi + 2 if hi + 2 < states else states - 1
        top = NEG_INF
        for s in range(new_lo, new_hi + 1):
            best = score[s] if s <= hi else NEG_INF
            choice = 0
            if s - 1 >= lo and s - 1 <= hi and score[s - 1] > best:
                best = score[s - 1]
                choice = 1
            if s >= 3 and s % 2 == 1 and ext[s] != ext[s - 2] and s - 2 >= lo and s - 2 <= hi and score[s - 2] > best:
                best = score[s - 2]
                choice = 2
            candidate = best + <double>lp[t * num + ext[s]]
            new[s] = candidate
            back[t * states + s] = choice
            if candidate > top:
                top = candidate
        # states that can no longer reach the last label or final blank by the last frame
        floor_state = states - 2 - 2 * (frames - 1 - t)
        while new_lo < new_hi and (new_lo < floor_state or new[new_lo] < top - band):
            new_lo += 1
        while new_hi > new_lo and new[new_hi] < top - band:
            new_hi -= 1
        lo = new_lo
        hi = new_hi
        tmp = score; score = new; new = tmp
    if hi < states - 2:
        free(ext); free(score); free(new); free(back); free(sums); free(counts)
        return 2
    if hi == states - 1 and (lo > states - 2 or score[states - 1] >= score[states - 2]):
        state = states - 1
    else:
        state = states - 2
    if score[state] == NEG_INF:  # the states left in the band cannot spell the labels
        free(ext); free(score); free(new); free(back); free(sums); free(counts)
        return 2
    path_score[0] = score[state]
    t = frames - 1
    while t >= 0:
        if state % 2 == 1:
            k = state // 2
            if counts[k] == 0:
                last[k] = <int32_t>t
            first[k] = <int32_t>t
            sums[k] += <double>lp[t * num + ext[state]]
            counts[k] += 1
        state -= back[t * states + state]
        t -= 1
    for k in range(n):
        confidence[k] = exp(sums[k] / counts[k])
    free(ext); free(score); free(new); free(back); free(sums); free(counts)
    return 0


cdef struct Work:
    Trie trie
    int64_t* beam_node
    double* beam_pb
    double* beam_pnb
    double* beam_tot
    int32_t* c_node
    int32_t* c_parent
    int32_t* c_label
    double* c_pb
    double* c_pnb
    double* c_extra
    int32_t* c_lm
    int32_t* c_lex
    int32_t* c_hot
    double* c_acc
    int32_t* c_wctx
    int32_t* c_wnode
    double* c_wahead
    double* total
    int64_t* order
    Scored* ranked
    int64_t* kept
    Scored* kept_heap  # heap room for kept_symbols, one item per symbol


cdef void work_free(Work* w) noexcept nogil:
    trie_free(&w.trie)
    free(w.beam_node); free(w.beam_pb); free(w.beam_pnb); free(w.beam_tot); free(w.c_node); free(w.c_parent); free(w.c_label)
    free(w.c_pb); free(w.c_pnb); free(w.c_extra); free(w.c_lm); free(w.c_lex); free(w.c_hot); free(w.c_acc)
    free(w.c_wctx); free(w.c_wnode); free(w.c_wahead)
    free(w.total); free(w.order); free(w.ranked); free(w.kept); free(w.kept_heap)


cdef int run_search(const float* lp, int64_t frames, int64_t num, int64_t beam_width, int64_t nbest,
                    double threshold, int64_t top_k, double beam_prune, const Scoring* s,
                    Output* out) noexcept nogil:
    """0 on success, 1 when out of memory."""
    cdef Work w
    memset(&w, 0, sizeof(Work))
    cdef int status = search_body(lp, frames, num, beam_width, nbest, threshold, top_k, beam_prune, s, out, &w)
    work_free(&w)
    return status


cdef int search_body(const float* lp, int64_t frames, int64_t num, int64_t beam_width, int64_t nbest,
                     double threshold, int64_t top_k, double beam_prune, const Scoring* s, Output* out,
                     Work* w) noexcept nogil:
    cdef int64_t max_cand = beam_width * num + 1
    w.beam_node = <int64_t*>malloc(beam_width * sizeof(int64_t))
    w.beam_pb = <double*>malloc(beam_width * sizeof(double))
    w.beam_pnb = <double*>malloc(beam_width * sizeof(double))
    w.beam_tot = <double*>malloc(beam_width * sizeof(double))
    w.c_node = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_parent = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_label = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_pb = <double*>malloc(max_cand * sizeof(double))
    w.c_pnb = <double*>malloc(max_cand * sizeof(double))
    w.c_extra = <double*>malloc(max_cand * sizeof(double))
    w.c_lm = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_lex = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_hot = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_acc = <double*>malloc(max_cand * sizeof(double))
    w.c_wctx = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_wnode = <int32_t*>malloc(max_cand * sizeof(int32_t))
    w.c_wahead = <double*>malloc(max_cand * sizeof(double))
    w.total = <double*>malloc(max_cand * sizeof(double))
    w.order = <int64_t*>malloc((beam_width if beam_width > nbest else nbest) * sizeof(int64_t))
    w.ranked = <Scored*>malloc((beam_width if beam_width > nbest else nbest) * sizeof(Scored))
    w.kept = <int64_t*>malloc(num * sizeof(int64_t))
    w.kept_heap = <Scored*>malloc(num * sizeof(Scored))
    if not trie_init(&w.trie, num, 1024):
        return 1
    if (w.beam_node == NULL or w.beam_pb == NULL or w.beam_pnb == NULL or w.beam_tot == NULL or w.c_node == NULL or w.c_parent == NULL
            or w.c_label == NULL or w.c_pb == NULL or w.c_pnb == NULL or w.c_extra == NULL or w.c_lm == NULL
            or w.c_lex == NULL or w.c_hot == NULL or w.c_acc == NULL or w.c_wctx == NULL or w.c_wnode == NULL
            or w.c_wahead == NULL or w.total == NULL or w.order == NULL or w.ranked == NULL
            or w.kept == NULL or w.kept_heap == NULL):
        return 1
    cdef Trie* trie = &w.trie
    cdef int64_t* beam_node = w.beam_node
    cdef double* beam_pb = w.beam_pb
    cdef double* beam_pnb = w.beam_pnb
    cdef double* beam_tot = w.beam_tot
    cdef int32_t* c_node = w.c_node
    cdef int32_t* c_parent = w.c_parent
    cdef int32_t* c_label = w.c_label
    cdef double* c_pb = w.c_pb
    cdef double* c_pnb = w.c_pnb
    cdef double* c_extra = w.c_extra
    cdef int32_t* c_lm = w.c_lm
    cdef int32_t* c_lex = w.c_lex
    cdef int32_t* c_hot = w.c_hot
    cdef double* c_acc = w.c_acc
    cdef int32_t* c_wctx = w.c_wctx
    cdef int32_t* c_wnode = w.c_wnode
    cdef double* c_wahead = w.c_wahead
    cdef double* total = w.total
    cdef int64_t* order = w.order
    cdef int64_t beam_size = 1, t, i, j, k, n_kept, n_cand, n_sel, node, child, c, last
    cdef int status
    cdef double y_blank, pb, pnb, tot, ext, delta, acc, path_score, wahead, best_total, cut
    cdef int32_t lm_state, lex_node, hot_node, new_node, wctx, wnode
    cdef const float* frame
    if trie_add(trie, -1, 0, 0.0, s.lm_start, 0, 0, 0.0, s.wlm_start, 0, 0.0) < 0:  # the empty prefix, node 0
        return 1
    beam_node[0] = 0
    beam_pb[0] = 0.0
    beam_pnb[0] = NEG_INF
    for t in range(frames):
        frame = lp + t * num
        y_blank = <double>frame[0]
        n_kept = kept_symbols(frame, num, threshold, top_k, w.kept, w.kept_heap)
        for i in range(beam_size):
            trie.stamp[beam_node[i]] = <int32_t>(t + 1)
            trie.slot[beam_node[i]] = <int32_t>i
        n_cand = 0
        for i in range(beam_size):
            node = beam_node[i]
            pb = beam_pb[i]
            pnb = beam_pnb[i]
            beam_tot[i] = log_add(pb, pnb)
            c_node[n_cand] = <int32_t>node
            c_parent[n_cand] = -1
            c_label[n_cand] = 0
            c_pb[n_cand] = beam_tot[i] + y_blank
            c_pnb[n_cand] = pnb + <double>frame[trie.label[node]] if node > 0 else NEG_INF
            c_extra[n_cand] = trie.extra[node]
            n_cand += 1
        for i in range(beam_size):
            node = beam_node[i]
            pb = beam_pb[i]
            pnb = beam_pnb[i]
            last = trie.label[node] if node > 0 else 0
            tot = beam_tot[i]
            for j in range(n_kept):
                c = w.kept[j]
                ext = (pb if c == last else tot) + <double>frame[c]
                if ext == NEG_INF:
                    continue
                child = trie_find(trie, <int32_t>node, <int32_t>c)
                if child >= 0 and trie.stamp[child] == t + 1:
                    k = trie.slot[child]
                    c_pnb[k] = log_add(c_pnb[k], ext)
                    continue
                if child >= 0:
                    c_extra[n_cand] = trie.extra[child]
                elif s.active:
                    if not extend(s, trie, <int32_t>node, <int32_t>c, &delta, &lm_state, &lex_node, &hot_node, &acc,
                                  &wctx, &wnode, &wahead):
                        continue
                    c_extra[n_cand] = trie.extra[node] + delta
                    c_lm[n_cand] = lm_state
                    c_lex[n_cand] = lex_node
                    c_hot[n_cand] = hot_node
                    c_acc[n_cand] = acc
                    c_wctx[n_cand] = wctx
                    c_wnode[n_cand] = wnode
                    c_wahead[n_cand] = wahead
                else:
                    c_extra[n_cand] = trie.extra[node]
                    c_lm[n_cand] = 0
                    c_lex[n_cand] = 0
                    c_hot[n_cand] = 0
                    c_acc[n_cand] = 0.0
                    c_wctx[n_cand] = 0
                    c_wnode[n_cand] = 0
                    c_wahead[n_cand] = 0.0
                c_node[n_cand] = <int32_t>child
                c_parent[n_cand] = <int32_t>node
                c_label[n_cand] = <int32_t>c
                c_pb[n_cand] = NEG_INF
                c_pnb[n_cand] = ext
                n_cand += 1
        best_total = NEG_INF
        for k in range(n_cand):
            total[k] = log_add(c_pb[k], c_pnb[k]) + c_extra[k]
            if total[k] > best_total:
                best_total = total[k]
        if beam_prune < INFINITY:  # prefixes this far below the frame's best are dropped
            cut = best_total - beam_prune
            for k in range(n_cand):
                if total[k] < cut:
                    total[k] = NEG_INF
        n_sel = select_best(total, n_cand, beam_width, order, w.ranked)
        for i in range(n_sel):
            k = order[i]
            node = c_node[k]
            if node < 0:
                new_node = trie_add(trie, c_parent[k], c_label[k], c_extra[k], c_lm[k], c_lex[k], c_hot[k], c_acc[k],
                                    c_wctx[k], c_wnode[k], c_wahead[k])
                if new_node < 0:
                    return 1
                node = new_node
            beam_node[i] = node
            beam_pb[i] = c_pb[k]
            beam_pnb[i] = c_pnb[k]
        beam_size = n_sel
        if beam_size == 0:
            break
    # final scores: acoustic in c_pb, scorer score in c_extra
    for i in range(beam_size):
        node = beam_node[i]
        c_pb[i] = log_add(beam_pb[i], beam_pnb[i])
        c_extra[i] = trie.extra[node] + (final_score(s, trie, <int32_t>node) if s.active else 0.0)
        total[i] = c_pb[i] + c_extra[i]
    n_sel = select_best(total, beam_size, nbest, order, w.ranked)
    out.count = n_sel
    out.lengths = <int64_t*>calloc(n_sel + 1, sizeof(int64_t))
    out.labels = <int32_t**>calloc(n_sel + 1, sizeof(int32_t*))
    out.first = <int32_t**>calloc(n_sel + 1, sizeof(int32_t*))
    out.last = <int32_t**>calloc(n_sel + 1, sizeof(int32_t*))
    out.confidence = <double**>calloc(n_sel + 1, sizeof(double*))
    out.acoustic = <double*>calloc(n_sel + 1, sizeof(double))
    out.lm = <double*>calloc(n_sel + 1, sizeof(double))
    if (out.lengths == NULL or out.labels == NULL or out.first == NULL or out.last == NULL or out.confidence == NULL
            or out.acoustic == NULL or out.lm == NULL):
        out.count = 0
        return 1
    for i in range(n_sel):
        k = order[i]
        node = beam_node[k]
        out.acoustic[i] = c_pb[k]
        out.lm[i] = c_extra[k]
        j = 0
        child = node
        while child > 0:
            j += 1
            child = trie.parent[child]
        out.lengths[i] = j
        out.labels[i] = <int32_t*>malloc((j + 1) * sizeof(int32_t))
        out.first[i] = <int32_t*>malloc((j + 1) * sizeof(int32_t))
        out.last[i] = <int32_t*>malloc((j + 1) * sizeof(int32_t))
        out.confidence[i] = <double*>malloc((j + 1) * sizeof(double))
        if out.labels[i] == NULL or out.first[i] == NULL or out.last[i] == NULL or out.confidence[i] == NULL:
            return 1
        child = node
        while child > 0:
            j -= 1
            out.labels[i][j] = trie.label[child]
            child = trie.parent[child]
        if out.lengths[i] > 0:
            status = viterbi(lp, frames, num, out.labels[i], out.lengths[i], out.first[i], out.last[i],
                             out.confidence[i], VITERBI_BEAM, &path_score)
            if status == 2:
                status = viterbi(lp, frames, num, out.labels[i], out.lengths[i], out.first[i], out.last[i],
                                 out.confidence[i], INFINITY, &path_score)
            if status == 2:  # probability 0: never a labelling the search returns (its score is finite)
                for j in range(out.lengths[i]):
                    out.first[i][j] = -1
                    out.last[i][j] = -1
                    out.confidence[i][j] = 0.0
            elif status != 0:
                return 1
    return 0


# ------------------------------------------------------------------ Python entry point

cdef void set_table(Table* t, const int64_t[::1] keys, const int32_t[::1] nxt, const double[::1] value, int bits,
                    int64_t nsym):
    t.keys = &keys[0]
    t.next = &nxt[0]
    t.value = &value[0]
    t.bits = bits
    t.nsym = nsym


cdef class PreparedScorers:
    """The search's view of one ``CompiledScorers``: the C struct, built once, and the arrays it
    points into (held here, so the pointers stay valid while this object lives). ``key`` holds
    the settings it was built from; ``beam.py`` rebuilds it when they change."""
    cdef Scoring s
    cdef object arrays
    cdef readonly object key

    def __init__(self, scorers, key):
        cdef const int64_t[::1] lm_keys, lex_keys, hot_keys, wlm_keys, prefix_keys
        cdef const int32_t[::1] lm_next, lex_next, hot_next, lm_bs, lm_sym, wlm_next, wlm_bs, prefix_next, prefix_word
        cdef const double[::1] lm_value, lex_value, hot_value, lm_bw, wlm_value, wlm_bw, prefix_value
        cdef const uint8_t[::1] lex_end, hot_end
        memset(&self.s, 0, sizeof(Scoring))
        self.key = key
        a = scorers.arrays()
        self.arrays = a  # numpy arrays never move their data while referenced
        self.s.active = True
        self.s.has_lm = scorers.lm is not None
        self.s.has_lex = scorers.lexicon is not None
        self.s.has_hot = scorers.hotwords is not None
        lm_keys, lm_next, lm_value = a["lm_keys"], a["lm_next"], a["lm_value"]
        set_table(&self.s.lm, lm_keys, lm_next, lm_value, a["lm_bits"], a["lm_nsym"])
        lm_bw, lm_bs, lm_sym = a["lm_backoff_w"], a["lm_backoff_s"], a["lm_sym"]
        self.s.lm_bw, self.s.lm_bs, self.s.lm_sym = &lm_bw[0], &lm_bs[0], &lm_sym[0]
        self.s.lm_start = a["lm_start"]
        self.s.alpha = scorers.alpha
        self.s.beta = scorers.beta
        lex_keys, lex_next, lex_value = a["lex"].keys, a["lex"].next_state, a["lex"].value
        set_table(&self.s.lex, lex_keys, lex_next, lex_value, a["lex"].bits, a["lex"].num_symbols)
        lex_end = a["lex_end"]
        self.s.lex_end = &lex_end[0]
        hot_keys, hot_next, hot_value = a["hot"].keys, a["hot"].next_state, a["hot"].value
        set_table(&self.s.hot, hot_keys, hot_next, hot_value, a["hot"].bits, a["hot"].num_symbols)
        hot_end = a["hot_end"]
        self.s.hot_end = &hot_end[0]
        self.s.space = scorers.space_label
        word_lm = scorers.word_lm
        self.s.has_wlm = word_lm is not None
        wlm_keys, wlm_next, wlm_value = a["wlm"].keys, a["wlm"].next_state, a["wlm"].value
        set_table(&self.s.wlm, wlm_keys, wlm_next, wlm_value, a["wlm"].bits, a["wlm"].num_symbols)
        wlm_bw, wlm_bs = a["wlm_backoff_w"], a["wlm_backoff_s"]
        self.s.wlm_bw, self.s.wlm_bs = &wlm_bw[0], &wlm_bs[0]
        self.s.wlm_start = a["wlm_start"]
        prefix_keys, prefix_next, prefix_value = a["prefix"].keys, a["prefix"].next_state, a["prefix"].value
        set_table(&self.s.prefix, prefix_keys, prefix_next, prefix_value, a["prefix"].bits, a["prefix"].num_symbols)
        prefix_word = a["prefix_word"]
        self.s.prefix_word = &prefix_word[0]
        if self.s.has_wlm:
            self.s.w_alpha, self.s.w_beta, self.s.unk_offset = word_lm.alpha, word_lm.beta, word_lm.unk_offset


def search(const float[:, ::1] log_probs, int beam_width, int nbest, double threshold, int top_k, scorers=None,
           double beam_prune=INFINITY):
    """[(labels, acoustic, scorer score, spans, confidences)] best first. The search runs without the GIL.
    ``scorers``: None, a ``PreparedScorers``, or active ``CompiledScorers`` (prepared for this call)."""
    cdef Scoring s
    cdef Output out
    cdef int64_t frames = log_probs.shape[0], num = log_probs.shape[1]
    cdef int status
    cdef const float* lp
    cdef PreparedScorers prepared
    memset(&s, 0, sizeof(Scoring))
    memset(&out, 0, sizeof(Output))
    if frames == 0:
        return [((), 0.0, 0.0, (), ())]
    lp = &log_probs[0, 0]
    if scorers is not None and not isinstance(scorers, PreparedScorers):
        scorers = PreparedScorers(scorers, None) if scorers.active else None
    if scorers is not None:
        prepared = scorers
        s = prepared.s
    with nogil:
        status = run_search(lp, frames, num, beam_width, nbest, threshold, top_k, beam_prune, &s, &out)
    if status != 0:
        output_free(&out)
        raise MemoryError("beam search ran out of memory")
    results = []
    cdef int64_t i, k, n
    for i in range(out.count):
        n = out.lengths[i]
        results.append((
            tuple([out.labels[i][k] for k in range(n)]),
            out.acoustic[i],
            out.lm[i],
            tuple([(out.first[i][k], out.last[i][k]) for k in range(n)]),
            tuple([out.confidence[i][k] for k in range(n)]),
        ))
    output_free(&out)
    return results


def viterbi_align(const float[:, ::1] log_probs, labels, double band):
    """Best placement of ``labels`` (n >= 1, 2n - repeats <= frames): (spans, confidences, path log
    score), or None when the band lost the end (with ``band=inf``: the labels have probability 0).
    The twin is ``beam_py.banded_viterbi``."""
    cdef int64_t frames = log_probs.shape[0], num = log_probs.shape[1]
    cdef int64_t n = len(labels), k
    cdef int status
    cdef double path_score = NEG_INF
    if n == 0 or frames == 0:
        raise ValueError("viterbi_align needs at least one label and one frame")
    for k in range(n):
        if not 0 < labels[k] < num:
            raise ValueError(f"label {labels[k]} is outside 1..{num - 1}")
    cdef int32_t* c_labels = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* first = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int32_t* last = <int32_t*>malloc(n * sizeof(int32_t))
    cdef double* confidence = <double*>malloc(n * sizeof(double))
    if c_labels == NULL or first == NULL or last == NULL or confidence == NULL:
        free(c_labels); free(first); free(last); free(confidence)
        raise MemoryError("forced alignment ran out of memory")
    for k in range(n):
        c_labels[k] = <int32_t>labels[k]
    with nogil:
        status = viterbi(&log_probs[0, 0], frames, num, c_labels, n, first, last, confidence, band, &path_score)
    try:
        if status == 1:
            raise MemoryError("forced alignment ran out of memory")
        if status == 2:
            return None
        return (tuple([(first[k], last[k]) for k in range(n)]), tuple([confidence[k] for k in range(n)]),
                path_score)
    finally:
        free(c_labels); free(first); free(last); free(confidence)
