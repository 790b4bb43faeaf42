"""Devices: where the .tflite variants are timed.

- :mod:`.config`: the ``device`` and ``delegate`` groups' schemas (light), and the kinds;
- :mod:`.base`: the :class:`~.base.Device` interface every kind implements (check, set up, lock
  for timing, run the runner, describe itself), :func:`~.base.open_device` (a device option's
  ``_target_``), the runner's :class:`~.base.Protocol`;
- :mod:`.local`, :mod:`.ssh`: this machine, and a machine over SSH (a Raspberry Pi; its setup
  makes a venv there);
- :mod:`.readiness`: the judgement of a device's probe before any work; :mod:`.energy`, what
  measures a device's energy (``device.energy``), decided there;
- :mod:`.bundle`, :mod:`.locks`: what is shipped, and one timing job per device at a time;
- :mod:`.runner`: the self-contained file that runs on the device (no pruneflow imports), and
  :mod:`.power_sampler`, shipped beside it and loaded only for the energy pass (stdlib only);
  :mod:`.result`: its result as the host reads it, typed.
"""
