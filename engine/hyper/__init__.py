"""The HyperNet and the encoding it reads: an Arch in, the weights of its 1x1s out."""
