"""hark's training side: the PyTorch twin of hark's acoustic model, its
features, data and training loop, and the export to hark's model format."""
