# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled scanner of ARPA n-gram sections. The readable reference is ``arpa.py``'s
``_scan_section_py``: this file does the same thing (same ids, same numbers, same first error)
in one pass over the bytes, with a C hash table of the words instead of a dict, so a 100 MB file
is read in about a second rather than ten."""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport strtod
from libc.string cimport memcmp, memcpy
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL
cdef enum:
    MAX_NUMBER = 63  # bytes: a longer probability or backoff field is not a number we accept
    MAX_ORDER = 10  # arpa.MAX_ORDER

# error codes (arpa.py turns them into messages)
TOO_MANY, WRONG_FIELDS, NOT_A_NUMBER = 1, 2, 3


cdef inline bint is_space(unsigned char c) noexcept nogil:
    # the ASCII whitespace bytes.split() splits on, less the newline that ends a line
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


cdef class Vocabulary:
    """Words seen so far (offset and length into the file's bytes), ids in order of first sight."""

    cdef object data  # keeps the buffer alive
    cdef const unsigned char* base
    cdef int64_t* offsets
    cdef int32_t* lengths
    cdef uint64_t* hashes
    cdef int64_t* slots  # open addressing: word id, or -1
    cdef int64_t count, words_capacity, slots_capacity

    def __cinit__(self, const unsigned char[::1] data not None, object owner):
        self.data = owner
        self.base = &data[0] if data.shape[0] else NULL
        self.count = 0
        self.words_capacity = 0
        self.slots_capacity = 0
        self.offsets = NULL
        self.lengths = NULL
        self.hashes = NULL
        self.slots = NULL
        self._grow_words(1024)
        self._grow_slots(4096)

    def __dealloc__(self):
        PyMem_Free(self.offsets)
        PyMem_Free(self.lengths)
        PyMem_Free(self.hashes)
        PyMem_Free(self.slots)

    cdef int _grow_words(self, int64_t capacity) except -1:
        cdef int64_t* offsets = <int64_t*>PyMem_Malloc(capacity * sizeof(int64_t))
        cdef int32_t* lengths = <int32_t*>PyMem_Malloc(capacity * sizeof(int32_t))
        cdef uint64_t* hashes = <uint64_t*>PyMem_Malloc(capacity * sizeof(uint64_t))
        if offsets == NULL or lengths == NULL or hashes == NULL:
            PyMem_Free(offsets)
            PyMem_Free(lengths)
            PyMem_Free(hashes)
            raise MemoryError()
        if self.count:
            memcpy(offsets, self.offsets, self.count * sizeof(int64_t))
            memcpy(lengths, self.lengths, self.count * sizeof(int32_t))
            memcpy(hashes, self.hashes, self.count * sizeof(uint64_t))
        PyMem_Free(self.offsets)
        PyMem_Free(self.lengths)
        PyMem_Free(self.hashes)
        self.offsets, self.lengths, self.hashes = offsets, lengths, hashes
        self.words_capacity = capacity
        return 0

    cdef int _grow_slots(self, int64_t capacity) except -1:
        cdef int64_t* slots = <int64_t*>PyMem_Malloc(capacity * sizeof(int64_t))
        cdef int64_t i, slot, mask = capacity - 1
        if slots == NULL:
            raise MemoryError()
        for i in range(capacity):
            slots[i] = -1
        for i in range(self.count):
            slot = <int64_t>(self.hashes[i] & <uint64_t>mask)
            while slots[slot] != -1:
                slot = (slot + 1) & mask
            slots[slot] = i
        PyMem_Free(self.slots)
        self.slots = slots
        self.slots_capacity = capacity
        return 0

    cdef int64_t intern(self, int64_t offset, int32_t length) except -1:
        """The id of the word at data[offset:offset + length], added if new."""
        cdef uint64_t h = FNV_OFFSET
        cdef int32_t i
        cdef const unsigned char* word = self.base + offset
        for i in range(length):
            h = (h ^ word[i]) * FNV_PRIME
        h ^= h >> 29  # FNV's low bits mix poorly; the slot is taken from them
        cdef int64_t mask = self.slots_capacity - 1
        cdef int64_t slot = <int64_t>(h & <uint64_t>mask)
        cdef int64_t found
        while True:
            found = self.slots[slot]
            if found == -1:
                break
            if self.hashes[found] == h and self.lengths[found] == length and \
                    memcmp(self.base + self.offsets[found], word, length) == 0:
                return found
            slot = (slot + 1) & mask
        if self.count == self.words_capacity:
            self._grow_words(self.words_capacity * 2)
        self.offsets[self.count] = offset
        self.lengths[self.count] = length
        self.hashes[self.count] = h
        self.slots[slot] = self.count
        self.count += 1
        if self.count * 2 > self.slots_capacity:
            self._grow_slots(self.slots_capacity * 2)
        return self.count - 1

    def __len__(self):
        return self.count

    def words(self, int64_t start=0):
        """The words with ids from ``start`` on, as bytes."""
        cdef int64_t i
        return [(<const char*>(self.base + self.offsets[i]))[:self.lengths[i]] for i in range(start, self.count)]


cdef inline bint number_byte(unsigned char c) noexcept nogil:
    # digits, sign, point, exponent and the letters of inf / infinity / nan: no hex floats,
    # no "nan(...)", no underscores (what strtod and Python's float() would disagree on)
    return (48 <= c <= 57) or c == 43 or c == 45 or c == 46 or c == 101 or c == 69 \
        or c in b"infatyINFATY"


cdef double[23] POWERS_OF_TEN = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
                                 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]


cdef inline bint plain_decimal(const unsigned char* field, Py_ssize_t length, double* out) noexcept nogil:
    """[+-]digits[.digits] with at most 15 significant digits, read exactly: the digits as an
    integer below 2**53 and one division by an exact power of ten is one correctly rounded
    operation, the same double strtod returns (Clinger's fast path). False: use strtod."""
    cdef Py_ssize_t i = 0
    cdef bint negative = False
    cdef int64_t mantissa = 0
    cdef int digits = 0, decimals = 0
    cdef bint point = False, any_digit = False
    if i < length and (field[i] == 45 or field[i] == 43):
        negative = field[i] == 45
        i += 1
    while i < length:
        if 48 <= field[i] <= 57:
            any_digit = True
            if mantissa or field[i] != 48:
                digits += 1
            if digits > 15:
                return False
            mantissa = mantissa * 10 + (field[i] - 48)
            if point:
                decimals += 1
        elif field[i] == 46 and not point:
            point = True
        else:
            return False
        i += 1
    if not any_digit or decimals > 22:
        return False
    out[0] = <double>mantissa / POWERS_OF_TEN[decimals]
    if negative:
        out[0] = -out[0]
    return True


cdef inline bint read_number(const unsigned char* field, Py_ssize_t length, double* out) noexcept nogil:
    cdef char buffer[MAX_NUMBER + 1]
    cdef char* parsed
    cdef Py_ssize_t i
    if length > MAX_NUMBER:
        return False
    if plain_decimal(field, length, out):
        return True
    for i in range(length):
        if not number_byte(field[i]):
            return False
    memcpy(buffer, field, length)
    buffer[length] = 0
    out[0] = strtod(buffer, &parsed)
    return parsed == buffer + length


def scan_section(const unsigned char[::1] data not None, Py_ssize_t begin, Py_ssize_t end, int n,
                 Py_ssize_t first_line, Py_ssize_t limit, Vocabulary vocabulary not None,
                 int64_t[:, ::1] ids not None, double[::1] probs not None, double[::1] backoffs not None,
                 int64_t[::1] line_numbers not None):
    """Read the n-gram lines in data[begin:end] (line ``first_line`` is the first, 1-based) into
    the arrays; more than ``limit`` rows is an error. Returns (rows read, error code or 0, line of
    the error). Per line the checks run in the reference's order: the number of fields, the row
    limit, then the numbers."""
    cdef Py_ssize_t capacity = probs.shape[0]
    cdef Py_ssize_t position = begin, line_end, rows = 0, line = first_line
    cdef Py_ssize_t starts[MAX_ORDER + 2]
    cdef Py_ssize_t stops[MAX_ORDER + 2]
    cdef int fields, k
    cdef double number
    if end > data.shape[0] or begin < 0 or n < 1 or n > MAX_ORDER or ids.shape[1] != n \
            or ids.shape[0] < capacity or backoffs.shape[0] < capacity or line_numbers.shape[0] < capacity:
        raise ValueError("scan_section: arrays or range do not fit")
    while position < end:
        line_end = position
        while line_end < end and data[line_end] != 10:
            line_end += 1
        fields = 0
        while True:
            while position < line_end and is_space(data[position]):
                position += 1
            if position >= line_end:
                break
            if fields == n + 2:
                return rows, WRONG_FIELDS, line
            starts[fields] = position
            while position < line_end and not is_space(data[position]):
                position += 1
            stops[fields] = position
            fields += 1
        if fields:
            if fields < n + 1:
                return rows, WRONG_FIELDS, line
            if rows == limit:
                return rows, TOO_MANY, line
            if rows == capacity:
                raise ValueError("scan_section: more rows than the arrays hold")
            if not read_number(&data[starts[0]], stops[0] - starts[0], &number):
                return rows, NOT_A_NUMBER, line
            probs[rows] = number
            if fields == n + 2:
                if not read_number(&data[starts[n + 1]], stops[n + 1] - starts[n + 1], &number):
                    return rows, NOT_A_NUMBER, line
                backoffs[rows] = number
            else:
                backoffs[rows] = 0.0
            for k in range(n):
                ids[rows, k] = vocabulary.intern(starts[k + 1], <int32_t>(stops[k + 1] - starts[k + 1]))
            line_numbers[rows] = line
            rows += 1
        position = line_end + 1
        line += 1
    return rows, 0, line
