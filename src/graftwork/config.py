"""Typed, validated configuration for a training run.

:class:`FitConfig` is the single source of truth for a run's settings: the CLI builds it from its flags, the
Python API from keyword arguments, and the run folder stores it. It is validated once, when created, and every
problem is reported at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError, Problem

STRATEGIES = ("auto", "frozen", "gradual", "full", "lora")
TASKS = ("classify", "ner", "generate")
AUDIO_LONG = ("crop", "split")
CLASS_WEIGHTS = ("auto", "on", "off")
PRECISIONS = ("auto", "fp32", "bf16")
BN_STATS = ("pretrained", "update")
DEVICES = ("auto", "cpu", "cuda")
LOG_TO = ("tensorboard", "mlflow")


def _meta(help: str) -> dict[str, str]:
    return {"help": help}


@dataclass
class FitConfig:
    """Settings of one ``fit``. Field help strings are shown by ``graftwork fit --help``."""

    backbone: str | None = field(default=None, metadata=_meta(
        "pretrained network: torchvision:NAME, timm:NAME, hf:ID_OR_PATH or a local folder, or run:DIR to start "
        "from a trained classification or NER run's backbone; default: the preferred one for the data's modality "
        "whose weights are available"))
    task: str = field(default="classify", metadata=_meta(
        "classify (one label per example), ner (one BIO tag per token; CoNLL or JSONL tokens/tags input) or "
        "generate (fine-tune a causal language model on prompt/completion, messages or text; JSONL or CSV)"))
    strategy: str = field(default="auto", metadata=_meta(
        "how much of the backbone to adapt: auto, frozen, gradual, full or lora (low-rank adapters via PEFT)"))
    probe_c: float | None = field(default=None, metadata=_meta(
        "inverse L2 strength of the linear probe (scikit-learn's C, on standardised features); default: chosen "
        "on validation data from 1e-3 to 1"))
    batch_size: int = field(default=32, metadata=_meta("examples per batch, for feature extraction and training"))
    lr: float = field(default=1e-3, metadata=_meta("learning rate of the head (AdamW)"))
    lr_ratio: float = field(default=10.0, metadata=_meta(
        "the top unfrozen backbone group learns this many times slower than the head"))
    lr_decay: float = field(default=0.8, metadata=_meta(
        "each layer group below the top learns this fraction of the rate of the group above it"))
    unfreeze: int | None = field(default=None, metadata=_meta(
        "fine-tune exactly the top N layer groups (one stage) instead of the strategy's schedule"))
    lora_r: int = field(default=8, metadata=_meta("lora: rank of the low-rank adapters"))
    lora_alpha: float = field(default=16.0, metadata=_meta("lora: scaling of the adapters (alpha / r multiplies them)"))
    lora_dropout: float = field(default=0.0, metadata=_meta(
        "lora: dropout on the adapters' input (PEFT's default 0; each adapted layer then keeps a dropped copy of "
        "its input, which costs memory and time)"))
    lora_targets: str | None = field(default=None, metadata=_meta(
        "lora: comma-separated module names or a regular expression of the layers to adapt; default: chosen per "
        "architecture (attention projections and MLP layers for transformers, convolutions and linear layers "
        "of the top blocks for CNNs)"))
    stage_epochs: int | None = field(default=None, metadata=_meta(
        "maximum epochs of each fine-tuning stage; default: 10 for text classification (a few texts per class "
        "give only a few optimizer steps per epoch), 4 otherwise"))
    stage_patience: int | None = field(default=None, metadata=_meta(
        "fine-tuning epochs without validation improvement before a stage ends; default: 3 for text "
        "classification, 2 otherwise"))
    unfreeze_patience: int = field(default=1, metadata=_meta(
        "gradual: stages without validation improvement before unfreezing stops"))
    weight_decay: float = field(default=1e-2, metadata=_meta("AdamW weight decay"))
    refit: bool = field(default=True, metadata=_meta(
        "when the linear probe is the final model (frozen, or no fine-tuning stage beat it), retrain it on "
        "training + validation data (validation metrics are those of the model before the refit)"))
    l2sp: float = field(default=0.0, metadata=_meta(
        "fine-tuning: L2-SP strength, a pull of the trained backbone weights toward the pretrained ones instead "
        "of toward zero (Li et al. 2018), e.g. 0.01; 0: off"))
    wise: bool = field(default=False, metadata=_meta(
        "fine-tuning: WiSE-FT, keep the interpolation between the probe and the fine-tuned weights that is best "
        "on validation (Wortsman et al. 2022)"))
    contrastive: bool = field(default=True, metadata=_meta(
        "auto, few-shot text (a validation split under 20 examples, at most 120 examples): train SetFit's recipe "
        "(the encoder tuned contrastively on pairs of the texts, then logistic regressions on its raw and its "
        "unit-length embeddings) on all the texts; off: decide fine-tuning by k-fold as for images and audio"))
    control: bool = field(default=False, metadata=_meta(
        "also train the same architecture from random initialisation with the same settings, and report "
        "whether pretraining helps (started from run:DIR: also from the original pretrained weights, and report "
        "whether the source task helps)"))
    label_smoothing: float = field(default=0.0, metadata=_meta("label smoothing of the fine-tuning loss"))
    grad_clip: float = field(default=1.0, metadata=_meta("clip the gradient norm while fine-tuning (0: off)"))
    augment: bool | None = field(default=None, metadata=_meta(
        "image augmentation (random resized crop, flip); default: on when fine-tuning, off for frozen, "
        "where it would defeat the feature cache"))
    bn_stats: str = field(default="pretrained", metadata=_meta(
        "BatchNorm running statistics while fine-tuning: pretrained (kept fixed, in every layer; scale and shift "
        "still train) or update (recomputed from training batches in unfrozen groups); a randomly initialised "
        "network always updates them"))
    class_weights: str = field(default="auto", metadata=_meta(
        "class-weighted loss: auto (on when the largest class is more than 3x the smallest), on or off"))
    precision: str = field(default="auto", metadata=_meta("auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16"))
    seed: int = field(default=0, metadata=_meta("random seed: the same seed gives the same model"))
    val_fraction: float = field(default=0.2, metadata=_meta(
        "fraction of the training data held out (stratified) for validation when no val split is given"))
    device: str = field(default="auto", metadata=_meta("auto, cpu or cuda"))
    pretrained: bool = field(default=True, metadata=_meta("use pretrained weights (False: random init, on purpose)"))
    weights: str | None = field(default=None, metadata=_meta("explicit path to the backbone's weights file"))
    image_size: int | None = field(default=None, metadata=_meta(
        "input size of images (default: the backbone's pretraining size); smaller is faster, e.g. 96 or 128 "
        "for small source images"))
    skip_bad_files: bool = field(default=False, metadata=_meta(
        "skip unreadable files and bad rows (reported) instead of stopping"))
    text_column: str = field(default="text", metadata=_meta("column of a CSV/JSONL file holding the text"))
    label_column: str = field(default="label", metadata=_meta("column of a CSV/JSONL file holding the label"))
    groups: str | None = field(default=None, metadata=_meta(
        "per-group metrics and bias checks on the test (else validation) split: for CSV/JSONL text, the column "
        "holding each example's group; for an image folder, a CSV manifest with columns path,group"))
    audio_window: float | None = field(default=None, metadata=_meta(
        "audio: seconds of audio the backbone sees at once (default: the backbone's own, capped at 30)"))
    audio_long: str = field(default="split", metadata=_meta(
        "audio clips longer than the window: crop (keep the centre) or split (windows, features averaged)"))
    max_audio_seconds: float = field(default=600.0, metadata=_meta(
        "audio: the longest clip read, in seconds; a longer file is refused from its header, before it is "
        "decoded (it would need memory in proportion to its length)"))
    cache: bool = field(default=True, metadata=_meta("cache backbone features on disk"))
    cache_dir: str | None = field(default=None, metadata=_meta(
        "feature cache folder (default: $GRAFTWORK_CACHE or ~/.cache/graftwork)"))
    workers: int = field(default=0, metadata=_meta(
        "data-loading worker processes for feature extraction and fine-tuning (0: in-process; on a GPU machine, "
        "a few per GPU keep it fed)"))

    max_length: int = field(default=1024, metadata=_meta(
        "generate: the longest example in tokens (prompt and completion); longer ones are reported"))
    max_new_tokens: int = field(default=128, metadata=_meta(
        "generate: the most tokens generated per answer (validation, evaluation, prediction)"))
    few_shot: int = field(default=3, metadata=_meta(
        "generate: training examples shown in the prompt of the few-shot control (the base model, untrained)"))
    gradient_checkpointing: bool = field(default=False, metadata=_meta(
        "generate: recompute activations in the backward pass (less memory, about a third more time)"))
    gradient_accumulation: int = field(default=1, metadata=_meta(
        "generate: batches whose gradients are summed before each optimizer step"))
    trust_remote_code: bool = field(default=False, metadata=_meta(
        "generate: run the model repository's own Python code (only for models you trust)"))

    log_to: str | None = field(default=None, metadata=_meta(
        "experiment tracking: tensorboard, mlflow, or both comma-separated (optional extras); records the "
        "settings, every epoch's metrics, the findings and the run folder"))
    log_dir: str | None = field(default=None, metadata=_meta(
        "where tracking writes: default ./runs for tensorboard and ./mlruns for mlflow (local files; an "
        "http(s):// MLflow tracking URI only when given here)"))

    def __post_init__(self) -> None:
        if self.task == "classification":  # the name a run folder's config.json gives the task
            self.task = "classify"
        problems = validate(self)
        if problems:
            raise ConfigError("Invalid settings:", problems=problems,
                              hint="fix the parameters named above; `graftwork fit --help` lists them all")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stage_length(self, modality: str) -> tuple[int, int]:
        """(epochs, patience) of a fine-tuning stage: the settings, or the defaults for this kind of data.

        Text classification gets longer stages: 16 texts per class are 4 batches an epoch, so 4 epochs were 16
        optimizer steps; 10 epochs (patience 3) gave +1.4 points on average over 3 seeds (BENCHMARKS.md).
        """
        text = modality == "text" and self.task == "classify"
        epochs = self.stage_epochs if self.stage_epochs is not None else (10 if text else 4)
        patience = self.stage_patience if self.stage_patience is not None else (3 if text else 2)
        return epochs, patience

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _check(problems: list[Problem], ok: bool, name: str, expected: str, got: Any) -> None:
    if not ok:
        problems.append(Problem(f"'{name}'", f"must be {expected}. Got {got!r} instead."))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(cfg: FitConfig) -> list[Problem]:
    """Return every problem with ``cfg`` (empty when it is valid)."""
    p: list[Problem] = []
    _check(p, cfg.strategy in STRATEGIES, "strategy", f"one of {', '.join(STRATEGIES)}", cfg.strategy)
    _check(p, cfg.task in TASKS, "task", f"one of {', '.join(TASKS)}", cfg.task)
    _check(p, _is_int(cfg.lora_r) and cfg.lora_r >= 1, "lora_r", "an integer >= 1", cfg.lora_r)
    _check(p, isinstance(cfg.lora_alpha, (int, float)) and cfg.lora_alpha > 0, "lora_alpha", "a number > 0",
           cfg.lora_alpha)
    _check(p, isinstance(cfg.lora_dropout, (int, float)) and 0 <= cfg.lora_dropout < 1, "lora_dropout",
           "a number in [0, 1)", cfg.lora_dropout)
    _check(p, cfg.audio_long in AUDIO_LONG, "audio_long", f"one of {', '.join(AUDIO_LONG)}", cfg.audio_long)
    _check(p, cfg.audio_window is None or (isinstance(cfg.audio_window, (int, float)) and 0 < cfg.audio_window <= 30),
           "audio_window", "a number of seconds in (0, 30]", cfg.audio_window)
    _check(p, isinstance(cfg.max_audio_seconds, (int, float)) and not isinstance(cfg.max_audio_seconds, bool)
           and cfg.max_audio_seconds > 0, "max_audio_seconds", "a number of seconds > 0", cfg.max_audio_seconds)
    _check(p, cfg.class_weights in CLASS_WEIGHTS, "class_weights", f"one of {', '.join(CLASS_WEIGHTS)}",
           cfg.class_weights)
    _check(p, cfg.bn_stats in BN_STATS, "bn_stats", f"one of {', '.join(BN_STATS)}", cfg.bn_stats)
    _check(p, cfg.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}", cfg.precision)
    _check(p, isinstance(cfg.lr_ratio, (int, float)) and cfg.lr_ratio >= 1, "lr_ratio", "a number >= 1",
           cfg.lr_ratio)
    _check(p, isinstance(cfg.lr_decay, (int, float)) and 0 < cfg.lr_decay <= 1, "lr_decay", "a number in (0, 1]",
           cfg.lr_decay)
    _check(p, cfg.unfreeze is None or (_is_int(cfg.unfreeze) and cfg.unfreeze >= 1), "unfreeze",
           "an integer >= 1", cfg.unfreeze)
    _check(p, cfg.stage_epochs is None or (_is_int(cfg.stage_epochs) and cfg.stage_epochs >= 1), "stage_epochs",
           "an integer >= 1", cfg.stage_epochs)
    _check(p, cfg.stage_patience is None or (_is_int(cfg.stage_patience) and cfg.stage_patience >= 1),
           "stage_patience", "an integer >= 1", cfg.stage_patience)
    _check(p, _is_int(cfg.unfreeze_patience) and cfg.unfreeze_patience >= 0, "unfreeze_patience",
           "an integer >= 0", cfg.unfreeze_patience)
    _check(p, isinstance(cfg.label_smoothing, (int, float)) and 0 <= cfg.label_smoothing < 1, "label_smoothing",
           "a number in [0, 1)", cfg.label_smoothing)
    _check(p, isinstance(cfg.grad_clip, (int, float)) and cfg.grad_clip >= 0, "grad_clip", "a number >= 0",
           cfg.grad_clip)
    _check(p, isinstance(cfg.l2sp, (int, float)) and cfg.l2sp >= 0, "l2sp", "a number >= 0", cfg.l2sp)
    if cfg.strategy == "lora" and cfg.unfreeze is not None:
        p.append(Problem("'unfreeze'", "cannot be combined with strategy='lora' (LoRA trains adapters beside "
                         "frozen layers, it unfreezes none)."))
    if cfg.strategy == "lora" and cfg.l2sp:
        p.append(Problem("'l2sp'", "does not apply to strategy='lora': its base weights stay the pretrained ones."))
    if cfg.unfreeze is not None and cfg.strategy == "frozen":
        p.append(Problem("'unfreeze'", "cannot be combined with strategy='frozen' (nothing is unfrozen)."))
    _check(p, cfg.device in DEVICES, "device", f"one of {', '.join(DEVICES)}", cfg.device)
    _check(p, cfg.probe_c is None or (isinstance(cfg.probe_c, (int, float)) and cfg.probe_c > 0), "probe_c",
           "a number > 0", cfg.probe_c)
    _check(p, _is_int(cfg.batch_size) and cfg.batch_size >= 1, "batch_size", "an integer >= 1", cfg.batch_size)
    _check(p, _is_int(cfg.seed) and cfg.seed >= 0, "seed", "an integer >= 0", cfg.seed)
    _check(p, _is_int(cfg.workers) and cfg.workers >= 0, "workers", "an integer >= 0", cfg.workers)
    _check(p, cfg.image_size is None or (_is_int(cfg.image_size) and cfg.image_size >= 16), "image_size",
           "an integer >= 16", cfg.image_size)
    _check(p, isinstance(cfg.lr, (int, float)) and cfg.lr > 0, "lr", "a number > 0", cfg.lr)
    _check(p, isinstance(cfg.weight_decay, (int, float)) and cfg.weight_decay >= 0, "weight_decay",
           "a number >= 0", cfg.weight_decay)
    _check(p, isinstance(cfg.val_fraction, (int, float)) and 0 <= cfg.val_fraction < 1, "val_fraction",
           "a number in [0, 1)", cfg.val_fraction)
    if cfg.weights is not None and not cfg.pretrained:
        p.append(Problem("'weights'", "cannot be combined with pretrained=False (--no-pretrained)."))
    _check(p, cfg.log_to is None or (isinstance(cfg.log_to, str) and bool(cfg.log_to.strip()) and all(
        t.strip() in LOG_TO for t in cfg.log_to.split(","))), "log_to",
        f"one or more of {', '.join(LOG_TO)}, comma-separated", cfg.log_to)
    for name in ("max_length", "max_new_tokens", "gradient_accumulation"):
        _check(p, _is_int(getattr(cfg, name)) and getattr(cfg, name) >= 1, name, "an integer >= 1", getattr(cfg, name))
    _check(p, _is_int(cfg.few_shot) and cfg.few_shot >= 0, "few_shot", "an integer >= 0", cfg.few_shot)
    if cfg.task in TASKS:  # the settings a task does not read are errors; the rules live with each task
        from .tasks import get_task

        p += [Problem(f"'{name}'", f"{why} (--{name.replace('_', '-')}, task={cfg.task!r}).")
              for name, why in get_task(cfg.task).unsupported_settings(cfg)]
    return p
