"""The napari front end: Qt-free helpers and a shared model here, thin dock views in ``_qt``.

- :mod:`.model`: :class:`~.model.WidgetsModel`, the evented state the dock widgets of one
  viewer share (magnification parameters, band, Dask settings), and :func:`~.model.shared_model`.
- :mod:`.layers`: layer checks, fps, ROI masks, output layers (no Qt).
- :mod:`.settings`: the widget's settings file (no Qt).
- :mod:`.jobs`: worker generators (engine, Dask, motion traces, deflection shapes; no Qt).
- :mod:`.plots`: plot limits of the traces widget (no Qt).
- :mod:`.samples`: File > Open Sample.
- :mod:`._qt`: the dock widgets (build the form, connect signals, show notifications).

Nothing is imported here, so npe2 loads only the module a contribution names.
"""
