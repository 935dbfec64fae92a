"""Reports as DICOM Structured Reports: building a TID 2000 Basic Text SR, reading any SR back."""
