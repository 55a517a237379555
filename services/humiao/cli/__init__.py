"""The `humiao` command line."""
