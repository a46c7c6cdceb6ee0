"""Handling markings: TLP 2.0, classification scales, REL TO, caveats, Admiralty grading."""
