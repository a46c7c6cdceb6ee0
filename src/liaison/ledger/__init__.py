"""The disclosure ledger: every disclosure and policy change (the signed hash chain follows)."""
