"""What the web tier and the workers share: small and dependency-light.

Invariants (tested in tests/core/test_import_rules.py):

* imports only the standard library, PyAV (``av``) and Pillow — all in ``requirements/base.txt``;
  never numpy, torch, Django, ``apps.*`` or ``workers.*``;
* the web tier (``apps/``, ``mediaintel/``) takes what it shares with the workers from here and
  never imports ``workers.engines`` (the web image has no numpy/torch); the workers import the
  same modules, so the web plans stages under exactly the versions the workers record, and an
  upload is accepted by exactly the checks the ``probe`` stage applies later.

Modules: :mod:`mediacommon.catalog` (what each stage runs and under which version),
:mod:`mediacommon.errors` (the permanent/transient error contract),
:mod:`mediacommon.container` (PyAV container facts and the verifying probe) and
:mod:`mediacommon.text` (text the database cannot store).
"""
