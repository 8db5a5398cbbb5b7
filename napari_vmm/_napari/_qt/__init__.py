"""The dock widgets: thin Qt views over :class:`napari_vmm._napari.model.WidgetsModel`."""
