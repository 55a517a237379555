"""Generate Python code and .pyi stubs for every proto under protos/ in one step.

The output goes to services/humiao/api/ (ignored by git), so the generated modules
import as `humiao.api.<family>.v1.<name>_pb2`.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[3]
PROTOS = ROOT / "protos"
OUT = ROOT / "services"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    import google.rpc.status_pb2 as status_pb2  # googleapis-common-protos ships the .proto too

    google_apis = str(Path(status_pb2.__file__).resolve().parents[2])
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"-I{google_apis}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *sources,
    ]
    code = protoc.main(args)
    if code != 0:
        print("protoc failed", file=sys.stderr)
        return int(code)
    api = OUT / "humiao" / "api"
    for folder in [api, *(p for p in api.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    print(f"generated {len(sources)} protos into {api.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
