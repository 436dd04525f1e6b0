"""Batch grading for TAs: discover a class (folder, Gradescope or Canvas export), grade it in parallel
and resumably, and write gradebook.csv, per-student feedback and a class summary."""
