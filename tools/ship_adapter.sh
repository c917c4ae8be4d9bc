#!/usr/bin/env bash
# Ship a trained adapter: copy it to models/adapters/, pin it in the catalog, git-track it.
#   tools/ship_adapter.sh runs/train/ref1/ref1.gguf qwen2.5-coder-1.5b-reason "notes"
set -euo pipefail
cd "$(dirname "$0")/.."
src=$1; name=$2; notes=$3
mkdir -p models/adapters
cp "$src" "models/adapters/$name.gguf"
size=$(stat -c %s "models/adapters/$name.gguf")
sha=$(sha256sum "models/adapters/$name.gguf" | cut -d' ' -f1)
grep -q '^!models/adapters/' .gitignore || cat >> .gitignore <<EOT
!models/adapters/
models/adapters/*
!models/adapters/$name.gguf
EOT
grep -q '"models/adapters"' pyproject.toml || sed -i 's|^"models/catalog.toml" = "dca/runtime/catalog.toml"$|"models/catalog.toml" = "dca/runtime/catalog.toml"\n"models/adapters" = "dca/runtime/adapters"|' pyproject.toml
cat >> models/catalog.toml <<EOT

[[model]]
name = "$name"
role = "adapter"
base = "qwen2.5-coder-1.5b"
default = true
file = "adapters/$name.gguf"
size = $size
sha256 = "$sha"
licence = "Apache-2.0 (a LoRA of the Apache-2.0 Qwen2.5-Coder-1.5B-Instruct; trained by dca on GSM8K train, MIT)"
notes = "$notes"
[model.source]
kind = "bundled"
EOT
echo "shipped $name: $size bytes, sha256 $sha"
