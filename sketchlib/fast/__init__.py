"""What exists only for speed. Every piece is tested equal to the plain code in :mod:`sketchlib.nn`."""
