#!/usr/bin/env python3
"""Checks an Unreal Engine plugin tree for the Unreal Header Tool (UHT) rules that break a
build or silently break replication, without the engine (no Unreal exists on our machines).

Usage:
    python3 ci/lint-unreal.py <plugin-dir>     check the tree
    python3 ci/lint-unreal.py --list-rules     print the rule ids, one a line

Exit status: 0 clean; 1 findings, printed one a line as `path:line: rule-id: message`;
2 usage or I/O errors (message on stderr).

Every .h/.cpp under `<plugin-dir>/Source` is read. Comments are blanked (line numbers kept)
and string literal contents are blanked before the structure is parsed, so commented-out
macros and parentheses inside strings do not count; specifier lists may span lines and nest
parentheses (`meta=(...)`). A file's module is the nearest enclosing folder `<X>` that holds
`<X>.Build.cs` (else the first folder under `Source/`).

Rules:
  generated-body          Every UCLASS/USTRUCT/UINTERFACE declaration has GENERATED_BODY()
                          (or GENERATED_UCLASS_BODY()/GENERATED_USTRUCT_BODY()/...) directly
                          in its body.
  generated-include-last  A header that declares reflected types (UCLASS, USTRUCT,
                          UINTERFACE, UENUM) includes `<FileName>.generated.h`, named after
                          the header itself, as its last #include.
  rpc-implementation      Every UFUNCTION with Server, Client or NetMulticast has a
                          `<Class>::<Func>_Implementation` definition in the module (and
                          `<Class>::<Func>_Validate` when WithValidation is given).
  onrep-exists            Every `ReplicatedUsing=OnRep_X` names a function `OnRep_X` declared
                          as a UFUNCTION in the same class.
  replicated-registered   Every Replicated/ReplicatedUsing UPROPERTY of a UCLASS is registered
                          (DOREPLIFETIME, DOREPLIFETIME_CONDITION, ... with the class name or
                          ThisClass) in that class's GetLifetimeReplicatedProps, and a class
                          with replicated properties defines GetLifetimeReplicatedProps.
  api-macro               `class <X>_API Name` / `struct <X>_API Name` use the macro of the
                          module the file belongs to (`Source/<Module>/...` -> `<MODULE>_API`).
  uplugin                 Exactly one `.uplugin` at the plugin root, valid JSON, with
                          FileVersion 3, VersionName, FriendlyName, a non-empty Modules list
                          whose entries have Name, Type and LoadingPhase (known values); each
                          module Name has `Source/.../<Name>/<Name>.Build.cs`; every
                          `<X>/<X>.Build.cs` whose module is not External is listed;
                          PlatformAllowList/PlatformDenyList/SupportedTargetPlatforms hold
                          known platform names.

Limits (not done): the preprocessor is not evaluated (`#if` branches all count), macros are
not expanded, and a base class's declarations are not looked up (OnRep functions and RPC
bodies must be in the class itself, as UHT requires for the class that declares them).
"""

import json
import os
import re
import sys

RULES = [
    "generated-body",
    "generated-include-last",
    "rpc-implementation",
    "onrep-exists",
    "replicated-registered",
    "api-macro",
    "uplugin",
]

KNOWN_PLATFORMS = {
    "Win64", "Mac", "Linux", "LinuxArm64", "Android", "IOS", "TVOS", "VisionOS",
    "PS4", "PS5", "XboxOne", "XSX", "Switch", "HoloLens", "Hololens",
}
KNOWN_MODULE_TYPES = {
    "Runtime", "RuntimeNoCommandlet", "RuntimeAndProgram", "CookedOnly", "UncookedOnly",
    "Developer", "DeveloperTool", "Editor", "EditorNoCommandlet", "EditorAndProgram",
    "Program", "ServerOnly", "ClientOnly", "ClientOnlyNoCommandlet",
}
KNOWN_LOADING_PHASES = {
    "EarliestPossible", "PostConfigInit", "PostSplashScreen", "PreEarlyLoadingScreen",
    "PreLoadingScreen", "PreDefault", "Default", "PostDefault", "PostEngineInit", "None",
}
RPC_SPECIFIERS = {"server", "client", "netmulticast"}


class UsageError(Exception):
    """A problem with the command line or the file system (exit status 2)."""


# --- source text ----------------------------------------------------------------------


def blank_comments(text, blank_strings):
    """Returns `text` with comments (and, if asked, string/char literal contents) replaced
    by spaces; newlines are kept so offsets map to the same lines."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for k in range(i, end):
                if text[k] != "\n":
                    out[k] = " "
            i = end
        elif c == "R" and i + 1 < n and text[i + 1] == '"' and (i == 0 or not _ident(text[i - 1])):
            # Raw string R"delim( ... )delim"
            open_paren = text.find("(", i + 2)
            if open_paren < 0:
                i += 1
                continue
            delim = text[i + 2:open_paren]
            close = text.find(")" + delim + '"', open_paren + 1)
            close = n if close < 0 else close
            if blank_strings:
                for k in range(open_paren + 1, close):
                    if text[k] != "\n":
                        out[k] = " "
            i = close + len(delim) + 2
        elif c == "'" and _digit_separator(text, i):
            i += 1
        elif c in "\"'":
            k = i + 1
            while k < n and text[k] != c and text[k] != "\n":
                if text[k] == "\\" and k + 1 < n:
                    if blank_strings:
                        out[k] = " "
                        out[k + 1] = " " if text[k + 1] != "\n" else "\n"
                    k += 2
                    continue
                if blank_strings:
                    out[k] = " "
                k += 1
            i = k + 1
        else:
            i += 1
    return "".join(out)


def _digit_separator(text, i):
    """Whether the `'` at `i` separates digits (`1'000'000`) rather than opening a char
    literal (`u8'a'` has a digit before it too, but its literal closes one char later)."""
    hexdigits = "0123456789abcdefABCDEF"
    return (0 < i < len(text) - 2 and text[i - 1] in hexdigits and text[i + 1] in hexdigits
            and text[i + 2] != "'")


def _ident(ch):
    return ch.isalnum() or ch == "_"


def match_close(text, open_index, open_ch="(", close_ch=")"):
    """Index of the bracket closing the one at `open_index`, or -1 (strings are blanked)."""
    depth = 0
    for k in range(open_index, len(text)):
        if text[k] == open_ch:
            depth += 1
        elif text[k] == close_ch:
            depth -= 1
            if depth == 0:
                return k
    return -1


def split_top_level(text, sep=","):
    """Splits on `sep` outside parentheses."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_specifiers(text):
    """`Server, Reliable, ReplicatedUsing=OnRep_X, meta=(...)` -> {lower key: value or ''}."""
    specs = {}
    for item in split_top_level(text):
        key, _, value = item.partition("=")
        specs[key.strip().lower()] = value.strip()
    return specs


class SourceFile:
    """One .h/.cpp: its path, module, raw text (comments blanked) and structural text
    (comments and string contents blanked)."""

    def __init__(self, path, rel, module):
        self.path = path
        self.rel = rel
        self.module = module
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                raw = f.read()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e}") from e
        self.text = blank_comments(raw, blank_strings=False)
        self.code = blank_comments(raw, blank_strings=True)
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", raw)]
        self.is_header = path.endswith(".h")

    def line_of(self, offset):
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


class ClassDecl:
    """A class/struct definition in a header: name, kind of reflection macro before it
    (UCLASS/USTRUCT/UINTERFACE or None), and body range (offsets of `{` and `}`)."""

    def __init__(self, file, name, macro, start, body_open, body_close):
        self.file = file
        self.name = name
        self.macro = macro
        self.start = start
        self.body_open = body_open
        self.body_close = body_close

    def body(self):
        return self.file.code[self.body_open + 1:self.body_close]

    def top_level_body(self):
        """The body with nested brace blocks blanked (so nested types do not count)."""
        body = self.body()
        out, depth = [], 0
        for ch in body:
            if ch == "{":
                depth += 1
            if depth == 0 or ch == "\n":
                out.append(ch)
            else:
                out.append(" ")
            if ch == "}":
                depth -= 1
        return "".join(out)


CLASS_RE = re.compile(r"\b(class|struct)\s+(?:(\w+_API)\s+)?([A-Za-z_]\w*)\b")
REFLECTED_RE = re.compile(r"\b(UCLASS|USTRUCT|UINTERFACE)\s*\(")
MACRO_RE = re.compile(r"\b(UCLASS|USTRUCT|UINTERFACE|UENUM|UFUNCTION|UPROPERTY)\s*\(")


def find_classes(f):
    """All class/struct definitions (with a body) in `f`, with their reflection macro."""
    code = f.code
    classes = []
    for m in CLASS_RE.finditer(code):
        before = code[:m.start()].rstrip()
        if before.endswith("<") or before.endswith(",") or re.search(r"\benum$", before):
            continue
        # The definition's `{` must come before any `;` (else a forward declaration or a
        # variable of class type), and before a `(` (a function returning `class X`).
        k = m.end()
        while k < len(code) and code[k] not in "{;()":
            k += 1
        if k >= len(code) or code[k] != "{":
            continue
        close = match_close(code, k, "{", "}")
        if close < 0:
            continue
        macro = None
        window_start = max(0, len(before) - 4000)
        last = None
        for pm in REFLECTED_RE.finditer(before, window_start):
            last = pm
        if last:
            # The macro belongs to this class when only its argument list lies between.
            end = match_close(code, last.end() - 1)
            if end >= 0 and code[end + 1:m.start()].strip() == "":
                macro = last.group(1)
        classes.append(ClassDecl(f, m.group(3), macro, m.start(), k, close))
    return classes


def enclosing_class(classes, offset):
    best = None
    for c in classes:
        if c.body_open < offset < c.body_close:
            if best is None or c.body_open > best.body_open:
                best = c
    return best


class Member:
    """A UFUNCTION or UPROPERTY: specifiers, declared name, offset and enclosing class."""

    def __init__(self, kind, specs, name, offset, owner):
        self.kind = kind
        self.specs = specs
        self.name = name
        self.offset = offset
        self.owner = owner


def find_members(f, classes):
    code = f.code
    members = []
    for m in MACRO_RE.finditer(code):
        kind = m.group(1)
        if kind not in ("UFUNCTION", "UPROPERTY"):
            continue
        paren = m.end() - 1
        close = match_close(code, paren)
        if close < 0:
            continue
        specs = parse_specifiers(code[paren + 1:close])
        decl_end = len(code)
        for k in range(close + 1, len(code)):
            if code[k] in ";{":
                decl_end = k
                break
        decl = code[close + 1:decl_end]
        name = None
        if kind == "UFUNCTION":
            # The function name is the identifier before the first `(` of the declaration.
            p = decl.find("(")
            if p >= 0:
                ids = re.findall(r"[A-Za-z_]\w*", decl[:p])
                name = ids[-1] if ids else None
        else:
            # The property name is the last identifier before `=`, `{`, `[`, `:` or `;`.
            head = re.split(r"=|\[|(?<!:):(?!:)", decl)[0]
            ids = re.findall(r"[A-Za-z_]\w*", head)
            name = ids[-1] if ids else None
        members.append(Member(kind, specs, name, m.start(), enclosing_class(classes, m.start())))
    return members


def find_definition(files, class_name, func_name, owner):
    """Body text of `class_name::func_name(...) ... { }` in `files`, or of an inline
    definition in the class body; None when not defined."""
    pattern = re.compile(r"\b" + re.escape(class_name) + r"\s*::\s*" + re.escape(func_name) + r"\s*\(")
    for f in files:
        for m in pattern.finditer(f.code):
            body = _body_after_params(f.code, m.end() - 1)
            if body is not None:
                return body
    if owner is not None:
        code = owner.file.code
        inline = re.compile(r"(?<![\w:.>])" + re.escape(func_name) + r"\s*\(")
        for m in inline.finditer(code, owner.body_open, owner.body_close):
            body = _body_after_params(code, m.end() - 1)
            if body is not None:
                return body
    return None


def _body_after_params(code, paren):
    close = match_close(code, paren)
    if close < 0:
        return None
    k = close + 1
    # Qualifiers between `)` and `{`: const, override, final, noexcept, and an initializer
    # list is not expected on these functions.
    m = re.match(r"[\s\w]*\{", code[k:])
    if not m:
        return None
    open_brace = k + m.end() - 1
    end = match_close(code, open_brace, "{", "}")
    if end < 0:
        return None
    return code[open_brace + 1:end]


# --- the plugin tree ------------------------------------------------------------------


def module_of(rel_parts, source_dir):
    """The module of a file under Source/: nearest folder X holding X.Build.cs."""
    for depth in range(len(rel_parts) - 1, 0, -1):
        folder = os.path.join(source_dir, *rel_parts[:depth])
        name = rel_parts[depth - 1]
        if os.path.isfile(os.path.join(folder, name + ".Build.cs")):
            return name
    return rel_parts[0]


def collect_sources(plugin_dir):
    source_dir = os.path.join(plugin_dir, "Source")
    files = []
    if not os.path.isdir(source_dir):
        return files
    for root, dirs, names in os.walk(source_dir):
        dirs.sort()
        for name in sorted(names):
            if not (name.endswith(".h") or name.endswith(".cpp")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, plugin_dir)
            parts = os.path.relpath(path, source_dir).split(os.sep)
            if len(parts) < 2:
                module = ""
            else:
                module = module_of(parts, source_dir)
            files.append(SourceFile(path, rel, module))
    return files


class Linter:
    """Runs every rule over one plugin tree and collects findings."""

    def __init__(self, plugin_dir):
        self.plugin_dir = plugin_dir
        self.findings = []

    def report(self, rel, line, rule, message):
        self.findings.append((os.path.join(self.plugin_dir, rel), line, rule, message))

    def run(self):
        files = collect_sources(self.plugin_dir)
        classes = {f.rel: find_classes(f) for f in files if f.is_header}
        members = {f.rel: find_members(f, classes[f.rel]) for f in files if f.is_header}
        by_module = {}
        for f in files:
            by_module.setdefault(f.module, []).append(f)
        for f in files:
            self.check_api_macro(f)
            if f.is_header:
                self.check_generated_body(classes[f.rel])
                self.check_generated_include(f)
                module_files = by_module[f.module]
                self.check_rpcs(members[f.rel], module_files)
                self.check_onrep(f, members[f.rel])
                self.check_replicated(f, classes[f.rel], members[f.rel], module_files)
        self.check_uplugin()
        self.findings.sort(key=lambda x: (x[0], x[1], x[2]))
        return self.findings

    # generated-body
    def check_generated_body(self, classes):
        for c in classes:
            if c.macro is None:
                continue
            if not re.search(r"\bGENERATED_\w*BODY\s*\(\s*\)", c.top_level_body()):
                self.report(c.file.rel, c.file.line_of(c.start), "generated-body",
                            f"{c.macro} {c.name} has no GENERATED_BODY() in its body")

    # generated-include-last
    def check_generated_include(self, f):
        reflected = re.search(r"\b(UCLASS|USTRUCT|UINTERFACE|UENUM)\s*\(", f.code)
        if not reflected:
            return
        stem = os.path.splitext(os.path.basename(f.path))[0]
        expected = stem + ".generated.h"
        includes = [(m.group(1), m.start()) for m in
                    re.finditer(r'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"]+)[>"]', f.text, re.M)]
        generated = [(name, off) for name, off in includes if name.endswith(".generated.h")]
        if not generated:
            self.report(f.rel, f.line_of(reflected.start()), "generated-include-last",
                        f"header declares reflected types but does not include \"{expected}\"")
            return
        for name, off in generated:
            if os.path.basename(name) != expected:
                self.report(f.rel, f.line_of(off), "generated-include-last",
                            f"includes \"{name}\" but the header's own is \"{expected}\"")
        last_name, last_off = includes[-1]
        if os.path.basename(last_name) != expected and any(
                os.path.basename(n) == expected for n, _ in generated):
            own = next(off for n, off in generated if os.path.basename(n) == expected)
            self.report(f.rel, f.line_of(own), "generated-include-last",
                        f"\"{expected}\" must be the last #include (\"{last_name}\" follows it)")

    # rpc-implementation
    def check_rpcs(self, members, module_files):
        for mem in members:
            if mem.kind != "UFUNCTION" or not (RPC_SPECIFIERS & set(mem.specs)):
                continue
            f = mem.owner.file if mem.owner else None
            if mem.owner is None or mem.name is None:
                continue
            cls = mem.owner.name
            wanted = [mem.name + "_Implementation"]
            if "withvalidation" in mem.specs:
                wanted.append(mem.name + "_Validate")
            for func in wanted:
                if find_definition(module_files, cls, func, mem.owner) is None:
                    self.report(f.rel, f.line_of(mem.offset), "rpc-implementation",
                                f"RPC {cls}::{mem.name} has no {cls}::{func} definition in "
                                f"module {mem.owner.file.module}")

    # onrep-exists
    def check_onrep(self, f, members):
        for mem in members:
            if mem.kind != "UPROPERTY" or "replicatedusing" not in mem.specs:
                continue
            target = mem.specs["replicatedusing"]
            if not target:
                self.report(f.rel, f.line_of(mem.offset), "onrep-exists",
                            f"ReplicatedUsing on {mem.name} names no function")
                continue
            declared = [m for m in members if m.kind == "UFUNCTION" and m.owner is mem.owner
                        and m.name == target]
            if not declared:
                owner = mem.owner.name if mem.owner else "(no class)"
                self.report(f.rel, f.line_of(mem.offset), "onrep-exists",
                            f"{owner}::{mem.name} uses ReplicatedUsing={target} but {target} "
                            f"is not declared as a UFUNCTION() in {owner}")

    # replicated-registered
    def check_replicated(self, f, classes, members, module_files):
        for c in classes:
            if c.macro != "UCLASS":
                continue
            props = [m for m in members if m.kind == "UPROPERTY" and m.owner is c
                     and ("replicated" in m.specs or "replicatedusing" in m.specs)]
            if not props:
                continue
            body = find_definition(module_files, c.name, "GetLifetimeReplicatedProps", c)
            if body is None:
                self.report(f.rel, f.line_of(c.start), "replicated-registered",
                            f"{c.name} has replicated properties but no "
                            f"{c.name}::GetLifetimeReplicatedProps definition")
                continue
            registered = {m.group(2) for m in re.finditer(
                r"\bDOREPLIFETIME\w*\s*\(\s*(\w+)\s*,\s*(\w+)", body)
                if m.group(1) in (c.name, "ThisClass")}
            for p in props:
                if p.name not in registered:
                    self.report(f.rel, f.line_of(p.offset), "replicated-registered",
                                f"replicated property {c.name}::{p.name} is not registered "
                                f"(DOREPLIFETIME) in {c.name}::GetLifetimeReplicatedProps")

    # api-macro
    def check_api_macro(self, f):
        if not f.module:
            return
        expected = f.module.upper() + "_API"
        for m in CLASS_RE.finditer(f.code):
            macro = m.group(2)
            if macro and macro != expected:
                self.report(f.rel, f.line_of(m.start()), "api-macro",
                            f"{m.group(1)} {m.group(3)} uses {macro} but module "
                            f"{f.module} exports with {expected}")

    # uplugin
    def check_uplugin(self):
        try:
            names = sorted(os.listdir(self.plugin_dir))
        except OSError as e:
            raise UsageError(f"cannot list {self.plugin_dir}: {e}") from e
        uplugins = [n for n in names if n.endswith(".uplugin")]
        if len(uplugins) != 1:
            self.report(".", 1, "uplugin",
                        f"expected exactly one .uplugin file at the plugin root, found "
                        f"{len(uplugins)} ({', '.join(uplugins) or 'none'})")
            return
        rel = uplugins[0]
        path = os.path.join(self.plugin_dir, rel)
        try:
            with open(path, encoding="utf-8-sig") as fh:
                raw = fh.read()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e}") from e
        try:
            desc = json.loads(raw)
        except json.JSONDecodeError as e:
            self.report(rel, e.lineno, "uplugin", f"invalid JSON: {e.msg}")
            return
        if not isinstance(desc, dict):
            self.report(rel, 1, "uplugin", "the descriptor must be a JSON object")
            return

        def line_of_key(key):
            m = re.search(r'"' + re.escape(key) + r'"\s*:', raw)
            return raw.count("\n", 0, m.start()) + 1 if m else 1

        if desc.get("FileVersion") != 3:
            self.report(rel, line_of_key("FileVersion"), "uplugin",
                        f"FileVersion must be 3 (found {desc.get('FileVersion')!r})")
        for key in ("VersionName", "FriendlyName"):
            if not isinstance(desc.get(key), str) or not desc.get(key):
                self.report(rel, line_of_key(key), "uplugin", f"missing or empty \"{key}\"")
        self.check_platforms(rel, desc, line_of_key, "plugin")
        modules = desc.get("Modules")
        if not isinstance(modules, list) or not modules:
            self.report(rel, line_of_key("Modules"), "uplugin",
                        "\"Modules\" must be a non-empty list")
            modules = []
        build_files = self.build_files()
        listed = set()
        for i, mod in enumerate(modules):
            where = f"module {i}"
            if not isinstance(mod, dict):
                self.report(rel, line_of_key("Modules"), "uplugin", f"{where} is not an object")
                continue
            name = mod.get("Name")
            if isinstance(name, str) and name:
                where = f"module {name}"
                listed.add(name)
                if name not in build_files:
                    self.report(rel, line_of_key("Modules"), "uplugin",
                                f"{where} has no Source/{name}/{name}.Build.cs")
            else:
                self.report(rel, line_of_key("Modules"), "uplugin", f"{where} has no \"Name\"")
            for key, known in (("Type", KNOWN_MODULE_TYPES),
                               ("LoadingPhase", KNOWN_LOADING_PHASES)):
                value = mod.get(key)
                if not isinstance(value, str) or not value:
                    self.report(rel, line_of_key("Modules"), "uplugin",
                                f"{where} has no \"{key}\"")
                elif value not in known:
                    self.report(rel, line_of_key(key), "uplugin",
                                f"{where} has unknown {key} \"{value}\"")
            self.check_platforms(rel, mod, line_of_key, where)
        for name, (build_rel, external) in sorted(build_files.items()):
            if not external and name not in listed:
                self.report(build_rel, 1, "uplugin",
                            f"module {name} is not External but is not listed in {rel}")

    def check_platforms(self, rel, obj, line_of_key, where):
        for key in ("PlatformAllowList", "PlatformDenyList", "SupportedTargetPlatforms",
                    "WhitelistPlatforms", "BlacklistPlatforms"):
            if key not in obj:
                continue
            values = obj[key]
            if not isinstance(values, list):
                self.report(rel, line_of_key(key), "uplugin",
                            f"{where}: \"{key}\" must be a list of platform names")
                continue
            for v in values:
                if v not in KNOWN_PLATFORMS:
                    self.report(rel, line_of_key(key), "uplugin",
                                f"{where}: unknown platform {v!r} in \"{key}\" (known: "
                                f"{', '.join(sorted(KNOWN_PLATFORMS))})")

    def build_files(self):
        """{module name: (relative path of its Build.cs, is External)} for every
        `<X>/<X>.Build.cs` under Source/."""
        found = {}
        source_dir = os.path.join(self.plugin_dir, "Source")
        for root, dirs, names in os.walk(source_dir):
            dirs.sort()
            folder = os.path.basename(root)
            if folder + ".Build.cs" in names:
                path = os.path.join(root, folder + ".Build.cs")
                try:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        text = blank_comments(fh.read(), blank_strings=True)
                except OSError as e:
                    raise UsageError(f"cannot read {path}: {e}") from e
                external = re.search(r"\bType\s*=\s*ModuleType\s*\.\s*External\b", text)
                found[folder] = (os.path.relpath(path, self.plugin_dir), bool(external))
        return found


def main(argv):
    if len(argv) == 2 and argv[1] == "--list-rules":
        print("\n".join(RULES))
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        print("usage: python3 ci/lint-unreal.py <plugin-dir> | --list-rules", file=sys.stderr)
        return 2
    plugin_dir = argv[1].rstrip("/") or "/"
    if not os.path.isdir(plugin_dir):
        print(f"lint-unreal: plugin directory {plugin_dir!r} does not exist", file=sys.stderr)
        return 2
    try:
        findings = Linter(plugin_dir).run()
    except UsageError as e:
        print(f"lint-unreal: {e}", file=sys.stderr)
        return 2
    for path, line, rule, message in findings:
        print(f"{os.path.normpath(path)}:{line}: {rule}: {message}")
    if findings:
        print(f"lint-unreal: {len(findings)} finding(s) in {plugin_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
