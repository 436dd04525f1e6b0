"""Similarity report: which students' code matches whose (in the class, earlier years, public solutions).

Modules, in data-flow order:
    fingerprints  source text -> per-function winnowed token fingerprints (copydetect), template removed
    documents     submissions, --against folders and templates -> documents (the project's loaders)
    scoring       documents -> ranked pairs (weighted by how rare each fingerprint is in the corpus)
    regions       one pair -> the matched character ranges of both files, for highlighting
    report        pairs -> similarity.csv, similarity.html and one side-by-side page per pair
    batch         the "Pairs to look at" section that ``backprop-lab batch`` adds to summary.html
    cli           ``backprop-lab similarity SUBMISSIONS --out DIR [--against DIR ...] [--template FILE ...]``
"""
