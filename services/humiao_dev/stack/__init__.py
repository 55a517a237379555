"""The local stack: an embedded broker and database for the demo, tests and laptops."""
