"""Release decisions and their reasons, tearlines, consent, node rules, compiled grants."""
