"""Everything that grades a4_visualizing: ``reference`` (the instructor's code), ``probes`` (sent into
the student's kernel) and ``checks`` (the units the notebook's hidden tests call)."""
