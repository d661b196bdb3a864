"""A corpus of bad and hostile inputs, generated at test time, with each case's expected outcome."""
