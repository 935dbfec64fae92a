"""De-identification (PS3.15 Annex E): the Basic Profile's table as data, and the export."""
