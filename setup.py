"""Build hook: the one native extension (everything else is in pyproject.toml).

``rollbook.commitment._native`` runs the Merkle tree's hashing loops in C on OpenSSL's SHA-256
(see ``src/rollbook/commitment/_native.c``). It is optional: where it cannot be built (no C
compiler, no libcrypto) the install still succeeds and ``rollbook.commitment.merkle`` runs its
pure-Python loops, which are the reference the native ones are tested against.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rollbook.commitment._native",
            sources=["src/rollbook/commitment/_native.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2"],
            optional=True,
        ),
    ],
)
