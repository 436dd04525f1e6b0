"""backprop-lab: reference MLP, generated handout, sandboxed autograder, batch grading and release."""

__version__ = "0.1.0"
