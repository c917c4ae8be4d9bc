"""Read the header of a GGUF file (metadata and tensor shapes) without loading the model.

Pure Python, so ``dca models add`` and ``dca doctor`` can inspect a file without
llama.cpp. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import stat as stat_module
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dca.errors import GGUFError

GGUF_MAGIC = b"GGUF"
# value type id -> struct format of a scalar
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 28  # a longer length means a corrupt header, not a real string
_MAX_DEPTH = 4  # arrays of arrays nested deeper than this mean a corrupt (or hostile) header


@dataclass(frozen=True, kw_only=True)
class GGUFInfo:
    """What ``dca models add`` reports about a GGUF file."""

    version: int  # GGUF format version
    architecture: str  # general.architecture, e.g. "qwen2"
    name: str  # general.name, "" when absent
    n_parameters: int  # sum of all tensor element counts
    context_length: int  # <arch>.context_length, 0 when absent
    has_chat_template: bool  # tokenizer.chat_template present
    n_tensors: int
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)  # scalar and string keys

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "architecture": self.architecture,
            "name": self.name,
            "n_parameters": self.n_parameters,
            "context_length": self.context_length,
            "has_chat_template": self.has_chat_template,
            "n_tensors": self.n_tensors,
        }


class _Reader:
    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def take(self, n: int) -> bytes:
        data = self._handle.read(n)
        if len(data) != n:
            raise EOFError
        return data

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > _MAX_STRING:
            raise ValueError(f"string length {length}")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, type_id: int, keep: bool = True, depth: int = 0) -> Any:
        if type_id in _SCALARS:
            return self.scalar(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY:
            if depth >= _MAX_DEPTH:
                raise ValueError(f"metadata arrays nested more than {_MAX_DEPTH} deep")
            item_type, count = self.scalar("<I"), self.scalar("<Q")
            if item_type in _SCALARS and not keep:
                # Skip large arrays (token scores, types) without decoding each item.
                self._handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
                return None
            items = [self.value(item_type, keep, depth + 1) for _ in range(count)]
            return items if keep else None
        raise ValueError(f"unknown value type {type_id}")


def read_gguf_info(path: Path) -> GGUFInfo:
    """Parse the header of ``path``; raise GGUFError when it is not a complete GGUF file."""
    try:
        stat = path.stat()  # follows symlinks; a loop raises here
        if stat_module.S_ISDIR(stat.st_mode):
            raise IsADirectoryError
        if not stat_module.S_ISREG(stat.st_mode):  # a FIFO or a device would block or never end
            raise GGUFError(f"{path} is not a regular file; give the path of a .gguf file")
        size = stat.st_size
        with path.open("rb") as handle:
            reader = _Reader(handle)
            if reader.take(4) != GGUF_MAGIC:
                raise GGUFError(f"{path} is not a GGUF file (wrong magic bytes); convert it with llama.cpp first")
            version = reader.scalar("<I")
            n_tensors, n_kv = reader.scalar("<Q"), reader.scalar("<Q")
            meta: dict[str, Any] = {}
            for _ in range(n_kv):
                key = reader.string()
                type_id = reader.scalar("<I")
                meta[key] = reader.value(type_id, keep=not key.startswith("tokenizer.ggml."))
            n_parameters = 0
            max_offset = 0
            for _ in range(n_tensors):
                reader.string()
                n_dims = reader.scalar("<I")
                count = 1
                for _ in range(n_dims):
                    count *= reader.scalar("<Q")
                reader.scalar("<I")  # ggml type
                max_offset = max(max_offset, reader.scalar("<Q"))
                n_parameters += count
            alignment = meta.get("general.alignment", 32)
            if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0:
                raise ValueError(f"general.alignment is {alignment!r}, not a positive integer")
            data_start = -(-handle.tell() // alignment) * alignment
            # The last tensor must start inside the file; sha256 pins catch subtler damage.
            if n_tensors and data_start + max_offset >= size:
                raise EOFError
    except GGUFError:
        raise
    except FileNotFoundError:
        raise GGUFError(f"{path} does not exist") from None
    except (RuntimeError, OSError) as exc:  # a symlink loop, no permission, an I/O error
        if isinstance(exc, IsADirectoryError):
            raise GGUFError(f"{path} is a folder; give the path of a .gguf file") from None
        raise GGUFError(f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    except EOFError:
        raise GGUFError(f"{path} is truncated (the file ends inside its header or data); download it again") from None
    except (ValueError, struct.error, OverflowError) as exc:
        raise GGUFError(f"{path} has a corrupt GGUF header ({exc}); download it again") from None
    arch = meta.get("general.architecture", "")
    if not arch or not isinstance(arch, str):
        raise GGUFError(f"{path} has no general.architecture in its metadata; it is not a model file")
    if n_tensors == 0:
        raise GGUFError(f"{path} holds no tensors (a header alone); it is not a model file")
    context_length = meta.get(f"{arch}.context_length", 0)
    if not isinstance(context_length, int) or isinstance(context_length, bool) or context_length < 0:
        raise GGUFError(f"{path} has a corrupt GGUF header ({arch}.context_length is {context_length!r})")
    return GGUFInfo(
        version=version,
        architecture=arch,
        name=str(meta.get("general.name", "")),
        n_parameters=n_parameters,
        context_length=context_length,
        has_chat_template="tokenizer.chat_template" in meta,
        n_tensors=n_tensors,
        metadata={k: v for k, v in meta.items() if isinstance(v, str | int | float)},
    )
