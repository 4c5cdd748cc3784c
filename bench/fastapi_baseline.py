"""The server a user would write by hand, kept as the baseline `bench/serve.py` measures against:
FastAPI with a pydantic body of JSON lists, one onnxruntime `session.run` per request, uvicorn's
defaults. (Not part of edge-lstm; `pip install fastapi` to run it.)

    python bench/fastapi_baseline.py MODEL.onnx PORT

POST /predict {"image": [[28 floats] x 28]} -> {"logits": [10 floats]}
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
app = FastAPI()


class Image(BaseModel):
    image: list[list[float]]


@app.post("/predict")
def predict(body: Image) -> dict[str, list[float]]:
    x = np.asarray(body.image, dtype=np.float32)[None]
    (logits,) = session.run(["logits"], {"images": x})
    return {"logits": logits[0].tolist()}


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
