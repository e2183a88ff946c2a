"""Synthetic demo cohort: deterministic FHIR R4 bundles with cardiometabolic histories and notes.

Pure Python + numpy (no Django). ``patients.cohort.generator`` builds the bundles and exports the
fixed ``PRACTITIONERS``; ``patients.cohort.notes`` writes the clinical notes.
"""
