"""The pre-flight checks of every job kind run in the window's process, which must never import the ML stack.

safetensors' ``safe_open`` imports torch from Rust (no Python import hook sees it), which is how a
merge pre-flight once slipped past the import-linter contract: only ``sys.modules`` tells.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.adapters import make_adapter
from tests.import_check import run_fresh


def test_preflight_of_every_kind_imports_no_torch(tiny_llama: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "adapter")
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    specs = [
        {"kind": "train", "name": "t", "base_model": str(tiny_llama), "data": {"path": str(data)}},
        {"kind": "measure", "name": "t", "base_model": str(tiny_llama), "data": {"path": str(data)}},
        {"kind": "evaluate", "adapter": str(adapter)},
        {"kind": "merge", "adapter": str(adapter)},
        *({"kind": "export", "source": str(adapter), "target": target} for target in ("gguf", "gguf_lora", "adapter")),
    ]
    code = (
        "import json\n"
        "from pathlib import Path\n"
        "from backend.jobs.preflight import preflight\n"
        "from backend.core.task_specs import spec_from_dict\n"
        f"for spec in json.loads({json.dumps(specs)!r}):\n"
        f"    checks = preflight(spec_from_dict(spec), Path({str(tmp_path / 'jobs')!r}))\n"
        "    print(json.dumps([c.message for c in checks if c.level == 'error']))\n"
    )
    done = run_fresh(code)
    assert done.loaded == []
    errors = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(errors) == len(specs) and not any(errors), errors
