"""Optional experiments from the classic handout's "for fun" questions (``backprop-lab experiments``).

Each family module (feedback_alignment, stale_weights, random_hidden, noise, rounding) has a
``run(rng, quick=False, out_dir=None, ...)`` that trains exact backprop and its variants, writes a
learning-curve plot and returns an :class:`~autograder.experiments.result.ExperimentResult` whose
``sentence`` is computed from the measured errors. ``runner.run_all`` runs them all and writes the report.
"""
