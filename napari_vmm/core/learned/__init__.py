"""Learned magnifiers: the networks, their weights and inference on the engine contract.

- :mod:`.table`: the model table (one entry per model) and :func:`.table.build_model`
- :mod:`.models`: the :class:`.models.MagNet` interface, Oh et al. 2018 (``oh2018``) and the
  real-time model (``realtime``)
- :mod:`.fd4mm`: FD4MM (``fd4mm``), frequency decoupling on three isomorphic levels
- :mod:`.thesis`: the Singh thesis models (``lnvmm``, ``mdlmm``, ``sigma_theta``, ``hmn`` and
  their light variants)
- :mod:`.kldnas`: the KL-DNAS super-net and its searched students (``kldnas``)
- :mod:`.weights`: shipped weights, provenance and the checksum checked on every load
- :mod:`.infer`: fused oneDNN inference of ``realtime`` on CPU
- :mod:`.magnifier`: one magnifier class per table entry on the engine contract

Training, data generation, the KL-DNAS search and evaluation are in :mod:`napari_vmm.training`,
which this package never imports. Every model is registered in :mod:`napari_vmm.core.registry`
from the table; importing this package does not import torch.
"""
