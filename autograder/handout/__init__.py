"""The student handout: parse solutions/ once, then write assignment/ (skeleton, notebook, self-tests, README)."""
