"""The parts of the report editor: the sections being typed, the study and its priors, the
status of the report and of its draft."""
