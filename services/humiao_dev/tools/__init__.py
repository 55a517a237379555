"""Developer tools: code generation."""
