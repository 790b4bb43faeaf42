"""Devices: where the .tflite variants are timed.

- :mod:`.config`: the ``device`` and ``delegate`` groups' schemas (light);
- :mod:`.base`: the :class:`~.base.Device` interface, :func:`~.base.open_device` (a device
  option's ``_target_``), the runner's :class:`~.base.Protocol`;
- :mod:`.local`, :mod:`.ssh`: this machine, and a machine over SSH (a Raspberry Pi);
- :mod:`.readiness`: the check before any work; :mod:`.setup`: a venv on an SSH device;
- :mod:`.bundle`, :mod:`.locks`: what is shipped, and one timing job per device at a time;
- :mod:`.runner`: the self-contained file that runs on the device (no pruneflow imports).
"""
