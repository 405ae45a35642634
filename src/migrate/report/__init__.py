"""`migrate report` (the Architecture Blueprint, ticked from verified status) and the
Markdown summary `migrate ci` appends to the pipeline's step summary."""
