"""The training loops: SMASH training of the HyperNet, and final training of one architecture."""
