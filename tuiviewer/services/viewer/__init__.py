"""What the slice viewer knows and computes, without Textual: the slices of a stack and their
cache, the geometry of the displayed image, the marks drawn into it, linking two stacks."""
