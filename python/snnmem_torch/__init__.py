"""snnmem-torch: what PyTorch + SpikingJelly keep and allocate in one SNN training step, measured
for the profiles of snnmem (profiles/*.yaml), as JSON fixtures for the Swift planner's tests."""

__version__ = "0.1.0"
