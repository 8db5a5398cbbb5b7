"""napari-vmm: video motion magnification for napari and ffmpeg."""
__version__ = "0.1.0"
