"""The torch-free domain: config, op vocabulary, architectures, sampling, search strategies, statistics, ids and job kinds.

Everything above (store, engine, app, cli) may import it; it imports nothing of ours, so
the dashboard and the store can reason about architectures without loading torch.
"""
