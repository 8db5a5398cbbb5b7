"""The napari-vmm engine.

Never imports napari or Qt; torch is imported by the modules that need it.
"""
