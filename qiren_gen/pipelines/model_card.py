"""Model card (README.md) for a saved ``QirenGenerationPipeline``: what it is, how to use it, how it was made; and
the free-form sections read back from a saved card, so a re-saved pipeline keeps them."""
from __future__ import annotations

from pathlib import Path

from ..io.atomic import write_text

CARD_FILE = "README.md"
"""The model card's file name in a pipeline folder (the Hub shows it as the repository's page)."""

KEPT_SECTIONS = ("Training", "Quality", "Limitations")
"""Free-form sections a training script fills in; they survive ``from_pretrained`` -> ``save_pretrained``."""


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _decoder_details(cfg) -> str:
    if "features" in cfg:
        circuits = cfg.features in ("circuit", "quantum")  # "quantum": the former name of "circuit"
        source = (f"{cfg.n_heads} circuits of {cfg.n_qubits} qubits ({cfg.entangler}, {cfg.n_reuploads} re-uploads)"
                  if circuits else f"{cfg.n_fourier} random Fourier frequencies")
        return (f"{'quantum' if circuits else cfg.features} coordinate features from {source}, then "
                f"{cfg.hidden_layers} synthesis layers of width {cfg.hidden_features}, modulation `{cfg.modulation}`")
    if "n_qubits" in cfg:
        return (f"{cfg.n_qubits} qubits, {cfg.hidden_layers} hidden layers, {cfg.n_reuploads} re-uploads, "
                f"{cfg.n_blocks} blocks, modulation `{cfg.modulation}`")
    return f"classical baseline, modulation `{cfg.modulation}`"


def generate_model_card(pipeline, sections: dict[str, str] | None = None, repo_id: str | None = None) -> str:
    """Markdown model card with Hub metadata, component table, usage and the given free-form sections."""
    sections = dict(sections or {})
    where = repo_id or "path/to/this/folder"
    size = pipeline.prior.config.sample_size
    body = [*_card_header(pipeline), *_usage_section(where), *_evaluation_section(where, size)]
    for name in KEPT_SECTIONS:
        if sections.get(name):
            body += [f"## {name}", "", sections[name].strip(), ""]
    return "\n".join(body)


def _component_table(pipeline) -> str:
    dec, mod, prior, scheduler = pipeline.decoder, pipeline.modulator, pipeline.prior, pipeline.scheduler
    rows = [
        ("decoder", type(dec).__name__, _params(dec), _decoder_details(dec.config)),
        ("modulator", type(mod).__name__, _params(mod), f"latent_dim {mod.config.latent_dim}"),
        ("prior", type(prior).__name__, _params(prior),
         f"residual MLP, {prior.config.num_blocks} blocks of width {prior.config.hidden_dim}"),
        ("scheduler", type(scheduler).__name__, 0,
         f"{scheduler.config.num_train_timesteps} training timesteps, `{scheduler.config.beta_schedule}` betas"),
    ]
    return "\n".join(f"| `{n}` | `{c}` | {p:,} | {d} |" for n, c, p, d in rows)


def _card_header(pipeline) -> list[str]:
    """Hub metadata, the title, what the model does and its component table."""
    size = pipeline.prior.config.sample_size
    kind = "grayscale" if pipeline.decoder.config.out_channels == 1 else "RGB"
    return [
        "---",
        "license: apache-2.0",
        "library_name: diffusers",
        "pipeline_tag: unconditional-image-generation",
        "tags:\n- qiren-gen\n- quantum-machine-learning\n- implicit-neural-representation\n- functa\n- diffusion",
        "---",
        "",
        "# QIREN functional diffusion model",
        "",
        f"Samples {kind} images at any resolution (trained at {size}x{size}): a "
        "latent diffusion prior draws a latent, a hypernetwork turns it into modulations of a quantum implicit "
        "neural representation ([QIREN](https://arxiv.org/abs/2406.03873)), and the decoder is evaluated on a "
        "coordinate grid of any size. Made with qiren-gen (`QirenGenerationPipeline`).",
        "",
        "| component | class | parameters | details |",
        "|---|---|---:|---|",
        _component_table(pipeline),
        "",
    ]


def _usage_section(where: str) -> list[str]:
    """How to load and sample: qiren-gen, plain diffusers, the command line and the demo."""
    return [
        "## Usage",
        "",
        "```python",
        "from qiren_gen.pipelines import QirenGenerationPipeline",
        "import torch",
        "",
        f'pipe = QirenGenerationPipeline.from_pretrained("{where}")',
        "images = pipe(batch_size=16, height=128, width=128, num_inference_steps=50,",
        "              generator=torch.Generator().manual_seed(0)).images",
        "```",
        "",
        "or with plain diffusers, which imports the class through this folder's `qiren_pipeline.py` (one line, "
        "`from qiren_gen.pipelines import QirenGenerationPipeline`; needs `pip install qiren-gen`):",
        "",
        "```python",
        "from diffusers import DiffusionPipeline",
        "",
        f'pipe = DiffusionPipeline.from_pretrained("{where}", trust_remote_code=True)  # a QirenGenerationPipeline',
        "```",
        "",
        "or from the command line:",
        "",
        "```bash",
        f"qiren-gen sample --pipeline {where} --num-images 16 --resolution 128 --output faces.png",
        "```",
        "",
        "Weights are safetensors. `QirenGenerationPipeline.from_pretrained` runs no code from this folder (it "
        "checks that `qiren_pipeline.py` is that one import and takes the class from the installed package); "
        "only diffusers' `trust_remote_code=True` imports the file. The decoder's circuits are simulated "
        "exactly (state vectors) by qiren-gen, on CPU or GPU.",
        "",
        "Try it in a page: `pip install \"qiren-gen[demo]\"`, then",
        "",
        "```bash",
        f"qiren-gen demo --pipeline {where}",
        "```",
        "",
    ]


def _evaluation_section(where: str, size: int) -> list[str]:
    """The FID / KID command."""
    return [
        "## Evaluation",
        "",
        "FID / KID with torch-fidelity's standard Inception features (the weights download once; offline, pass a "
        "local copy with `--fid-weights PATH`). Writes `metrics.json` and a sample grid:",
        "",
        "```bash",
        f"qiren-gen evaluate --pipeline {where} --reference REFERENCE_DATASET_OR_FOLDER --num-samples 50000 "
        f"--resolution {size} --output eval/",
        "```",
        "",
    ]


def parse_model_card_sections(text: str) -> dict[str, str]:
    """The ``## Training`` / ``## Quality`` / ``## Limitations`` sections of a model card, so a re-saved pipeline
    keeps them."""
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:].strip() if line[3:].strip() in KEPT_SECTIONS else None
            if current:
                sections[current] = ""
            continue
        if current:
            sections[current] += line + "\n"
    return {k: v.strip() + "\n" for k, v in sections.items()}


def read_model_card_sections(folder: str | Path) -> dict[str, str]:
    """The kept sections of ``folder``'s model card (``{}`` when the folder has none)."""
    card = Path(folder) / CARD_FILE
    return parse_model_card_sections(card.read_text()) if card.is_file() else {}


def write_model_card(pipeline, folder: str | Path) -> None:
    """Write ``pipeline``'s generated model card into ``folder`` (its kept sections and Hub location included)."""
    text = generate_model_card(pipeline, pipeline.model_card_sections, pipeline.model_card_location)
    write_text(Path(folder, CARD_FILE), text)
