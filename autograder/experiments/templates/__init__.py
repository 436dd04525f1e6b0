"""Templates the handout writer copies (not imported)."""
