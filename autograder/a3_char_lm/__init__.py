"""Everything that grades a3_char_lm: ``reference`` (the instructor's code), ``probes`` (sent into
the student's kernel) and ``checks`` (the units the notebook's hidden tests call)."""
