# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The method comparison of ``benchmarks/compare_methods.py`` (issue 8), one concern per module.

The command line and what it compares are documented in ``benchmarks/compare_methods.py``, the script to run; this
package is importable as ``comparison`` when ``benchmarks/`` is on ``sys.path`` (running or loading the script puts
it there).

Modules:
    methods: the registry of compared methods (:class:`~comparison.methods.MethodSpec`, ``METHODS``).
    settings: the budgets every method is compared on, the NoC protocol constants and the run options.
    layout: where one method / seed keeps its files in the output folder.
    items: the training and held-out evaluation objects.
    training: training one learned method / seed with the project's ``run_training``.
    runner: one method / seed end to end: resume, train, NoC evaluation, stored result and final masks.
    pool: the ``--jobs`` process pool over methods and seeds.
    statistics: pooling and mean ± sample sd over seeds.
    report: the comparison table, the hard-case figures and ``comparison.md``.
    cli: the command-line parser and the whole run (:func:`~comparison.cli.run_comparison`).
"""
