"""Small building blocks every layer shares: atomic file writes (:mod:`leadml.common.atomic`), text
made safe for CSV, Markdown and logs (:mod:`leadml.common.safe_text`) and SQL literals
(:mod:`leadml.common.sql`). They import nothing else from leadml."""
