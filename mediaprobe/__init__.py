"""What the web tier and the workers share about reading media: small and dependency-light.

Invariants (tested in tests/core/test_import_rules.py):

* imports only the standard library, PyAV (``av``) and Pillow — all in ``requirements/base.txt``;
  never numpy, torch, Django, ``apps.*`` or ``workers.*``;
* the web tier (``apps/``, ``mediaintel/``) imports media-reading code from here, never from
  ``workers.engines`` (the web image has no numpy/torch); the worker engines import it too, so
  an upload is accepted by exactly the checks the ``probe`` stage applies later.

Modules: :mod:`mediaprobe.errors` (the permanent/transient error contract) and
:mod:`mediaprobe.container` (PyAV container facts and the verifying probe).
"""
