"""Image data: every source decoded once into uint8 tensors in memory, split and batched by seed.

Training indexes batches straight out of memory (on the GPU if the caller moves them
there) instead of running a DataLoader. All randomness is seeded: the validation split
from the run seed, batch order from (seed, epoch), augmentation from a caller-held
generator, so a resumed run sees exactly the batches the interrupted one would have seen.

Sources, one module each: Debian's Fashion-MNIST IDX files, torchvision's CIFAR folders,
an ImageFolder tree, an .npz file, or a small generated data set for tests; `splits`
picks one by `[data].dataset`. Nothing is ever downloaded; missing or malformed data
raises `DataError` with one line saying what to do.
"""
