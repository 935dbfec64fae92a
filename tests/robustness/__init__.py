"""Robustness tests: damaged files, PHI in logs and messages, the support report."""
