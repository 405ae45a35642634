"""The plan engine: changes computed without side effects, applied in order, journaled."""
