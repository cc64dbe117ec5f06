"""Mapping rules: raw Prometheus series → the canonical series the analyses read (rules.py says how)."""
