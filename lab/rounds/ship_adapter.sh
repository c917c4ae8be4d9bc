#!/usr/bin/env bash
# Ship a trained adapter or verifier: copy it to models/adapters/, pin it in the catalog, git-track it.
#   lab/rounds/ship_adapter.sh runs/train/ref1/ref1.gguf qwen2.5-coder-1.5b-reason "notes"
#   lab/rounds/ship_adapter.sh runs/train/dpo1/dpo1.verifier.json qwen2.5-coder-1.5b-verifier "notes" verifier
# A verifier (a `dca train dpo` verifier file) ships as its adapter NAME.gguf, pinned, and
# NAME.verifier.json beside it; the adapter it was trained from must already ship (it is the
# verifier's reference).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$1; name=$2; notes=$3; role=${4:-adapter}
mkdir -p models/adapters
if [ "$role" = verifier ]; then
  .venv/bin/python - "$src" "$name" <<'EOF'
import json, shutil, sys
from pathlib import Path
from dca.runtime.preference import read_verifier
src, name = Path(sys.argv[1]), sys.argv[2]
verifier = read_verifier(src)
folder = Path("models/adapters")
if verifier.reference is not None and verifier.reference.resolve().parent != folder.resolve():
    sys.exit(f"the verifier's reference {verifier.reference} does not ship in {folder}: ship it first")
shutil.copyfile(verifier.adapter, folder / f"{name}.gguf")
data = json.loads(src.read_text(encoding="utf-8"))
data["adapter"] = f"{name}.gguf"
data["reference"] = verifier.reference.name if verifier.reference is not None else None
pairs = data.get("meta", {}).get("pairs")
if pairs and not Path(pairs).is_absolute():  # relative to the run's verifier file: name it from the repo
    try:
        data["meta"]["pairs"] = str((src.parent / pairs).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
(folder / f"{name}.verifier.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
EOF
else
  cp "$src" "models/adapters/$name.gguf"
fi
size=$(stat -c %s "models/adapters/$name.gguf")
sha=$(sha256sum "models/adapters/$name.gguf" | cut -d' ' -f1)
grep -q '^!models/adapters/$' .gitignore || printf '!models/adapters/\nmodels/adapters/*\n' >> .gitignore
echo "!models/adapters/$name.gguf" >> .gitignore
[ "$role" = verifier ] && echo "!models/adapters/$name.verifier.json" >> .gitignore
grep -q '"models/adapters"' pyproject.toml || sed -i 's|^"models/catalog.toml" = "dca/runtime/catalog.toml"$|"models/catalog.toml" = "dca/runtime/catalog.toml"\n"models/adapters" = "dca/runtime/adapters"|' pyproject.toml
cat >> models/catalog.toml <<EOT

[[model]]
name = "$name"
role = "$role"
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
echo "shipped $role $name: $size bytes, sha256 $sha"
