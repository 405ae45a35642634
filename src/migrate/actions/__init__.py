"""Action kinds: one module per kind, each with plan / prepare / apply / rollback."""
