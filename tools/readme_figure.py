"""Make docs/gallery.png, the README's picture: held-out KanjiVG characters, both shipped models'
reconstructions of them (the LSTM 256 trained on a CPU, the paper's HyperLSTM 2048 trained on a
GPU), and new characters the HyperLSTM samples from the prior.

    python tools/readme_figure.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from sketchlib import data, pretrained, render, sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> Path:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    lstm, _, _ = pretrained.load_pretrained("kanjivg")
    hyper, _, info = pretrained.load_pretrained("kanjivg_hyper")
    ds = data.load_dataset("kanjivg")
    idx = list(range(0, 8 * 37, 37))  # 8 test characters, spread over the split
    real = [ds.test[i] for i in idx]
    labels = [ds.labels["test"][i] for i in idx] if ds.labels.get("test") else [""] * len(idx)
    g = torch.Generator().manual_seed(1)
    recon_lstm = sample.reconstruct(lstm, real, temperature=0.1, generator=g)
    recon_hyper = sample.reconstruct(hyper, real, temperature=0.1, generator=g)
    prior = sample.sample(hyper, n=8, temperature=0.4, generator=g)
    # Code points, not the characters: matplotlib's default font has no CJK glyphs.
    titles = ([f"U+{ord(c):04X}" if c else "test" for c in labels] + ["LSTM 256"] * 8 + ["Hyper 2048"] * 8
              + ["sampled"] * 8)
    fig = render.draw_grid(real + recon_lstm + recon_hyper + prior, titles=titles, ncols=8, cell_size=1.4)
    out = ROOT / "docs" / "gallery.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out} from {info.get('name', 'kanjivg')} (step {info.get('step')})")
    return out


if __name__ == "__main__":
    main()
