"""chainrule's benchmark runner: training speed side by side with the GEMM floor and peers.

Run ``python benchmarks/run.py`` or ``python -m benchmarks`` from the repository root;
``--help`` lists the options. The configurations live in :mod:`benchmarks.configs`.
"""
