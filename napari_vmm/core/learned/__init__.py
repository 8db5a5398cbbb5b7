"""Learned magnifiers: Oh et al. 2018 (``oh2018``), the real-time model (``realtime``), FD4MM.

- :mod:`.data`: synthetic training data generated on the fly (Oh et al. recipe)
- :mod:`.models`: the torch networks (Oh-style ones) and :func:`.models.build_model`
- :mod:`.fd4mm`: FD4MM (``fd4mm``), frequency decoupling on three isomorphic levels
- :mod:`.thesis`: the Singh thesis models (``lnvmm``, ``mdlmm``, ``sigma_theta``, ``hmn`` and
  their light variants); :mod:`.thesis_train`: their losses and training stages
- :mod:`.kldnas`: the KL-DNAS latency-aware search and its student (``kldnas``)
- :mod:`.flops`: the conv / linear MAC counter behind the GFLOPs figures
- :mod:`.losses`: training losses (Oh's; FD4MM's Charbonnier + LoG edge + contrastive) and SSIM
- :mod:`.train`: the resumable training loop behind ``vmm train``
- :mod:`.weights`: shipped weights, provenance and checksums
- :mod:`.magnifier`: ``Oh2018Magnifier`` / ``RealtimeMagnifier`` / ``FD4MMMagnifier`` on the
  engine contract
- :mod:`.evaluate`: the quantitative tests behind ``vmm evaluate``

All of them are registered in :mod:`napari_vmm.core.registry`; importing this package
does not import torch.
"""
