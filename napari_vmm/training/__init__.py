"""Training, data and evaluation of the learned magnifiers (the networks themselves, their
weights and inference live in :mod:`napari_vmm.core.learned`, which never imports this package).

- :mod:`.data`: synthetic training data generated on the fly (Oh et al. recipe);
  :mod:`.render_torch`: the same recipe rendered in batches with torch (``--renderer torch``)
- :mod:`.losses`: training losses (Oh's; FD4MM's Charbonnier + LoG edge + contrastive) and SSIM
- :mod:`.train`: the resumable training loop behind ``vmm train``;
  :mod:`.thesis_train`: the thesis models' losses and training stages
- :mod:`.kldnas_search`: the KL-DNAS latency-aware search (``vmm train kldnas``)
- :mod:`.export`: writing weights with their provenance (and ``provenance.md``)
- :mod:`.evaluate`, :mod:`.eval_tables`, :mod:`.gain`: the quantitative tests behind
  ``vmm evaluate`` and their tables
- :mod:`.flops`: the conv / linear MAC counter behind the GFLOPs figures
- :mod:`.figures`: the sample and training-curve figures of docs/learned.md
"""
