"""Orchestration between the screens and the domain layers: retrieve jobs, the reading worklist,
reporting against the PACS, the viewer's state, the doctor. Headless: nothing here imports
Textual, so every service runs (and is tested) without a terminal."""
