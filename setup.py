"""Declares the compiled beam search and ARPA scanner; metadata lives in pyproject.toml.

Set CTCTOOL_NO_EXT=1 to skip the extension (the pure-Python twin is then used), e.g. where
no C compiler exists.
"""

import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("CTCTOOL_NO_EXT") != "1":
    from Cython.Build import cythonize

    extensions = cythonize(
        [Extension("ctctool.decoding._beam", ["ctctool/decoding/_beam.pyx"], extra_compile_args=["-O3"]),
         Extension("ctctool.decoding._arpa", ["ctctool/decoding/_arpa.pyx"], extra_compile_args=["-O3"])],
        compiler_directives={"language_level": "3"},
    )

setup(ext_modules=extensions)
