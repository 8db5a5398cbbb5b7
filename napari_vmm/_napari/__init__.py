"""The napari front end: Qt-free helpers and a shared model here, thin dock views in ``_qt``.

- :mod:`.model`: :class:`~.model.WidgetsModel`, the evented state the dock widgets of one
  viewer share (magnification parameters and band, Dask settings, pixel calibration), and
  :func:`~.model.shared_model`; it reads and writes the settings file.
- :mod:`.layers`: layer checks, fps, ROI masks, output layers (no Qt).
- :mod:`.settings`: the widget's settings file (no Qt).
- :mod:`.jobs`: worker generators (engine, Dask, motion traces, deflection shapes; no Qt).
- :mod:`.plots`: plot limits and peak picking of the traces widget (no Qt).
- :mod:`.samples`: File > Open Sample.
- :mod:`._qt`: the dock widgets (build the form, connect signals, show notifications):
  ``magnify``, ``traces``, ``deflection``, and ``qtutil`` (the calibration binding).

Nothing is imported here, so npe2 loads only the module a contribution names.
"""
