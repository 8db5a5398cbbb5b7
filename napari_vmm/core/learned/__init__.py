"""Learned magnifiers: Oh et al. 2018 (``oh2018``) and the real-time model (``realtime``).

- :mod:`.data`: synthetic training data generated on the fly (Oh et al. recipe)
- :mod:`.models`: the torch networks
- :mod:`.losses`: training loss and SSIM
- :mod:`.train`: the resumable training loop behind ``vmm train``
- :mod:`.weights`: shipped weights, provenance and checksums
- :mod:`.magnifier`: ``Oh2018Magnifier`` / ``RealtimeMagnifier`` on the engine contract
- :mod:`.evaluate`: the quantitative tests behind ``vmm evaluate``

Both methods are registered in :mod:`napari_vmm.core.registry`; importing this package does not
import torch.
"""
