"""Export a trained LoRA (peft) as a llama.cpp GGUF adapter that the runtime hot-swaps.

Layout (llama.cpp's LoRA GGUF): ``general.type = "adapter"``, ``adapter.type = "lora"``,
``adapter.lora.alpha``, and for each adapted weight ``W`` of the base (GGUF name, e.g.
``blk.0.attn_q.weight``) two tensors ``W.lora_a`` (torch shape [r, in]) and ``W.lora_b``
([out, r]); llama.cpp adds ``scale * alpha / r * B @ A`` to ``W``, as peft does. dca also
records the base model it was trained on (``dca.base_model``, ``dca.base_sha256``) so an
adapter is never loaded on another model.

The file is written to a temporary name and renamed: a crash never leaves a half adapter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dca.errors import TrainError

BASE_MODEL_KEY = "dca.base_model"
BASE_SHA256_KEY = "dca.base_sha256"


def _tensor_map(arch: str, n_blocks: int) -> Any:
    import gguf

    by_name = {name: arch_id for arch_id, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in by_name:
        raise TrainError(f"architecture {arch!r} is not supported for LoRA export (gguf knows {len(by_name)} others)")
    return gguf.get_tensor_name_map(by_name[arch], n_blocks)


def _gguf_names(model: Any, arch: str, n_blocks: int) -> dict[str, str]:
    """peft parameter name -> GGUF tensor name, for every LoRA A and B matrix of ``model``."""
    names = _tensor_map(arch, n_blocks)
    out: dict[str, str] = {}
    for name, _ in model.named_parameters():
        if ".lora_A." not in name and ".lora_B." not in name:
            continue
        module, rest = name.split(".lora_", 1)
        which = rest[0].lower()  # "a" or "b"
        hf_name = module.removeprefix("base_model.model.") + ".weight"
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise TrainError(f"no GGUF name for {hf_name} in the {arch} architecture; adapt only its linear layers")
        out[name] = f"{gguf_name}.lora_{which}"
    if not out:
        raise TrainError("the model has no LoRA weights (is it a peft model?)")
    return out


def lora_tensors(model: Any, *, arch: str, n_blocks: int, dtype: str = "float16") -> dict[str, Any]:
    """GGUF tensor name -> numpy array (``dtype``: float16, the shipped size, or float32) for
    every LoRA A and B matrix of a peft model."""
    import numpy as np

    params = dict(model.named_parameters())
    return {
        gguf_name: params[name].detach().float().cpu().numpy().astype(getattr(np, dtype))
        for name, gguf_name in _gguf_names(model, arch, n_blocks).items()
    }


# GGUF block tensor -> the linear layer it is, in the architectures training supports (qwen2, llama)
_GGUF_LAYERS = {
    "attn_q": "q_proj",
    "attn_k": "k_proj",
    "attn_v": "v_proj",
    "attn_output": "o_proj",
    "ffn_gate": "gate_proj",
    "ffn_up": "up_proj",
    "ffn_down": "down_proj",
}


def adapter_shape(path: Path) -> tuple[int, float, tuple[str, ...]]:
    """(rank, alpha, target layers) of a GGUF LoRA adapter, read from its tensors and header."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path} is not a readable GGUF adapter ({exc})") from None
    field = reader.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    a_tensors = [t for t in reader.tensors if t.name.endswith(".lora_a")]
    if field is None or not a_tensors:
        raise TrainError(f"{path} is not a LoRA adapter (no alpha or no lora_a tensors)")
    alpha = float(field.parts[field.data[0]][0])
    rank = int(a_tensors[0].shape[-1])  # GGUF lists dimensions innermost first: [in, r]
    layers = {t.name.split(".")[2] for t in a_tensors if t.name.startswith("blk.")}
    unknown = sorted(layers - set(_GGUF_LAYERS))
    if unknown:
        raise TrainError(f"{path.name} adapts layers training does not know: {', '.join(unknown)}")
    return rank, alpha, tuple(v for k, v in _GGUF_LAYERS.items() if k in layers)


def import_lora(model: Any, path: Path, *, arch: str, base_model: str, alpha: float) -> None:
    """Load a GGUF LoRA adapter (as :func:`export_lora` writes it) into the LoRA of a peft
    ``model`` made with the same targets, rank and alpha; refuse one made for another base."""
    import gguf
    import numpy as np
    import torch

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path} is not a readable GGUF adapter ({exc})") from None

    def field(key: str) -> Any:
        item = reader.fields.get(key)
        if item is None:
            return None
        value = item.parts[item.data[0]]
        return bytes(value).decode("utf-8") if item.types[0] == gguf.GGUFValueType.STRING else value[0]

    if field(gguf.Keys.General.TYPE) != gguf.GGUFType.ADAPTER:
        raise TrainError(f"{path} is not a LoRA adapter")
    trained_on = field(BASE_MODEL_KEY)
    if trained_on and trained_on != base_model:
        raise TrainError(f"{path.name} was trained on {trained_on}, not on {base_model}; give --model {trained_on}")
    file_alpha = field(gguf.Keys.Adapter.LORA_ALPHA)
    if file_alpha is not None and float(file_alpha) != float(alpha):
        raise TrainError(f"{path.name} has LoRA alpha {float(file_alpha):g}; give --alpha {float(file_alpha):g}")
    tensors = {t.name: t for t in reader.tensors}
    params = dict(model.named_parameters())
    names = _gguf_names(model, arch, int(model.config.num_hidden_layers))
    missing = sorted(set(names.values()) - set(tensors))
    if missing or len(tensors) != len(names):
        raise TrainError(
            f"{path.name} adapts other layers than this run ({len(tensors)} tensors, the run has {len(names)}); "
            "give the same --rank and targets it was trained with"
        )
    with torch.no_grad():
        for name, gguf_name in names.items():
            tensor = tensors[gguf_name]
            array = np.asarray(tensor.data, dtype=np.float32).reshape(tuple(reversed([int(n) for n in tensor.shape])))
            if tuple(array.shape) != tuple(params[name].shape):
                raise TrainError(
                    f"{path.name}: {gguf_name} has shape {tuple(array.shape)}, the run has {tuple(params[name].shape)}; "
                    "give the --rank it was trained with"
                )
            params[name].copy_(torch.from_numpy(array))


def export_lora(
    model: Any,
    out: Path,
    *,
    arch: str,
    n_blocks: int,
    alpha: float,
    base_model: str,
    base_sha256: str = "",
    dtype: str = "float16",
) -> Path:
    """Write the LoRA of a peft ``model`` to ``out`` (GGUF adapter), atomically. float16 halves
    the file (r=8 on every linear layer of the 1.5B default: ~18 MB) at no measurable cost."""
    import gguf

    if dtype not in ("float16", "float32"):
        raise TrainError(f"export dtype must be float16 or float32, got {dtype!r}")
    tensors = lora_tensors(model, arch=arch, n_blocks=n_blocks, dtype=dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    try:
        writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        writer.add_string(BASE_MODEL_KEY, base_model)
        if base_sha256:
            writer.add_string(BASE_SHA256_KEY, base_sha256)
        for name, array in sorted(tensors.items()):
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(out)
    return out
