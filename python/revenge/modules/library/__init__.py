"""Libraries: the scanner's pure parts (walk, names, NFO files); the module wiring comes later."""
