"""Patient records, notes, care teams and the clinician pages. FHIR R4 in and out."""
