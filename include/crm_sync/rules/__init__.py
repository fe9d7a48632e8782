"""The sync rules of RULES.md as pure functions over pandas frames: no I/O, no network."""
