"""Convert CTranslate2 Whisper weights to openai-whisper's ``.pt`` checkpoint format.

The CTranslate2 ``model.bin`` of a Whisper model holds the same tensors as the
original checkpoint, with the attention projections fused (``q|k|v`` for
self-attention, ``k|v`` for cross-attention). This module reads ``model.bin``
directly (no ctranslate2 import needed), splits the fused tensors and writes
``{"dims": {...}, "model_state_dict": {...}}`` as openai-whisper expects.

CLI::

    python -m workers.engines.whisper_convert --model base --out /path/base.pt
    python -m workers.engines.whisper_convert --model /path/to/ct2-dir --out /path/model.pt
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from workers.engines.base import PermanentEngineError

if TYPE_CHECKING:
    import torch

__all__ = ["convert_bundled", "convert_ct2_to_openai", "main", "read_ct2_variables"]

# CTranslate2 type ids, in the order of ``ctranslate2.specs.model_spec._dtype_to_type_id``.
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SUPPORTED_BINARY_VERSIONS = range(2, 7)


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise PermanentEngineError("truncated CTranslate2 model.bin")
    return struct.unpack("<" + fmt, data)[0]


def _read_str(f: BinaryIO) -> str:
    n = _read(f, "H")
    return f.read(n)[:-1].decode("utf-8")


def read_ct2_variables(model_bin: str | os.PathLike[str]) -> tuple[str, dict[str, torch.Tensor]]:
    """Read every variable of a CTranslate2 ``model.bin`` as torch tensors (aliases resolved).

    Returns ``(spec_name, variables)``. Quantized ``int8``/``int16`` weights are
    dequantized with their ``*_scale`` companions.
    """
    import torch

    torch_dtypes = {
        "float32": torch.float32,
        "int8": torch.int8,
        "int16": torch.int16,
        "int32": torch.int32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
    }
    variables: dict[str, torch.Tensor] = {}
    with open(model_bin, "rb") as f:
        version = _read(f, "I")
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise PermanentEngineError(f"unsupported CTranslate2 binary version {version}")
        spec = _read_str(f)
        _read(f, "I")  # spec revision
        for _ in range(_read(f, "I")):
            name = _read_str(f)
            rank = _read(f, "B")
            shape = [_read(f, "I") for _ in range(rank)]
            dtype = _CT2_DTYPES[_read(f, "B")]
            nbytes = _read(f, "I")
            raw = bytearray(f.read(nbytes))
            if len(raw) != nbytes:
                raise PermanentEngineError("truncated CTranslate2 model.bin")
            variables[name] = torch.frombuffer(raw, dtype=torch_dtypes[dtype]).reshape(shape)
        for _ in range(_read(f, "I")):
            alias, target = _read_str(f), _read_str(f)
            variables[alias] = variables[target]
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        base = name[: -len("_scale")]
        scale = variables.pop(name).float()
        weight = variables[base].float()
        variables[base] = weight / scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return spec, variables


def _layer_count(variables: dict[str, Any], prefix: str) -> int:
    pat = re.compile(rf"^{prefix}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for n in variables if (m := pat.match(n)))


def _scalar(t: torch.Tensor) -> int:
    return int(t.reshape(-1)[0].item())


def convert_ct2_to_openai(ct2_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Build an openai-whisper checkpoint dict (``dims`` + ``model_state_dict``) from a CT2 dir."""
    import torch

    model_bin = Path(ct2_dir) / "model.bin"
    if not model_bin.is_file():
        raise PermanentEngineError(f"no model.bin in {ct2_dir}")
    spec, v = read_ct2_variables(model_bin)
    if spec != "WhisperSpec":
        raise PermanentEngineError(f"{model_bin} is a {spec}, not a Whisper model")

    def f16(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float16).contiguous()

    sd: dict[str, torch.Tensor] = {}
    n_audio_layer = _layer_count(v, "encoder")
    n_text_layer = _layer_count(v, "decoder")
    enc_pos = v["encoder/position_encodings/encodings"]
    dec_pos = v["decoder/position_encodings/encodings"]
    emb = v["decoder/embeddings/weight"]
    n_audio_state, n_text_state = enc_pos.shape[1], dec_pos.shape[1]
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(enc_pos.shape[0]),
        "n_audio_state": int(n_audio_state),
        "n_audio_head": _scalar(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(emb.shape[0]),
        "n_text_ctx": int(dec_pos.shape[0]),
        "n_text_state": int(n_text_state),
        "n_text_head": _scalar(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }

    def linear(dst: str, src: str, *, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = f16(v[f"{src}/weight"])
        if bias:
            sd[f"{dst}.bias"] = f16(v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = f16(v[f"{src}/gamma"])
        sd[f"{dst}.bias"] = f16(v[f"{src}/beta"])

    def split(dst: str, names: tuple[str, ...], src: str, state: int) -> None:
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        for i, name in enumerate(names):
            sd[f"{dst}.{name}.weight"] = f16(w[i * state : (i + 1) * state])
            if name != "key":  # Whisper's key projections have no bias (CT2 stores zeros)
                sd[f"{dst}.{name}.bias"] = f16(b[i * state : (i + 1) * state])

    def block(dst: str, src: str, state: int, cross: bool) -> None:
        split(f"{dst}.attn", ("query", "key", "value"), f"{src}/self_attention/linear_0", state)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        if cross:
            linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
            split(f"{dst}.cross_attn", ("key", "value"), f"{src}/attention/linear_1", state)
            linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
            norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = enc_pos.float().contiguous()
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}", n_audio_state, cross=False)
    norm("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = f16(emb)
    sd["decoder.positional_embedding"] = f16(dec_pos)
    for i in range(n_text_layer):
        block(f"decoder.blocks.{i}", f"decoder/layer_{i}", n_text_state, cross=True)
    norm("decoder.ln", "decoder/layer_norm")
    return {"dims": dims, "model_state_dict": sd}


def convert_bundled(model: str, out: str | os.PathLike[str]) -> Path:
    """Convert a bundled (``base``, ``tiny.en``) or on-disk CT2 model to ``out`` atomically."""
    import torch

    from workers.engines.transcribe import resolve_ct2_model

    checkpoint = convert_ct2_to_openai(resolve_ct2_model(model))
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out_path.name + ".", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default="base", help="base | tiny.en | path to a CTranslate2 Whisper dir")
    parser.add_argument("--out", required=True, help="output .pt path")
    args = parser.parse_args(argv)
    try:
        path = convert_bundled(args.model, args.out)
    except PermanentEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
