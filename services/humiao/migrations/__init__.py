"""Versioned SQL migrations (NNN_name.sql), applied in order at service start."""
