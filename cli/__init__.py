"""The `smash` command, `smash up`, the dashboard launcher and the notebook API.

The composition root: it wires core, store, engine and app together, and nothing imports it.
"""
