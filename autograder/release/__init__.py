"""Yearly release: build every artifact of a year behind the gate (see docs/release.md)."""
