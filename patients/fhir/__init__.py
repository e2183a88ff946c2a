"""FHIR R4 interchange: parsing and validating bundles (pure), importing and exporting (Django)."""
