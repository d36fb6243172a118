"""Writing a trained run in another form: ONNX (:mod:`.onnx`, the networks in :mod:`.graphs`, the
preprocessing as data in :mod:`.assets`, checked for parity by :mod:`.parity` and :mod:`.ner`). The export
folders are read back without torch by :mod:`graftwork.runtime`.

Nothing is imported here, so that ``graftwork.export.*`` modules pull in torch only when they are used.
"""
