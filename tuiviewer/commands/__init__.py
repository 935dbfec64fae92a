"""Engines of the sub-commands: ``tuiviewer.cli`` parses the arguments, each module here runs
one command with the streams it is given and returns its exit code."""
