"""sam2elnet: SAM2-ELNet for remote sensing label enhancement and automatic annotation."""

__version__ = "0.1.0"
