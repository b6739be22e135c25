"""A trained model in use: ``checkpoint`` (``model.pt``), ``forecaster`` (``Forecaster``, from
the file alone), ``schema``, ``limits`` and ``app`` (the HTTP server), ``export`` (TorchScript,
ONNX) and ``pyfunc`` (the MLflow model)."""
