#!/usr/bin/env python3
"""The house's rules of inclusion, read from the sources (docs/architecture.md, "Layers").

  python3 test_layering.py ROOT                 checks the tree at ROOT; exit 1 on a violation
  python3 test_layering.py --self-test          plants each kind of violation in a scratch tree
                                                 and fails unless every one is reported
  python3 test_layering.py --native BUILD_DIR   checks BUILD_DIR/compile_commands.json: only the
                                                 baseline module may be compiled -march=native,
                                                 and `waypoint` must not link it

The rules:
  1. Modules depend one way: index <- engine <- {http, learn} <- bench. A file may include its own
     module's files and those of the modules below it; http and learn do not include each other.
  2. Commands are leaves: nothing includes a file under a `cli/` folder but that folder's files.
  3. The command toolkit (engine/command: options, progress bars, plots) is for commands: library
     code (every folder but `cli/` ones, engine/command itself and bench's tool executables at
     bench/*.cpp) reports through observers and returns data instead.
  4. LibTorch is included by learn/'s .cpp files only; Boost.Beast and Asio by http/ and bench/.
  5. index/ includes no JSON library: the wire and config formats live above it.
"""
import json
import os
import re
import shutil
import sys
import tempfile

MODULES = ["index", "engine", "http", "learn", "bench"]
ALLOWED = {
    "index": {"index"},
    "engine": {"index", "engine"},
    "http": {"index", "engine", "http"},
    "learn": {"index", "engine", "learn"},
    "bench": {"index", "engine", "http", "learn", "bench"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc")


def sources(root):
    for module in MODULES:
        base = os.path.join(root, module)
        for dirpath, _, files in os.walk(base):
            for f in sorted(files):
                if f.endswith(SOURCE_EXT):
                    path = os.path.join(dirpath, f)
                    yield os.path.relpath(path, root).replace(os.sep, "/")


def cli_folder(path):
    """The `.../cli` folder a path lies in, or None."""
    parts = path.split("/")
    for i, p in enumerate(parts[:-1]):
        if p == "cli":
            return "/".join(parts[: i + 1])
    return None


def may_use_toolkit(path):
    if cli_folder(path) or path.startswith("engine/command/"):
        return True
    parts = path.split("/")
    return parts[0] == "bench" and len(parts) == 2  # bench's tool executables (bench/*.cpp)


def check_tree(root):
    problems = []
    for path in sources(root):
        module = path.split("/")[0]
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for kind, target in INCLUDE.findall(text):
            where = f"{path}: #include {'<' if kind == '<' else chr(34)}{target}"
            where += ">" if kind == "<" else chr(34)
            if kind == "<":
                if target.startswith("torch/") and not (
                    module == "learn" and path.endswith(".cpp")
                ):
                    problems.append(f"{where}: LibTorch outside learn/'s .cpp files (rule 4)")
                if target.startswith(("boost/beast", "boost/asio")) and module not in (
                    "http",
                    "bench",
                ):
                    problems.append(f"{where}: Beast/Asio outside http/ and bench/ (rule 4)")
                if target.startswith("nlohmann/") and module == "index":
                    problems.append(f"{where}: a JSON library in index/ (rule 5)")
                continue
            top = target.split("/")[0]
            if top not in MODULES:
                continue  # a header beside the file (tests' helpers) or a generated one
            if top not in ALLOWED[module]:
                problems.append(f"{where}: {module}/ may not include {top}/ (rule 1)")
            folder = cli_folder(target)
            if folder and cli_folder(path) != folder:
                problems.append(f"{where}: command files are leaves (rule 2)")
            if target.startswith("engine/command/") and not may_use_toolkit(path):
                problems.append(
                    f"{where}: library code reports through observers, not the command "
                    "toolkit (rule 3)"
                )
    return problems


def self_test():
    """Every rule must catch a planted violation, and a clean tree must pass."""
    planted = {
        "index/a.h": '#include "engine/collection.h"\n',
        "engine/b.cpp": '#include "http/api.h"\n',
        "http/c.cpp": '#include "learn/pruner.h"\n',
        "learn/d.cpp": '#include "bench/runner/bench_runner.h"\n',
        "engine/e.cpp": '#include "engine/cli/main.cpp"\n',
        "learn/f.cpp": '#include "engine/command/progress.h"\n',
        "engine/g.cpp": "#include <torch/torch.h>\n",
        "learn/h.h": "#include <torch/torch.h>\n",
        "engine/i.cpp": "#include <boost/beast/http.hpp>\n",
        "index/j.cpp": "#include <nlohmann/json.hpp>\n",
    }
    clean = {
        "index/ok.h": '#include "index/error.h"\n#include <vector>\n',
        "engine/ok.cpp": '#include "index/index.h"\n#include <nlohmann/json.hpp>\n',
        "engine/cli/ok.cpp": '#include "engine/command/args.h"\n#include "engine/cli/x.h"\n',
        "learn/ok.cpp": '#include "engine/tune.h"\n#include <torch/torch.h>\n',
        "learn/cli/ok.cpp": '#include "learn/ok.h"\n#include "engine/command/plot.h"\n',
        "bench/tool.cpp": '#include "engine/command/args.h"\n#include "http/client.h"\n',
        "bench/runner/ok.cpp": '#include "learn/ok.h"\n#include <boost/asio.hpp>\n',
    }
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in clean.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            with open(os.path.join(tmp, name), "w") as f:
                f.write(body)
        problems = check_tree(tmp)
        if problems:
            failures.append("a clean tree was reported: " + "; ".join(problems))
        for name, body in planted.items():
            scratch = os.path.join(tmp, "planted")
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(tmp, scratch, ignore=shutil.ignore_patterns("planted"))
            os.makedirs(os.path.dirname(os.path.join(scratch, name)), exist_ok=True)
            with open(os.path.join(scratch, name), "w") as f:
                f.write(body)
            found = check_tree(scratch)
            if not any(p.startswith(name + ":") for p in found):
                failures.append(f"planted {name} ({body.strip()}) was not reported")
    for f in failures:
        print("self-test:", f)
    print(f"self-test: {len(planted)} planted violations, {len(failures)} missed")
    return 1 if failures else 0


def check_native(build):
    cache = os.path.join(build, "CMakeCache.txt")
    with open(cache) as f:
        if re.search(r"^WAYPOINT_NATIVE_ARCH:BOOL=ON$", f.read(), re.M):
            print("WAYPOINT_NATIVE_ARCH=ON: everything is built -march=native on purpose")
            return 0
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    problems = []
    native = 0
    for c in commands:
        if "-march=native" not in c["command"]:
            continue
        native += 1
        if "/bench/baselines/" not in c["file"]:
            problems.append(f"{c['file']} is compiled with -march=native")
    link = os.path.join(build, "CMakeFiles", "waypoint.dir", "link.txt")
    with open(link) as f:
        if "waypoint_hnswlib" in f.read():
            problems.append("the waypoint executable links the -march=native baseline module")
    for p in problems:
        print(p)
    print(f"{len(commands)} compiled files, {native} with -march=native (the baseline module)")
    return 1 if problems else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) == 3 and argv[1] == "--native":
        return check_native(argv[2])
    if len(argv) != 2:
        print(__doc__)
        return 2
    problems = check_tree(argv[1])
    for p in problems:
        print(p)
    print(f"{len(list(sources(argv[1])))} files read, {len(problems)} upward or forbidden includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
