"""The files SMASH Explorer writes on request: the formats `smash export` writes a model in,
and those `smash graph` (and the Architecture page's downloads) draw an arch in. Here so
the command line can offer them without loading torch or a plotting library.
"""

FORMATS = ("json", "state_dict", "torchscript", "onnx")
"""`smash export --format`."""

IMAGE_FORMATS = ("svg", "png", "pdf")
GRAPH_FORMATS = (*IMAGE_FORMATS, "html", "dot", "graphml")
"""`smash graph --format`: images rendered through Chromium, interactive HTML, graph files."""
GRAPH_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".html": "html", ".htm": "html",
                  ".dot": "dot", ".gv": "dot", ".graphml": "graphml"}
"""The format a file name's suffix names."""
