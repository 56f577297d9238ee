"""The registered model as MLflow users load it: ``predict(features)`` is a one-column frame,
``mql_probability``, the calibrated probability that each lead converts.

MLflow runs this file when it loads the model ("models from code": nothing is pickled); leadml
never imports it. Its artifacts are a leadml export bundle: ``model.skops`` (loaded with skops,
trusting only the types ``metadata.json`` lists, which leadml checked at training) and
``metadata.json`` (the feature names, the file's SHA-256). A model file changed since training
is refused here too, before anything is built from it.
"""

import hashlib
import json

import pandas as pd
import skops.io
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

OUTPUT = "mql_probability"


class MQLProbability(PythonModel):
    """The probability that a lead converts, from leadml's calibrated model."""

    def load_context(self, context):
        path = context.artifacts["model"]
        with open(context.artifacts["metadata"]) as stream:
            metadata = json.load(stream)
        with open(path, "rb") as stream:
            found = hashlib.file_digest(stream, "sha256").hexdigest()
        if found != metadata["model_sha256"]:
            raise ValueError(
                f"{path} has SHA-256 {found[:12]}…, but {metadata['model_sha256'][:12]}… was "
                "recorded at training: the file was changed since; refusing to load it"
            )
        self.features = list(metadata["feature_names"])
        self.model = skops.io.load(path, trusted=metadata["skops_trusted_types"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        probability = self.model.predict_proba(model_input[self.features])[:, 1]
        return pd.DataFrame({OUTPUT: probability}, index=model_input.index)


set_model(MQLProbability())
