"""Evaluation of the pipeline's engines on labelled data (``manage.py evaluate``).

* :mod:`.metrics` — pure quality measures (no Django, no numpy), unit-tested on known answers;
* :mod:`.dataset` — the manifest format, read and checked; :mod:`.shipped` — the generated set;
* :mod:`.engines` — the engines the pipeline runs, called in-process;
* :mod:`.run` — runs an engine set over a dataset and returns every number;
* :mod:`.report` — the HTML report, run comparison and draft policy; :mod:`.output` writes a run.
"""
