"""Data files: the HIT-CS categories, the 18 imaging workflow steps and the 16 strategies.
Loaded by `twinpacs.core.taxonomy`; the ids in them are the project's stable ids."""
