"""DICOM files without a UI: loading, scanning, the study index, tag rows, editing, diff, export."""
