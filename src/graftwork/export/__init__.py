"""Writing a trained run in other forms: ONNX (:mod:`.onnx`, checked for parity by :mod:`.parity`) and a
Hugging Face folder (:mod:`.hf`). The export folders are read back without torch by :mod:`graftwork.runtime`.

Nothing is imported here, so that ``graftwork.export.*`` modules pull in torch only when they are used.
"""
