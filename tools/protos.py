"""Generates the Python contracts and Envoy's descriptor set from `protos/`, checks drift, runs buf lint.

Usage: python tools/protos.py generate | check | lint
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
CONTRACTS_SRC = ROOT / "libs" / "contracts" / "src"
GENERATED = CONTRACTS_SRC / "cvmatch" / "api"
DESCRIPTOR = ROOT / "deploy" / "envoy" / "cvmatch.pb"
BIN = Path(sys.executable).parent
# The googleapis protos (google/api, google/rpc) ship inside googleapis-common-protos.
SITE = Path(sysconfig.get_paths()["purelib"])


def _proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))


def _grpc_include() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def _protoc(args: list[str]) -> None:
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{SITE}",
        f"-I{_grpc_include()}",
        *args,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)


def generate(out_src: Path, descriptor: Path) -> None:
    """Writes the generated package under out_src and the descriptor set to descriptor."""
    api = out_src / "cvmatch" / "api"
    if api.exists():
        shutil.rmtree(api)
    api.mkdir(parents=True)
    files = _proto_files()
    _protoc(
        [
            f"--python_out={out_src}",
            f"--grpc_python_out={out_src}",
            f"--mypy_out={out_src}",
            f"--mypy_grpc_out={out_src}",
            "--mypy_opt=quiet",
            "--mypy_grpc_opt=quiet",
            f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
            *files,
        ]
    )
    # Packages, so that tools which do not follow namespace packages still find the modules;
    # `cvmatch` itself stays a namespace shared by every distribution.
    for d in [api, *[p for p in api.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    (api / "py.typed").touch()
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    # Envoy needs every type reachable from the gateway, plus the error details it renders.
    _protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor}",
            "cvmatch/api/gateway/v1/gateway_service.proto",
            "google/rpc/error_details.proto",
            "google/rpc/status.proto",
        ]
    )


def check() -> int:
    """Fails when the committed generated code or descriptor differs from a fresh build."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "src"
        desc = Path(tmp) / "cvmatch.pb"
        generate(out, desc)
        cmp = filecmp.dircmp(out / "cvmatch" / "api", GENERATED)
        problems: list[str] = []

        def walk(c: filecmp.dircmp[str], prefix: str) -> None:
            problems.extend(f"only in fresh build: {prefix}{n}" for n in c.left_only)
            problems.extend(f"only in libs/contracts: {prefix}{n}" for n in c.right_only
                            if n != "__pycache__")
            problems.extend(f"differs: {prefix}{n}" for n in c.diff_files)
            # dircmp compares shallowly by stat; compare content explicitly.
            for n in c.same_files:
                if (Path(c.left) / n).read_bytes() != (Path(c.right) / n).read_bytes():
                    problems.append(f"differs: {prefix}{n}")
            for name, sub in c.subdirs.items():
                if name != "__pycache__":
                    walk(sub, f"{prefix}{name}/")

        walk(cmp, "")
        if desc.read_bytes() != DESCRIPTOR.read_bytes():
            problems.append(f"differs: {DESCRIPTOR.relative_to(ROOT)}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("generated contracts are stale: run `make protos`", file=sys.stderr)
        return 1
    return 0


def lint() -> int:
    """Runs buf lint over protos/ with the googleapis protos as an import-only module."""
    with tempfile.TemporaryDirectory() as tmp:
        third = Path(tmp) / "third_party"
        for sub in ("google/api", "google/rpc"):
            shutil.copytree(SITE / sub, third / sub, ignore=shutil.ignore_patterns("*.py", "*.pyi", "__pycache__"))
        shutil.copytree(_grpc_include() / "google" / "protobuf", third / "google" / "protobuf",
                        ignore=shutil.ignore_patterns("compiler"))
        work = Path(tmp) / "ws"
        shutil.copytree(PROTOS, work / "protos")
        shutil.copy(ROOT / "buf.yaml", work / "buf.yaml")
        os.symlink(third, work / "third_party")
        r = subprocess.run([str(BIN / "buf"), "lint"], cwd=work)
        return r.returncode


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else "generate"
    if cmd == "generate":
        generate(CONTRACTS_SRC, DESCRIPTOR)
        return 0
    if cmd == "check":
        return check()
    if cmd == "lint":
        return lint()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
