"""The networks an Arch runs as: SMASHNet (one-shot, shared weights plus generated 1x1s)
and ArchNet (its own weights, for final training and export), with their shared parts
and size counts. Nothing here knows the HyperNet; it hands weights in as `Generated`."""
