"""Peak memory of `edge-lstm predict` on large pictures (the bound README states).

    python bench/predict_memory.py    # -> bench/results/predict_memory.json; needs export/model.onnx

Each picture goes through a fresh `edge-lstm predict` process; its peak resident memory is the
process's own VmHWM (Linux), read when it ends. The pictures are made here: a digit drawn on an
8000 x 8000 page (the 64-megapixel limit) as PNG and JPEG, and a 28 x 28 one for the baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (
    "import sys\nfrom edge_lstm.cli import main\nsys.argv = ['edge-lstm', 'predict', *sys.argv[1:]]\n"
    "try:\n    main()\nfinally:\n    hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
    "    print('peak_mb', int(hwm.split()[1]) / 1024, file=sys.stderr)\n"
)


def peak_mb(model: Path, picture: Path) -> tuple[float, str]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(model), str(picture)], capture_output=True, text=True)
    return float(proc.stderr.split("peak_mb")[1]), proc.stdout.strip()


def main() -> None:
    model = ROOT / "export" / "model.onnx"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        big = Image.new("RGB", (8000, 8000), (240, 240, 235))
        ImageDraw.Draw(big).line([(3000, 1500), (5000, 1500), (3500, 6500)], fill=(20, 20, 20), width=400)  # a 7
        pictures = {"8000x8000.png": big, "8000x8000.jpg": big, "28x28.png": Image.new("L", (28, 28), 0)}
        ImageDraw.Draw(pictures["28x28.png"]).line([(8, 7), (20, 7), (12, 22)], fill=255, width=3)
        for name, image in pictures.items():
            path = Path(tmp) / name
            image.save(path, **({"quality": 90} if name.endswith(".jpg") else {}))
            mb, answer = peak_mb(model, path)
            results.append({"picture": name, "peak_mb": round(mb, 1), "predict": answer.split(": ", 1)[-1]})
            print(results[-1], flush=True)
    report = {"command": "python bench/predict_memory.py", "results": results, "environment": describe()}
    (ROOT / "bench" / "results" / "predict_memory.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
