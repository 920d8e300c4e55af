"""Fix an existing ``.tflite`` so that the stock NNAPI delegate takes it whole, with exact rewrites only.

Modules, one idea each:

* :mod:`~deeplab_nnapi.fixer.model_io` — read/write through TFLite's schema object API (ai-edge-litert's
  ``schema_py_generated``), 16-byte aligned buffers, ``min_runtime_version`` metadata;
* :mod:`~deeplab_nnapi.fixer.graph` — editing the primary subgraph (tensors, constants, op codes, ops);
* :mod:`~deeplab_nnapi.fixer.table` — the rule table ``data/fix_rules.toml``;
* :mod:`~deeplab_nnapi.fixer.argmax`, :mod:`~deeplab_nnapi.fixer.resize`, :mod:`~deeplab_nnapi.fixer.pool`
  — one rewrite each, with why it is exact in its docstring;
* :mod:`~deeplab_nnapi.fixer.engine` — predictor in, rewrites, predictor out (:func:`fix_bytes`);
* :mod:`~deeplab_nnapi.fixer.agreement` — IN against OUT on images (:func:`compare`, :func:`label_maps`);
* :mod:`~deeplab_nnapi.fixer.report` — the text and JSON report.

From Python::

    from deeplab_nnapi.fixer.engine import FixOptions, fix_bytes
    result = fix_bytes(data, FixOptions(android_api=29, tf_version="2.21"))
    result.data, result.rewrites, result.before, result.after
"""
