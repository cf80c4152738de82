#!/usr/bin/env python3
"""An independent verifier of a hyperagent archive, written from ARCHIVE.md alone.

Usage: verify_archive.py <home> [--key <public key file>] [--json]
       verify_archive.py --self-test

<home> holds `archive/` and `runs/`. Prints one line per problem ("error: ..." or "note: ..."),
then a summary line. Exit status: 0 clean, 1 any error, 2 bad usage.

Needs Python 3.11 and the `blake3` package (`python3 -m pip install blake3`). Canonical JSON
(RFC 8785) and Ed25519 verification (RFC 8032) are implemented here, in plain Python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import blake3 as _blake3
except ImportError:  # reported in main(), so that --help still works
    _blake3 = None

FORMAT_BYTES = b"hyperagent-archive 1\n"
NODE_SCHEMA = "hyperagent.node/2"
RUN_SCHEMA = "hyperagent.run/1"
LOG_SCHEMA = "hyperagent.run-log/2"
EXCHANGE_SCHEMA = "hyperagent.llm-exchange/2"
SIGNATURE_CONTEXT = b"hyperagent run object v1\x00"
HASH_RE = re.compile(r"[0-9a-f]{64}")


def blake3_hex(data: bytes) -> str:
    return _blake3.blake3(data).hexdigest()


def is_hash(value) -> bool:
    return isinstance(value, str) and HASH_RE.fullmatch(value) is not None


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# RFC 8785 canonical JSON
# ---------------------------------------------------------------------------------------------

class JsonError(ValueError):
    pass


def es_number(x: float) -> str:
    """ECMAScript Number::toString for an IEEE 754 double (ECMA-262 §6.1.6.1.20)."""
    if math.isnan(x) or math.isinf(x):
        raise JsonError("NaN and Infinity have no JSON form")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + es_number(-x)
    # repr() gives the shortest digit string that round-trips, as ECMAScript requires.
    mantissa, _, exponent = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)  # decimal point after `point` digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point  # x = 0.digits × 10^n, with k digits
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e > 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}e{sign}{abs(e)}"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def es_string(s: str) -> str:
    """A JSON string with the minimal escapes of RFC 8785 §3.2.2.2."""
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical_text(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        try:
            return es_number(float(value))
        except OverflowError as e:
            raise JsonError("number out of range") from e
    if isinstance(value, float):
        return es_number(value)
    if isinstance(value, str):
        return es_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical_text(v) for v in value) + "]"
    if isinstance(value, dict):
        # Members sorted by their names' UTF-16 code units (big-endian bytes sort the same way).
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(es_string(k) + ":" + canonical_text(value[k]) for k in keys) + "}"
    raise JsonError(f"not a JSON value: {type(value).__name__}")


def canonical(value) -> bytes:
    try:
        return canonical_text(value).encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate
        raise JsonError("a string is not valid Unicode") from e


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise JsonError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constants(name):
    raise JsonError(f"{name} is not JSON")


def parse_json(data: bytes):
    """Strict JSON from UTF-8 bytes: no duplicate members, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonError(f"not UTF-8 ({e.reason} at byte {e.start})") from e
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise JsonError(f"not JSON ({e.msg} at {e.pos})") from e


def parse_canonical(data: bytes):
    """Parses JSON and insists that the bytes are exactly its canonical form."""
    value = parse_json(data)
    if canonical(value) != data:
        raise JsonError("not in canonical form (RFC 8785)")
    return value


# ---------------------------------------------------------------------------------------------
# Ed25519 verification, RFC 8032 §5.1
# ---------------------------------------------------------------------------------------------

ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, -1, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def _ed_add(P, Q):
    """Point addition in extended coordinates (§5.1.4)."""
    X1, Y1, Z1, T1 = P
    X2, Y2, Z2, T2 = Q
    A = (Y1 - X1) * (Y2 - X2) % ED_P
    B = (Y1 + X1) * (Y2 + X2) % ED_P
    C = 2 * T1 * T2 * ED_D % ED_P
    D = 2 * Z1 * Z2 % ED_P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % ED_P, G * H % ED_P, F * G % ED_P, E * H % ED_P)


def _ed_mul(s: int, P):
    Q = (0, 1, 1, 0)  # the neutral element
    while s > 0:
        if s & 1:
            Q = _ed_add(Q, P)
        P = _ed_add(P, P)
        s >>= 1
    return Q


def _ed_equal(P, Q) -> bool:
    return (P[0] * Q[2] - Q[0] * P[2]) % ED_P == 0 and (P[1] * Q[2] - Q[1] * P[2]) % ED_P == 0


def _ed_decode(s: bytes):
    """Decodes a point (§5.1.3); None when the bytes are not a point."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    x0 = y >> 255
    y &= (1 << 255) - 1
    if y >= ED_P:
        return None
    u = (y * y - 1) % ED_P
    v = (ED_D * y * y + 1) % ED_P
    x = u * pow(v, 3, ED_P) * pow(u * pow(v, 7, ED_P), (ED_P - 5) // 8, ED_P) % ED_P
    if v * x * x % ED_P == u:
        pass
    elif v * x * x % ED_P == (-u) % ED_P:
        x = x * ED_SQRT_M1 % ED_P
    else:
        return None
    if x == 0 and x0 == 1:
        return None
    if x & 1 != x0:
        x = ED_P - x
    return (x, y, 1, x * y % ED_P)


def _ed_encode(P) -> bytes:
    zinv = pow(P[2], -1, ED_P)
    x, y = P[0] * zinv % ED_P, P[1] * zinv % ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


_ED_BY = 4 * pow(5, -1, ED_P) % ED_P
ED_BASE = _ed_decode(_ED_BY.to_bytes(32, "little"))  # B: y = 4/5, x positive


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7, with the cofactored check [8][S]B = [8]R + [8][k]A."""
    if len(public) != 32 or len(signature) != 64:
        return False
    A = _ed_decode(public)
    R = _ed_decode(signature[:32])
    if A is None or R is None:
        return False
    S = int.from_bytes(signature[32:], "little")
    if S >= ED_L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % ED_L
    left = _ed_mul(8 * S, ED_BASE)
    right = _ed_mul(8, _ed_add(R, _ed_mul(k, A)))
    return _ed_equal(left, right)


def _ed25519_sign(seed: bytes, message: bytes) -> tuple[bytes, bytes]:
    """RFC 8032 §5.1.5–6; only the self-test uses it. Returns (public key, signature)."""
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    public = _ed_encode(_ed_mul(a, ED_BASE))
    r = int.from_bytes(hashlib.sha512(h[32:] + message).digest(), "little") % ED_L
    R = _ed_encode(_ed_mul(r, ED_BASE))
    k = int.from_bytes(hashlib.sha512(R + public + message).digest(), "little") % ED_L
    return public, R + ((r + k * a) % ED_L).to_bytes(32, "little")


# ---------------------------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------------------------

@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)


# ---------------------------------------------------------------------------------------------
# The store: objects and markers
# ---------------------------------------------------------------------------------------------

class Store:
    def __init__(self, archive: Path, findings: Findings):
        self.dir = archive
        self.f = findings
        self.objects: dict[str, Path] = {}  # every well-named object
        self.intact: set[str] = set()  # objects whose bytes hash to their name
        self.node_markers: set[str] = set()
        self.run_markers: set[str] = set()
        self.interrupted = 0

    def has(self, h: str) -> bool:
        return h in self.objects

    def read(self, h: str) -> bytes | None:
        path = self.objects.get(h)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as e:
            self.f.error(f"unreadable: object {h}: {e}")
            return None


def check_format(store: Store) -> None:
    """FORMAT holds exactly "hyperagent-archive 1\\n"."""
    path = store.dir / "FORMAT"
    try:
        data = path.read_bytes()
    except OSError:
        store.f.error("format: archive/FORMAT is missing")
        return
    if data != FORMAT_BYTES:
        store.f.error(f"format: archive/FORMAT holds {data[:40]!r}, not {FORMAT_BYTES!r}")


def is_interrupted_write(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


def scan_objects(store: Store) -> None:
    """Every file under objects/ is <2 hex>/<62 hex> and hashes to its name, or an interrupted write."""
    objects = store.dir / "objects"
    if not objects.is_dir():
        store.f.error("missing: archive/objects/")
        return
    for entry in sorted(objects.iterdir()):
        if entry.is_file() and is_interrupted_write(entry.name):
            store.interrupted += 1
            continue
        if not (entry.is_dir() and re.fullmatch(r"[0-9a-f]{2}", entry.name)):
            store.f.error(f"unexpected: objects/{entry.name} is not a hash")
            continue
        for item in sorted(entry.iterdir()):
            rel = f"objects/{entry.name}/{item.name}"
            if item.is_file() and is_interrupted_write(item.name):
                store.interrupted += 1
            elif not item.is_file() or not re.fullmatch(r"[0-9a-f]{62}", item.name):
                store.f.error(f"unexpected: {rel} is not a hash")
            else:
                h = entry.name + item.name
                store.objects[h] = item
                data = store.read(h)
                if data is not None and blake3_hex(data) == h:
                    store.intact.add(h)
                elif data is not None:
                    store.f.error(f"tampered: object {h} hashes to {blake3_hex(data)}")
    if store.interrupted:
        store.f.note(f"{store.interrupted} interrupted write(s) under objects/ (not part of the archive)")


def scan_markers(store: Store) -> None:
    """nodes/<h> and runs/<h>: empty files (the walk reports markers naming missing objects)."""
    for sub, found in (("nodes", store.node_markers), ("runs", store.run_markers)):
        directory = store.dir / sub
        if not directory.is_dir():
            store.f.error(f"missing: archive/{sub}/")
            continue
        for item in sorted(directory.iterdir()):
            if not item.is_file() or not is_hash(item.name):
                # ARCHIVE.md makes only names under objects/ errors; a stray marker name is a note.
                store.f.note(f"archive/{sub}/{item.name} is not a hash: ignored")
                continue
            found.add(item.name)
            if item.stat().st_size != 0:
                store.f.note(f"marker archive/{sub}/{item.name} is not empty")


# ---------------------------------------------------------------------------------------------
# Object kinds: each parser reports malformed objects and returns what it names
# ---------------------------------------------------------------------------------------------

MODE_RE = re.compile(r"100644|100755")
PATH_COMPONENT_RE = re.compile(r"[A-Za-z0-9._+-]+")


def parse_manifest(data: bytes) -> tuple[list[str], list[str]]:
    """A tree manifest's blob hashes, and its problems (empty when well-formed)."""
    problems, blobs = [], []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], ["not UTF-8"]
    if text and not text.endswith("\n"):
        problems.append("the last line does not end with \\n")
    previous = None
    for number, line in enumerate(text.split("\n")[:-1] if text else [], start=1):
        parts = line.split(" ", 2)
        if len(parts) != 3:
            problems.append(f"line {number}: not `<mode> <hash> <path>`")
            continue
        mode, blob, path = parts
        if not MODE_RE.fullmatch(mode):
            problems.append(f"line {number}: mode {mode!r}")
        if not is_hash(blob):
            problems.append(f"line {number}: blob hash {blob!r}")
        else:
            blobs.append(blob)
        path_bytes = path.encode("utf-8")
        components = path.split("/")
        if (
            len(path_bytes) > 512
            or any(c in ("", ".", "..") for c in components)
            or not all(PATH_COMPONENT_RE.fullmatch(c) for c in components)
        ):
            problems.append(f"line {number}: path {path!r}")
        if previous is not None and path_bytes <= previous:
            problems.append(f"line {number}: {path!r} is " + ("a duplicate" if path_bytes == previous else "out of order"))
        previous = path_bytes
    return blobs, problems


STATUSES = {"evaluated", "staged-only", "meta-failed", "rejected", "build-failed", "load-failed"}
LOOP_KEYS_REQUIRED = {"generation", "slot", "status", "meta", "provenance"}
LOOP_KEYS_OPTIONAL = {"score", "evaluation", "build", "llm"}
META_KEYS = {"summary", "rationale", "outcome", "fuel", "logs", "component", "tools"}
TOOL_KEYS_REQUIRED = {"tool", "result"}
TOOL_KEYS_OPTIONAL = {"target", "fuel"}
EVALUATION_KEYS = {"domains", "passed_gate", "score", "fuel", "report"}
DOMAIN_KEYS = {"domain", "staged", "train", "validation", "score"}
SPLIT_KEYS = {"mean", "tasks", "invalid"}


def check_node_shape(node) -> list[str]:
    """The node's members and metadata rules; returns the problems."""
    if not isinstance(node, dict):
        return ["not an object"]
    problems = []
    if set(node) != {"schema", "tree", "component", "parent", "metadata"}:
        problems.append(f"members {sorted(node)}, not schema, tree, component, parent, metadata")
    if not is_hash(node.get("tree")):
        problems.append("tree is not a hash")
    if node.get("component") is not None and not is_hash(node.get("component")):
        problems.append("component is neither a hash nor null")
    if node.get("parent") is not None and not is_hash(node.get("parent")):
        problems.append("parent is neither a hash nor null")
    metadata = node.get("metadata")
    if not isinstance(metadata, dict):
        return problems + ["metadata is not an object"]
    if metadata.get("origin") == "build":
        if set(metadata) != {"origin", "status"}:
            problems.append(f"a build node's metadata holds {sorted(metadata)}, not origin and status")
        elif not isinstance(metadata["status"], str):
            problems.append("a build node's status is not a string")
        return problems
    return problems + check_loop_metadata(node, metadata)


def check_loop_metadata(node: dict, m: dict) -> list[str]:
    problems = []
    missing = LOOP_KEYS_REQUIRED - set(m)
    extra = set(m) - LOOP_KEYS_REQUIRED - LOOP_KEYS_OPTIONAL
    if missing:
        problems.append(f"metadata lacks {sorted(missing)}")
    if extra:
        problems.append(f"metadata has keys not allowed: {sorted(extra)}")
    for key in ("generation", "slot"):
        if key in m and not (is_int(m[key]) and m[key] >= 0):
            problems.append(f"metadata.{key} is not a non-negative integer")
    status = m.get("status")
    if status not in STATUSES:
        problems.append(f"metadata.status {status!r} is not a known status")
    if ("score" in m) != ("evaluation" in m):
        problems.append("metadata.score is present without evaluation, or evaluation without score")
    if "score" in m and not is_number(m["score"]):
        problems.append("metadata.score is not a number")
    if "evaluation" in m:
        problems += check_evaluation(m["evaluation"])
    initial = node.get("parent") is None
    problems += check_meta(m.get("meta"), initial)
    if "build" in m:
        problems += check_build(m["build"])
    if "llm" in m and not (isinstance(m["llm"], list) and m["llm"] and all(is_hash(h) for h in m["llm"])):
        problems.append("metadata.llm is not a non-empty list of hashes")
    if "provenance" in m and not is_hash(m["provenance"]):
        problems.append("metadata.provenance is not a hash")
    if initial and (m.get("generation"), m.get("slot")) != (0, 0):
        problems.append("the initial node (no parent) is not at generation 0, slot 0")
    if initial and "build" in m:
        problems.append("the initial node has a build")
    if status == "meta-failed" and "build" in m:
        problems.append("a meta-failed node has a build")
    if status != "meta-failed" and not initial and "build" not in m:
        problems.append(f"a {status} node has no build")
    problems += check_status_case(node, m, status, initial)
    return problems


def check_status_case(node: dict, m: dict, status, initial: bool) -> list[str]:
    """"Status by case" in ARCHIVE.md."""
    problems = []
    has_component = node.get("component") is not None
    build = m.get("build") if isinstance(m.get("build"), dict) else None
    evaluation = m.get("evaluation") if isinstance(m.get("evaluation"), dict) else None
    if status in ("evaluated", "staged-only"):
        if not has_component:
            problems.append(f"a {status} node has no component")
        # The initial node has no build (see the `build` row), so only others are held to it.
        if not initial and not (build and build.get("status") == "built" and "load_error" not in build):
            problems.append(f"a {status} node's build is not `built` without load_error")
        if evaluation is None or "score" not in m:
            problems.append(f"a {status} node has no evaluation and score")
        elif evaluation.get("passed_gate") is not (status == "evaluated"):
            problems.append(f"a {status} node's passed_gate is {evaluation.get('passed_gate')!r}")
    elif status == "load-failed":
        if not has_component:
            problems.append("a load-failed node has no component")
        if not (build and build.get("status") == "built" and "load_error" in build):
            problems.append("a load-failed node's build has no load_error")
        if "evaluation" in m:
            problems.append("a load-failed node has an evaluation")
    elif status in ("rejected", "build-failed", "meta-failed"):
        if has_component:
            problems.append(f"a {status} node has a component")
        if "evaluation" in m:
            problems.append(f"a {status} node has an evaluation")
    return problems


def check_meta(meta, initial: bool) -> list[str]:
    if not isinstance(meta, dict):
        return ["metadata.meta is not an object"]
    problems = []
    if not isinstance(meta.get("summary"), str):
        problems.append("meta.summary is not a string")
    if set(meta) - META_KEYS:
        problems.append(f"meta has keys not allowed: {sorted(set(meta) - META_KEYS)}")
    if initial and set(meta) != {"summary"}:
        problems.append("the initial node's meta holds more than summary")
    if "rationale" in meta and not isinstance(meta["rationale"], str):
        problems.append("meta.rationale is not a string")
    if "outcome" in meta and not (isinstance(meta["outcome"], dict) and isinstance(meta["outcome"].get("kind"), str)):
        problems.append("meta.outcome is not {kind: ...}")
    if "fuel" in meta and not is_int(meta["fuel"]):
        problems.append("meta.fuel is not an integer")
    if "logs" in meta:
        logs = meta["logs"]
        if not (isinstance(logs, list) and logs and all(isinstance(x, dict) and set(x) == {"level", "message"} for x in logs)):
            problems.append("meta.logs is not a non-empty list of {level, message}")
    if "component" in meta and not is_hash(meta["component"]):
        problems.append("meta.component is not a hash")
    if "tools" in meta:
        problems.extend(check_tools(meta["tools"]))
    return problems


def check_tools(tools) -> list[str]:
    """meta.tools: a non-empty list of tool uses."""
    if not (isinstance(tools, list) and tools):
        return ["meta.tools is not a non-empty list"]
    for use in tools:
        if not (isinstance(use, dict) and TOOL_KEYS_REQUIRED <= set(use) <= TOOL_KEYS_REQUIRED | TOOL_KEYS_OPTIONAL):
            return ["meta.tools holds a member that is not {tool, result[, target][, fuel]}"]
        if use["tool"] not in ("check-build", "try-task") or not isinstance(use["result"], str):
            return ["meta.tools holds an unknown tool or a result that is not a string"]
        if "target" in use and not isinstance(use["target"], str):
            return ["meta.tools holds a target that is not a string"]
        if "fuel" in use and not (is_int(use["fuel"]) and use["fuel"] > 0):
            return ["meta.tools holds a fuel that is not a positive integer"]
    return []


def check_build(build) -> list[str]:
    if not isinstance(build, dict):
        return ["metadata.build is not an object"]
    status, keys = build.get("status"), set(build)
    if status == "built" and keys <= {"status", "load_error"}:
        return [] if isinstance(build.get("load_error", ""), str) else ["build.load_error is not a string"]
    if status == "rejected" and keys == {"status", "violations"}:
        ok = isinstance(build["violations"], list) and all(isinstance(v, str) for v in build["violations"])
        return [] if ok else ["build.violations is not a list of strings"]
    if status == "failed" and keys == {"status", "diagnostics"} and isinstance(build["diagnostics"], str):
        return []
    return [f"metadata.build is not one of its three forms: {canonical_text(build)[:120]}"]


def check_evaluation(evaluation) -> list[str]:
    if not isinstance(evaluation, dict) or set(evaluation) != EVALUATION_KEYS:
        return ["metadata.evaluation is not {domains, passed_gate, score, fuel, report}"]
    problems = []
    if not isinstance(evaluation["passed_gate"], bool):
        problems.append("evaluation.passed_gate is not a boolean")
    if not is_number(evaluation["score"]):
        problems.append("evaluation.score is not a number")
    if not is_int(evaluation["fuel"]):
        problems.append("evaluation.fuel is not an integer")
    if not is_hash(evaluation["report"]):
        problems.append("evaluation.report is not a hash")
    domains = evaluation["domains"]
    if not isinstance(domains, list):
        return problems + ["evaluation.domains is not a list"]
    for d in domains:
        if not isinstance(d, dict) or set(d) != DOMAIN_KEYS:
            problems.append("an evaluation domain is not {domain, staged, train, validation, score}")
            continue
        for split in ("staged", "train", "validation"):
            value = d[split]
            if value is None and split != "staged":
                continue
            if not (isinstance(value, dict) and set(value) == SPLIT_KEYS):
                problems.append(f"evaluation domain {d['domain']!r}: {split} is not {{mean, tasks, invalid}}")
        if (d["train"] is None) != (d["validation"] is None):
            problems.append(f"evaluation domain {d['domain']!r}: only one of train and validation is null")
    return problems


def claim_notes(m: dict) -> list[str]:
    """Claims that cannot hold whatever the records say (replay checks the records themselves)."""
    evaluation = m.get("evaluation")
    if not (isinstance(evaluation, dict) and isinstance(evaluation.get("domains"), list)):
        return []
    notes = []
    if "score" in m and m["score"] != evaluation.get("score"):
        notes.append(f"metadata.score {m['score']!r} is not evaluation.score {evaluation.get('score')!r}")
    scores = [d.get("score") for d in evaluation["domains"] if isinstance(d, dict)]
    if scores and all(is_number(s) for s in scores) and is_number(evaluation.get("score")):
        mean = sum(scores) / len(scores)
        if abs(mean - evaluation["score"]) > 1e-12:
            notes.append(f"evaluation.score {evaluation['score']!r} is not the domains' mean {mean!r}")
    gate = all(isinstance(d, dict) and d.get("validation") is not None for d in evaluation["domains"])
    if evaluation.get("passed_gate") is not gate:
        notes.append("evaluation.passed_gate does not say whether every domain has validation results")
    return notes


RUN_KEYS = {"schema", "run", "config_hash", "log_head", "log_lines", "nodes", "best", "tests"}


def check_run_shape(run) -> list[str]:
    if not isinstance(run, dict):
        return ["not an object"]
    if set(run) != RUN_KEYS:
        return [f"members {sorted(run)}, not {sorted(RUN_KEYS)}"]
    problems = []
    if run["schema"] != RUN_SCHEMA:
        problems.append(f"schema {run['schema']!r}, not {RUN_SCHEMA}")
    if not isinstance(run["run"], str):
        problems.append("run is not a string")
    for key in ("config_hash", "log_head"):
        if not is_hash(run[key]):
            problems.append(f"{key} is not a hash")
    if not (is_int(run["log_lines"]) and run["log_lines"] >= 1):
        problems.append("log_lines is not a positive integer")
    if not (isinstance(run["nodes"], list) and all(is_hash(h) for h in run["nodes"])):
        problems.append("nodes is not a list of hashes")
    if run["best"] is not None and not is_hash(run["best"]):
        problems.append("best is neither a hash nor null")
    if not isinstance(run["tests"], list):
        problems.append("tests is not a list")
    return problems


PROVENANCE_KEYS = {"host_version", "wasmtime", "engine", "fuel_costs", "rustc", "sdk_version",
                   "build_environment", "data", "config_hash"}
RECORD_KEYS = {"domain", "id", "outcome", "score", "invalid", "fuel", "details"}
EXCHANGE_KEYS = {"schema", "call", "request_hash", "seq", "request", "response", "backend"}


# ---------------------------------------------------------------------------------------------
# The walk: from every node and run object through the schema; reachability and references
# ---------------------------------------------------------------------------------------------

class Walk:
    """Visits each (object, kind) once from the roots, checking each by its kind."""

    def __init__(self, store: Store):
        self.store = store
        self.f = store.f
        self.reached: set[str] = set()
        self.seen: set[tuple[str, str]] = set()
        self.nodes: dict[str, dict] = {}  # parsed, well-formed nodes
        self.runs: dict[str, dict] = {}  # parsed, well-formed run objects
        self.queue: list[tuple[str, str, str]] = []

    def refer(self, h: str, kind: str, by: str) -> None:
        """`by` names `h` as a `kind`; a missing object is an error."""
        if not is_hash(h):
            return  # the referring object's shape check reports it
        if (h, kind) in self.seen:
            return
        self.seen.add((h, kind))
        if not self.store.has(h):
            self.f.error(f"missing: {kind} {h} (named by {by})")
            return
        self.reached.add(h)
        self.queue.append((h, kind, by))

    def run(self) -> None:
        visit = {
            "node": self.visit_node, "run object": self.visit_run, "tree manifest": self.visit_tree,
            "component": self.visit_component, "evaluation report": self.visit_report,
            "LLM exchange": self.visit_exchange, "provenance": self.visit_provenance,
        }
        while self.queue:
            h, kind, _ = self.queue.pop()
            if kind == "file blob":
                continue  # any bytes: nothing to check beyond the hash
            data = self.store.read(h)
            if data is not None:
                visit[kind](h, data)

    def visit_node(self, h: str, data: bytes) -> None:
        if h not in self.store.node_markers:
            self.f.error(f"unmarked: node {h} has no marker in archive/nodes/")
        try:
            node = parse_json(data)
        except JsonError as e:
            self.f.error(f"malformed: node {h}: {e}")
            return
        schema = node.get("schema") if isinstance(node, dict) else None
        if isinstance(schema, str) and schema != NODE_SCHEMA and schema.startswith("hyperagent.node/"):
            self.f.error(f"refused: node {h} is of schema {schema}, not {NODE_SCHEMA}")
            return
        if schema != NODE_SCHEMA:
            self.f.error(f"malformed: node {h}: schema {schema!r}, not {NODE_SCHEMA}")
            return
        problems = [] if canonical(node) == data else ["not in canonical form (RFC 8785)"]
        problems += check_node_shape(node)
        for problem in problems:
            self.f.error(f"malformed: node {h}: {problem}")
        if not problems:
            self.nodes[h] = node
            for note in claim_notes(node["metadata"]):
                self.f.note(f"node {h}: {note} (a replay would fail it)")
        # A malformed node's well-formed references are still followed (fewer cascading orphans).
        m = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
        evaluation = m.get("evaluation") if isinstance(m.get("evaluation"), dict) else {}
        meta = m.get("meta") if isinstance(m.get("meta"), dict) else {}
        llm = m.get("llm") if isinstance(m.get("llm"), list) else []
        by = f"node {h}"
        for target, kind in [(node.get("tree"), "tree manifest"), (node.get("component"), "component"),
                             (node.get("parent"), "node"), (evaluation.get("report"), "evaluation report"),
                             (meta.get("component"), "component"), (m.get("provenance"), "provenance")] + \
                            [(exchange, "LLM exchange") for exchange in llm]:
            self.refer(target, kind, by)  # ignores what is not a hash (null, or reported above)

    def visit_run(self, h: str, data: bytes) -> None:
        if h not in self.store.run_markers:
            self.f.error(f"unmarked: run object {h} has no marker in archive/runs/")
        try:
            run = parse_canonical(data)
        except JsonError as e:
            self.f.error(f"malformed: run object {h}: {e}")
            return
        problems = check_run_shape(run)
        for problem in problems:
            self.f.error(f"malformed: run object {h}: {problem}")
        if problems:
            return
        self.runs[h] = run
        for node in run["nodes"]:
            self.refer(node, "node", f"run object {h}")
        if run["best"] is not None and run["best"] not in run["nodes"]:
            self.f.note(f"run object {h}: best {run['best']} is not among its nodes")

    def visit_tree(self, h: str, data: bytes) -> None:
        blobs, problems = parse_manifest(data)
        for problem in problems:
            self.f.error(f"malformed: tree manifest {h}: {problem}")
        for blob in blobs:
            self.refer(blob, "file blob", f"tree manifest {h}")

    def visit_component(self, h: str, data: bytes) -> None:
        if data[:8] != b"\x00asm\x0d\x00\x01\x00":
            self.f.note(f"component {h} does not begin with the component preamble")

    def visit_report(self, h: str, data: bytes) -> None:
        try:
            records = parse_canonical(data)
        except JsonError as e:
            self.f.note(f"evaluation report {h}: {e}")
            try:
                records = parse_json(data)
            except JsonError:
                return
        if not isinstance(records, list):
            self.f.note(f"evaluation report {h} is not an array")
            return
        for i, record in enumerate(records):
            if not isinstance(record, dict) or not RECORD_KEYS <= set(record) <= RECORD_KEYS | {"answer", "llm"}:
                self.f.note(f"evaluation report {h}: record {i} does not have the record's members")
                continue
            for exchange in record.get("llm") or []:
                self.refer(exchange, "LLM exchange", f"evaluation report {h}")

    def visit_exchange(self, h: str, data: bytes) -> None:
        try:
            exchange = parse_canonical(data)
        except JsonError as e:
            self.f.note(f"LLM exchange {h}: {e}")
            return
        if not isinstance(exchange, dict) or set(exchange) != EXCHANGE_KEYS or exchange["schema"] != EXCHANGE_SCHEMA:
            self.f.note(f"LLM exchange {h} does not have the members of {EXCHANGE_SCHEMA}")
        elif exchange["request_hash"] != blake3_hex(canonical(exchange["request"])):
            self.f.note(f"LLM exchange {h}: request_hash is not the hash of its request")

    def visit_provenance(self, h: str, data: bytes) -> None:
        try:
            provenance = parse_canonical(data)
        except JsonError as e:
            self.f.note(f"provenance {h}: {e}")
            return
        if not isinstance(provenance, dict) or set(provenance) != PROVENANCE_KEYS:
            self.f.note(f"provenance {h} does not have the provenance members")


def check_orphans(store: Store, walk: Walk) -> None:
    for h in sorted(store.objects):
        if h not in walk.reached:
            store.f.error(f"orphaned: object {h} (no node or run object leads to it)")


# ---------------------------------------------------------------------------------------------
# Runs: the log's chain, node events, the head, the signature
# ---------------------------------------------------------------------------------------------

@dataclass
class LogLine:
    number: int  # 1-based
    raw: bytes  # without the \n
    hash: str
    event: dict | None  # None when unreadable


EVENT_MEMBERS = {
    "started": {"config", "config_hash", "provenance"},  # `schema` is checked by check_started
    "node": {"generation", "slot", "node", "parent", "score", "status"},
    "llm-exchange": {"node", "record", "wall_ms"},
    "generation": {"generation"},
    "selection": {"generation", "parents"},
    "test": {"node", "role", "sets"},
    "baseline": {"domain", "baseline", "sets"},
    "stopped": {"reason"},
    "finished": {"best"},
}


def event_problem(event) -> str | None:
    """Why a parsed line is not an event of ARCHIVE.md's table, or None."""
    if not isinstance(event, dict) or "prev" not in event:
        return "not an object with `prev`"
    kind = event.get("event")
    if kind not in EVENT_MEMBERS:
        return f"unknown event {kind!r}"
    missing = EVENT_MEMBERS[kind] - set(event)
    if missing:
        return f"a {kind} event without {sorted(missing)}"
    return None


def read_log(run_id: str, path: Path, f: Findings) -> list[LogLine] | None:
    """The complete lines of a run log, its chain checked; None when there is no log."""
    try:
        data = path.read_bytes()
    except OSError as e:
        f.error(f"run {run_id}: unreadable log: {e}")
        return None
    pieces = data.split(b"\n")
    if pieces[-1]:
        f.note(f"run {run_id}: the last line has no \\n: an interrupted append, ignored")
    lines, prev = [], None
    for number, raw in enumerate(pieces[:-1], start=1):
        line = LogLine(number, raw, blake3_hex(raw), None)
        try:
            event = parse_json(raw)
            problem = event_problem(event)
            if problem:
                raise JsonError(problem)
            line.event = event
            if canonical(event) != raw:
                f.note(f"run {run_id}: log line {number} is not in canonical form")
        except JsonError as e:
            f.error(f"run {run_id}: log line {number} is unreadable: {e}")
        if line.event is not None and line.event["prev"] != prev:
            f.error(f"run {run_id}: log line {number}: the chain is broken (prev is not the hash of line {number - 1})")
        prev = line.hash
        lines.append(line)
    if not lines:
        f.error(f"run {run_id}: the log is empty")
    return lines


def check_started(run_id: str, lines: list[LogLine], f: Findings) -> dict | None:
    first = lines[0].event if lines else None
    if first is None:
        return None
    if first.get("event") != "started":
        f.error(f"run {run_id}: the log does not begin with a `started` event")
        return None
    schema = first.get("schema")
    if schema != LOG_SCHEMA:
        f.error(f"run {run_id}: refused: the log's schema is {schema!r}, not {LOG_SCHEMA}")
        return None
    try:
        if first.get("config_hash") != blake3_hex(canonical(first.get("config"))):
            f.note(f"run {run_id}: the logged configuration does not have the logged config_hash")
    except JsonError:
        pass
    return first


def check_node_events(run_id: str, lines: list[LogLine], walk: Walk, f: Findings) -> None:
    """Every `node` event says what its node says; slots in order within a generation."""
    last_slot: dict = {}
    for line in lines:
        e = line.event
        if e is None or e.get("event") != "node":
            continue
        where = f"run {run_id}: log line {line.number}"
        h = e.get("node")
        if not is_hash(h):
            f.error(f"{where}: the node event names no node")
            continue
        if not walk.store.has(h):
            f.error(f"{where}: the node event names a missing node {h}")
            continue
        walk.refer(h, "node", f"{where}")  # normally already reached through a run object
        walk.run()
        node = walk.nodes.get(h)
        if node is None:
            continue  # malformed or tampered: reported already
        m = node["metadata"]
        said = (e.get("generation"), e.get("slot"), e.get("status"), e.get("score"), e.get("parent"))
        says = (m.get("generation"), m.get("slot"), m.get("status"), m.get("score"), node["parent"])
        names = ("generation", "slot", "status", "score", "parent")
        for name, a, b in zip(names, said, says):
            if a != b or type(a) is bool or type(b) is bool:
                f.error(f"{where}: the log says {name} {a!r}, node {h} says {b!r}")
        g, s = e.get("generation"), e.get("slot")
        if g in last_slot and is_int(s) and is_int(last_slot[g]) and s <= last_slot[g]:
            f.note(f"{where}: generation {g}'s node events are not in slot order")
        last_slot[g] = s


def implied_run_object(run_id: str, lines: list[LogLine], count: int) -> bytes | None:
    """The canonical bytes of the run object the first `count` lines imply (None if unreadable)."""
    prefix = lines[:count]
    if any(line.event is None for line in prefix) or not prefix:
        return None
    events = [line.event for line in prefix]
    best = None
    for e in events:
        if e["event"] == "finished":
            best = e.get("best")
    obj = {
        "schema": RUN_SCHEMA,
        "run": run_id,
        "config_hash": events[0].get("config_hash"),
        "log_head": prefix[-1].hash,
        "log_lines": count,
        "nodes": [e.get("node") for e in events if e["event"] == "node"],
        "best": best,
        "tests": [{k: v for k, v in e.items() if k != "prev"} for e in events if e["event"] in ("test", "baseline")],
    }
    return canonical(obj)


def check_run_object_against_log(h: str, run: dict, run_id: str, lines: list[LogLine], f: Findings, what: str) -> None:
    count = run["log_lines"]
    if count > len(lines):
        f.error(f"run {run_id}: {what} {h} covers {count} log lines; the log has {len(lines)}")
        return
    implied = implied_run_object(run_id, lines, count)
    if implied is None:
        f.error(f"run {run_id}: {what} {h} covers unreadable log lines")
    elif blake3_hex(implied) != h:
        f.error(f"run {run_id}: {what} {h} does not match the log's first {count} lines "
                f"(they imply run object {blake3_hex(implied)})")


def read_head(run_id: str, run_dir: Path, f: Findings) -> str | None:
    try:
        text = (run_dir / "head").read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        f.error(f"run {run_id}: no readable head")
        return None
    m = re.fullmatch(r"([0-9a-f]{64})\s*", text)
    if not m:
        f.error(f"run {run_id}: no readable head (not 64 hex digits)")
        return None
    return m.group(1)


def check_signature(run_id: str, run_dir: Path, head: str | None, key: bytes | None, f: Findings) -> None:
    path = run_dir / "head.sig"
    if not path.exists():
        if key is not None:
            f.error(f"run {run_id}: unsigned (no head.sig), and --key was given")
        return
    try:
        data = path.read_bytes()
        sig = parse_json(data)
        if canonical(sig) != data:
            f.note(f"run {run_id}: head.sig is not in canonical form")
        if not (isinstance(sig, dict) and set(sig) == {"object", "key", "signature"}
                and is_hash(sig["object"]) and re.fullmatch(r"[0-9a-f]{64}", str(sig["key"]))
                and re.fullmatch(r"[0-9a-f]{128}", str(sig["signature"]))):
            raise JsonError("not {object, key, signature} with their hex lengths")
    except (OSError, JsonError) as e:
        (f.error if key is not None else f.note)(f"run {run_id}: head.sig is unreadable: {e}")
        return
    message = SIGNATURE_CONTEXT + bytes.fromhex(sig["object"])
    valid = ed25519_verify(bytes.fromhex(sig["key"]), message, bytes.fromhex(sig["signature"]))
    if key is None:
        f.note(f"run {run_id}: signed by key {sig['key']}; not checked (no --key)"
               + ("" if sig["object"] == head else f"; the signature is of run object {sig['object']}, not the head")
               + ("" if valid else "; and it does not verify"))
        return
    if sig["key"] != key.hex():
        f.error(f"run {run_id}: signed by another key {sig['key']}, not {key.hex()}")
    if sig["object"] != head:
        f.error(f"run {run_id}: the signature is of run object {sig['object']}, not the head {head}")
    if not valid:
        f.error(f"run {run_id}: the signature does not verify")


def check_run(run_id: str, run_dir: Path, walk: Walk, key: bytes | None) -> None:
    f = walk.f
    lines = read_log(run_id, run_dir / "log.jsonl", f)
    if lines is not None:
        check_started(run_id, lines, f)
        check_node_events(run_id, lines, walk, f)
    head = read_head(run_id, run_dir, f)
    if head is not None:
        if not walk.store.has(head):
            f.error(f"missing: run object {head} (named by runs/{run_id}/head)")
        else:
            walk.refer(head, "run object", f"runs/{run_id}/head")
            walk.run()
            run = walk.runs.get(head)
            if run is not None and lines is not None:
                if run["run"] != run_id:
                    f.error(f"run {run_id}: the head's run object is of run {run['run']!r}")
                check_run_object_against_log(head, run, run_id, lines, f, "the head's run object")
                finished = any(line.event and line.event.get("event") == "finished" for line in lines)
                if finished and run["log_lines"] != len(lines):
                    f.error(f"run {run_id}: finished, but the head covers {run['log_lines']} of {len(lines)} log lines")
    check_signature(run_id, run_dir, head, key, f)
    # Every other run object of this run is a function of the log too.
    if lines is not None:
        for h, run in sorted(walk.runs.items()):
            if h != head and run["run"] == run_id:
                check_run_object_against_log(h, run, run_id, lines, f, "run object")


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def verify(home: Path, key: bytes | None) -> tuple[Findings, dict]:
    f = Findings()
    store = Store(home / "archive", f)
    if not store.dir.is_dir():
        f.error(f"missing: {store.dir}")
        return f, {}
    check_format(store)
    scan_objects(store)
    scan_markers(store)
    walk = Walk(store)
    for h in sorted(store.node_markers):
        walk.refer(h, "node", "its marker in archive/nodes/")
    for h in sorted(store.run_markers):
        walk.refer(h, "run object", "its marker in archive/runs/")
    walk.run()
    runs_dir = home / "runs"
    run_ids = sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    for run_id in run_ids:
        check_run(run_id, runs_dir / run_id, walk, key)
    for h, run in sorted(walk.runs.items()):
        if run["run"] not in run_ids:
            f.note(f"run object {h} is of run {run['run']!r}, which has no directory under runs/")
    check_orphans(store, walk)
    counts = {"objects": len(store.objects), "nodes": len(store.node_markers),
              "run_objects": len(store.run_markers), "runs": len(run_ids), "interrupted_writes": store.interrupted}
    return f, counts


def read_key(path: str) -> bytes:
    text = Path(path).read_text("ascii")
    if not re.fullmatch(r"[0-9a-fA-F]{64}\s*", text):
        raise ValueError("a public key file holds 64 hex digits")
    return bytes.fromhex(text.strip())


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

# RFC 8032 §7.1, tests 1-3 and SHA(abc): (secret key, public key, message, signature)
RFC8032_VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"),
    ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
     "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
     "454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e030"
     "3dca179c138ac17ad9bef1177331a704"),
]

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"), ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def self_test() -> int:
    failures = []

    def expect(name, got, want):
        if got != want:
            failures.append(f"{name}: got {got!r}, want {want!r}")

    for bits, text in RFC8785_NUMBERS:
        expect(f"RFC 8785 number {bits}", es_number(struct.unpack(">d", bytes.fromhex(bits))[0]), text)
    for bits in ("7fffffffffffffff", "7ff0000000000000"):
        try:
            es_number(struct.unpack(">d", bytes.fromhex(bits))[0])
            failures.append(f"RFC 8785 number {bits}: NaN/Infinity accepted")
        except JsonError:
            pass
    # RFC 8785 §3.2.2 (sample input) and §3.2.3 (sorting).
    sample = (b'{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n'
              b'  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n'
              b'  "literals": [null, true, false]\n}')
    expect("RFC 8785 §3.2.2", canonical(parse_json(sample)),
           '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
           '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'.encode("utf-8"))
    sorting = (b'{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",'
               b'"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",'
               b'"\\u00f6":"Latin Small Letter O With Diaeresis"}')
    expect("RFC 8785 §3.2.3 order", list(json.loads(canonical(parse_json(sorting)))),
           ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"])
    expect("canonical rejects 1.0", _raises(lambda: parse_canonical(b"1.0")), True)
    expect("canonical rejects spaces", _raises(lambda: parse_canonical(b'{"a": 1}')), True)
    expect("canonical rejects duplicates", _raises(lambda: parse_canonical(b'{"a":1,"a":1}')), True)
    expect("canonical accepts", parse_canonical(b'{"a":[1,0.5,"\\u001f"],"b":null}'), {"a": [1, 0.5, "\x1f"], "b": None})

    for secret, public, message, signature in RFC8032_VECTORS:
        pub, sig = bytes.fromhex(public), bytes.fromhex(signature)
        msg = bytes.fromhex(message)
        expect(f"RFC 8032 sign {public[:8]}", tuple(x.hex() for x in _ed25519_sign(bytes.fromhex(secret), msg)),
               (public, signature))
        expect(f"RFC 8032 verify {public[:8]}", ed25519_verify(pub, msg, sig), True)
        expect(f"RFC 8032 altered message {public[:8]}", ed25519_verify(pub, msg + b"x", sig), False)
        bad = bytearray(sig)
        bad[0] ^= 1
        expect(f"RFC 8032 altered signature {public[:8]}", ed25519_verify(pub, msg, bytes(bad)), False)
        too_big = sig[:32] + (int.from_bytes(sig[32:], "little") + ED_L).to_bytes(32, "little")
        expect(f"RFC 8032 S >= L {public[:8]}", ed25519_verify(pub, msg, too_big), False)

    expect("blake3 of nothing", blake3_hex(b""), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
    expect("manifest ok", parse_manifest(b"100644 " + b"a" * 64 + b" a/b.rs\n100755 " + b"b" * 64 + b" c\n")[1], [])
    expect("manifest empty", parse_manifest(b""), ([], []))
    for bad in (b"100644 " + b"a" * 64 + b" b\n100644 " + b"a" * 64 + b" a\n",
                b"100600 " + b"a" * 64 + b" a\n", b"100644 " + b"a" * 64 + b" a/../b\n",
                b"100644 " + b"a" * 64 + b" a", b"100644 " + b"a" * 64 + b" a b\n"):
        expect(f"manifest refused {bad[-12:]!r}", bool(parse_manifest(bad)[1]), True)

    for failure in failures:
        print(f"self-test FAILED: {failure}")
    print(f"self-test: {'ok' if not failures else f'{len(failures)} failure(s)'}")
    return 1 if failures else 0


def _raises(thunk) -> bool:
    try:
        thunk()
    except JsonError:
        return True
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Verify a hyperagent archive independently (ARCHIVE.md).")
    parser.add_argument("home", nargs="?", help="directory holding archive/ and runs/")
    parser.add_argument("--key", help="public key file (64 hex digits): every run must be signed by it")
    parser.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    parser.add_argument("--self-test", action="store_true", help="run the verifier's own checks and exit")
    args = parser.parse_args(argv)
    if _blake3 is None:
        print("error: the blake3 package is required: python3 -m pip install blake3", file=sys.stderr)
        return 2
    if args.self_test:
        return self_test()
    if args.home is None or not Path(args.home).is_dir():
        parser.print_usage(sys.stderr)
        print("error: <home> must be a directory holding archive/ and runs/", file=sys.stderr)
        return 2
    key = None
    if args.key:
        try:
            key = read_key(args.key)
        except (OSError, ValueError) as e:
            print(f"error: --key {args.key}: {e}", file=sys.stderr)
            return 2
    findings, counts = verify(Path(args.home), key)
    summary = (f"{counts.get('objects', 0)} objects, {counts.get('nodes', 0)} nodes, "
               f"{counts.get('run_objects', 0)} run objects, {counts.get('runs', 0)} runs: "
               f"{len(findings.errors)} error(s), {len(findings.notes)} note(s)")
    if args.json:
        print(json.dumps({"ok": not findings.errors, "errors": findings.errors, "notes": findings.notes,
                          "counts": counts, "summary": summary}, indent=2))
    else:
        for message in findings.errors:
            print(f"error: {message}")
        for message in findings.notes:
            print(f"note: {message}")
        print(("ok: " if not findings.errors else "FAILED: ") + summary)
    return 1 if findings.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
