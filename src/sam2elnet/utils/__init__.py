"""Small helpers shared by every layer (no dependencies on the rest of the package)."""
