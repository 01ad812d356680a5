"""Certified emission reductions: projects, verification, issuance, the unit registry and certificates."""
