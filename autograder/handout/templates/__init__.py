"""Files copied into assignment/ with small, named substitutions (kept as .py so they ship with the package)."""
