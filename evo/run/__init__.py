"""A run: opening it (checks first, writes last), its lease, one generation's steps, the resources a
process builds once, chunk planning, and the test-only fault hooks."""
