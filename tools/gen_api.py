#!/usr/bin/env python3
"""Generate gantry's wire types from botocore's API models, one Rust module per service.

Run by hand when the pinned model changes (cargo build never runs it), with botocore installed
in a scratch venv (never the project's .venv; no model file is committed):

    python3 -m venv /tmp/genvenv && /tmp/genvenv/bin/pip install botocore==1.44.8
    /tmp/genvenv/bin/python tools/gen_api.py ecs sts logs

To move to a newer model, change PINNED below, the botocore and boto3 pins of
tests/python/requirements.txt (and awscli's, if a newer v1 exists) and the version above
together, regenerate, and build: new shapes may break code that builds wire types by hand.

Each SERVICE (botocore's name for it: ecs, sts, logs, iam, ...) is written to
crates/gantry-api/src/<SERVICE>.rs ('-' becomes '_'); declare a new module in
crates/gantry-api/src/lib.rs under #[rustfmt::skip]. `--check` writes nothing and exits 1 if a
module differs from what the installed botocore generates. `--out DIR` writes elsewhere.

A module holds one Rust type per structure and enum shape of the model (exceptions only where a
member refers to one), an `Operation` enum with `name()`/`from_name()`, and the constants of the
model's metadata: API_VERSION, SIGNING_NAME, PROTOCOLS, and TARGET_PREFIX, JSON_VERSION and
XML_NAMESPACE where the protocol has them (and TIMESTAMP_MEMBERS for services that speak RPC v2
CBOR). Serde names are the model's member names exactly.
Only shape names, member names, types, required lists and enum values are used; the model's
documentation text is not copied.
"""

import argparse
import gzip
import json
import os
import re
import sys

import botocore

PINNED = "1.44.8"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "crates", "gantry-api", "src")

# Reserved words of Rust 2021 (strict and reserved); these take an `r#` prefix.
RUST_KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "try", "typeof", "unsized", "virtual", "yield", "gen",
}
# Words that cannot be raw identifiers; these take a `_` suffix.
NOT_RAW = {"self", "super", "crate", "Self"}
# Names the generated module itself uses; a shape of one of these names would shadow them.
TAKEN = {
    "Operation", "Timestamp", "Blob", "String", "Option", "Vec", "Box", "BTreeMap", "Result",
    "Serialize", "Deserialize", "Default", "Self",
}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load_model(service):
    """botocore's service-2 model of the service, newest API version; (model, api_version)."""
    root = os.path.join(os.path.dirname(botocore.__file__), "data", service)
    if not os.path.isdir(root):
        sys.exit(f"gen_api.py: botocore {botocore.__version__} has no service {service!r}")
    version = max(v for v in os.listdir(root) if os.path.isdir(os.path.join(root, v)))
    base = os.path.join(root, version, "service-2.json")
    if os.path.exists(base + ".gz"):
        with gzip.open(base + ".gz") as f:
            return json.load(f), version
    with open(base) as f:
        return json.load(f), version


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = s.replace("-", "_").lower()
    if s in NOT_RAW:
        return s + "_"
    return "r#" + s if s in RUST_KEYWORDS else s


def variant(value):
    parts = re.split(r"[^A-Za-z0-9]+", value)
    out = "".join(p[:1].upper() + p[1:].lower() if p.isupper() or p.islower() else p[:1].upper() + p[1:] for p in parts if p)
    if out[:1].isdigit():
        out = "V" + out
    if not out or out in NOT_RAW:
        out = "V" + out
    return out


def type_name(shape):
    """The Rust type of a shape name; IAM has some in lowerCamel case, and a shape named as one
    of the TAKEN names (Cloud Map's `Operation`) takes a `Shape` suffix."""
    t = shape[:1].upper() + shape[1:]
    return t + "Shape" if t in TAKEN else t


def generate(service, model, api_version):
    meta = model["metadata"]
    shapes = model["shapes"]
    protocols = meta.get("protocols") or [meta["protocol"]]
    json_like = protocols[0] in ("json", "rest-json")
    query_like = any(p in ("query", "ec2") for p in protocols)
    where = "%s %s" % (service, api_version)

    def fail(msg):
        sys.exit("gen_api.py: %s: %s" % (where, msg))

    def is_document(n):
        return shapes[n]["type"] == "structure" and shapes[n].get("document")

    # Exceptions are errors, not data, and are left out, unless a member refers to one (event
    # streams carry them as events).
    referenced = set()
    for n, s in shapes.items():
        if s.get("exception"):
            continue
        for m in s.get("members", {}).values():
            referenced.add(m["shape"])
        if "member" in s:
            referenced.add(s["member"]["shape"])
        if "value" in s:
            referenced.add(s["value"]["shape"])

    def emitted(n):
        s = shapes[n]
        if s["type"] == "string":
            return "enum" in s
        if s["type"] == "structure":
            return not s.get("exception") or n in referenced
        return False

    used = {}
    for n in shapes:
        if emitted(n):
            t = type_name(n)
            if not IDENT.match(t) or t in TAKEN:
                fail("shape %r cannot be a Rust type name" % n)
            if t in used:
                fail("shapes %r and %r are both the type %s" % (used[t], n, t))
            used[t] = n

    uses = set()

    def rust_type(n):
        t = shapes[n]["type"]
        if t == "string":
            return type_name(n) if "enum" in shapes[n] else "String"
        if t == "integer":
            return "i32"
        if t == "long":
            return "i64"
        if t == "float":
            return "f32"
        if t == "double":
            return "f64"
        if t == "boolean":
            return "bool"
        if t == "timestamp":
            uses.add("Timestamp")
            return "Timestamp"
        if t == "blob":
            uses.add("Blob")
            return "Blob"
        if t == "list":
            return "Vec<%s>" % rust_type(shapes[n]["member"]["shape"])
        if t == "map":
            uses.add("BTreeMap")
            return "BTreeMap<String, %s>" % rust_type(shapes[n]["value"]["shape"])
        if t == "structure":
            return type_name(n)
        fail("shape %r has type %r" % (n, t))

    default_cache = {}

    def has_default(n):
        t = shapes[n]["type"]
        if t == "string":
            return "enum" not in shapes[n]
        if t != "structure" or is_document(n):
            return True
        if n in default_cache:
            return default_cache[n]
        default_cache[n] = True
        ok = all(has_default(shapes[n]["members"][r]["shape"]) for r in shapes[n].get("required", []))
        default_cache[n] = ok
        return ok

    def int_kind(n):
        return {"integer": "i32", "long": "i64"}.get(shapes[n]["type"])

    def direct_structs(n):
        """Structures held by value (not behind a list or map) in structure n."""
        return [m["shape"] for m in shapes[n].get("members", {}).values()
                if shapes[m["shape"]]["type"] == "structure" and not is_document(m["shape"])]

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                todo.extend(direct_structs(n))
        return False

    body = []
    w = body.append
    for name in sorted(shapes):
        if not emitted(name):
            continue
        shape = shapes[name]
        tn = type_name(name)
        if shape["type"] == "string":
            variants = []
            for v in shape["enum"]:
                vn = variant(v)
                while vn in variants:
                    vn += "X"
                variants.append(vn)
            w("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]")
            w("pub enum %s {" % tn)
            for v, vn in zip(shape["enum"], variants):
                w('    #[serde(rename = "%s")]' % v)
                w("    %s," % vn)
            w("}")
            w("impl %s {" % tn)
            w("    /// Every value of the enum, in model order.")
            w("    pub const ALL: &'static [%s] = &[%s];" % (tn, ", ".join("%s::%s" % (tn, vn) for vn in variants)))
            w("    /// The value as it appears on the wire.")
            w("    pub fn as_str(&self) -> &'static str {")
            w("        match self {")
            for v, vn in zip(shape["enum"], variants):
                w('            %s::%s => "%s",' % (tn, vn, v))
            w("        }")
            w("    }")
            w("}")
            w("")
        elif is_document(name):
            w("/// A document: any JSON value.")
            w("pub type %s = serde_json::Value;" % tn)
            w("")
        else:
            required = set(shape.get("required", []))
            derives = ["Debug", "Clone", "PartialEq", "Serialize", "Deserialize"]
            if has_default(name):
                derives.insert(1, "Default")
            w("#[derive(%s)]" % ", ".join(derives))
            w("pub struct %s {" % tn)
            fields = set()
            for mname, m in shape["members"].items():
                mt = m["shape"]
                rt = rust_type(mt)
                if shapes[mt]["type"] == "structure" and not is_document(mt) and reaches(mt, name):
                    rt = "Box<%s>" % rt
                field = snake(mname)
                if field in fields:
                    fail("%s has two members named %s in Rust" % (name, field))
                fields.add(field)
                attrs = ['rename = "%s"' % mname]
                ik = int_kind(mt)
                if mname in required:
                    if ik:
                        attrs.append('deserialize_with = "crate::wire::lenient_%s"' % ik)
                    if shapes[mt]["type"] in ("list", "map"):
                        attrs.append("default")
                    ty = rt
                else:
                    attrs.append("default")
                    attrs.append('skip_serializing_if = "Option::is_none"')
                    if ik:
                        attrs.append('deserialize_with = "crate::wire::lenient_opt_%s"' % ik)
                    ty = "Option<%s>" % rt
                w("    #[serde(%s)]" % ", ".join(attrs))
                w("    pub %s: %s," % (field, ty))
            w("}")
            w("")

    ops = sorted(model["operations"])
    for op in ops:
        if not IDENT.match(op):
            fail("operation %r cannot be a Rust name" % op)
    named_by = "the `X-Amz-Target` suffix" if "targetPrefix" in meta else "the `Action` parameter" if query_like else "the name"
    w("/// Every operation of the API model, with %s that names it." % named_by)
    w("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]")
    w("pub enum Operation {")
    for op in ops:
        w("    %s," % op)
    w("}")
    w("impl Operation {")
    w("    /// Every operation, sorted by name.")
    w("    pub const ALL: &'static [Operation] = &[%s];" % ", ".join("Operation::" + o for o in ops))
    w("    /// The operation's name as in %s." % ("`X-Amz-Target`" if "targetPrefix" in meta else "`Action`" if query_like else "the model"))
    w("    pub fn name(&self) -> &'static str {")
    w("        match self {")
    for op in ops:
        w('            Operation::%s => "%s",' % (op, op))
    w("        }")
    w("    }")
    w("    /// Looks an operation up by its name.")
    w("    pub fn from_name(name: &str) -> Option<Operation> {")
    w("        match name {")
    for op in ops:
        w('            "%s" => Some(Operation::%s),' % (op, op))
    w("            _ => None,")
    w("        }")
    w("    }")
    w("}")
    w("")

    w("/// The API version (`metadata.apiVersion`).")
    w('pub const API_VERSION: &str = "%s";' % meta["apiVersion"])
    w("/// The SigV4 service name (`metadata.signingName`, else `endpointPrefix`).")
    w('pub const SIGNING_NAME: &str = "%s";' % meta.get("signingName", meta["endpointPrefix"]))
    w("/// The wire protocols, preferred first (`metadata.protocols`).")
    w("pub const PROTOCOLS: &[&str] = &[%s];" % ", ".join('"%s"' % p for p in protocols))
    if "targetPrefix" in meta:
        w("/// The `X-Amz-Target` prefix (`metadata.targetPrefix`).")
        w('pub const TARGET_PREFIX: &str = "%s";' % meta["targetPrefix"])
    if "jsonVersion" in meta:
        w("/// The JSON version of `Content-Type: application/x-amz-json-<version>`.")
        w('pub const JSON_VERSION: &str = "%s";' % meta["jsonVersion"])
    if "smithy-rpc-v2-cbor" in protocols:
        # RPC v2 CBOR writes timestamps as tag 1, which JSON cannot say: the front door's
        # bridge tags the members named here (in any structure) when it turns JSON into CBOR.
        stamps = set()
        for n, sh in shapes.items():
            for m, ms in (sh.get("members") or {}).items() if sh["type"] == "structure" else []:
                target = shapes[ms["shape"]]
                if target["type"] == "timestamp":
                    stamps.add(m)
        clash = sorted(
            m for n, sh in shapes.items() if sh["type"] == "structure"
            for m, ms in (sh.get("members") or {}).items()
            if m in stamps and shapes[ms["shape"]]["type"] != "timestamp"
        )
        if clash:
            fail("members %s are timestamps in one structure and not in another" % clash)
        w("/// The members that are timestamps, wherever they appear (RPC v2 CBOR tags them).")
        w("pub const TIMESTAMP_MEMBERS: &[&str] = &[%s];" % ", ".join('"%s"' % m for m in sorted(stamps)))
    if query_like:
        ns = meta.get("xmlNamespace") or "https://%s.amazonaws.com/doc/%s/" % (meta["endpointPrefix"], meta["apiVersion"])
        w("/// The XML namespace of the responses (`metadata.xmlNamespace`).")
        w('pub const XML_NAMESPACE: &str = "%s";' % ns)

    head = []
    h = head.append
    h("// @generated by tools/gen_api.py from botocore %s (%s). Do not edit." % (botocore.__version__, where))
    h("//! Wire types of %s (`%s`, API %s), one per shape of the API model of botocore %s."
      % (meta.get("serviceFullName", service), service, api_version, botocore.__version__))
    h("#![allow(clippy::large_enum_variant, clippy::doc_markdown, clippy::upper_case_acronyms)]")
    h("use serde::{Deserialize, Serialize};")
    if "BTreeMap" in uses:
        h("use std::collections::BTreeMap;")
    h("")
    if "Timestamp" in uses:
        if json_like:
            h("/// Seconds since the Unix epoch, as the JSON protocols encode timestamps.")
            h("pub type Timestamp = f64;")
        else:
            h("/// An ISO 8601 date-time (`2011-07-15T23:28:33.359Z`), as the query and XML protocols encode timestamps.")
            h("pub type Timestamp = String;")
        h("")
    if "Blob" in uses:
        h("/// Bytes, as base64 text (how the JSON and query protocols encode blobs).")
        h("pub type Blob = String;")
        h("")
    return "\n".join(head + body) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("services", nargs="+", metavar="SERVICE", help="botocore service names, e.g. ecs sts logs")
    ap.add_argument("--out", default=DEFAULT_OUT, help="directory of the modules (default: crates/gantry-api/src)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a module is not up to date")
    args = ap.parse_args()
    if botocore.__version__ != PINNED:
        print(f"warning: botocore {botocore.__version__}, pinned {PINNED}", file=sys.stderr)
    stale = []
    for service in args.services:
        model, api_version = load_model(service)
        text = generate(service, model, api_version)
        path = os.path.join(args.out, service.replace("-", "_") + ".rs")
        old = open(path).read() if os.path.exists(path) else None
        if args.check:
            if old != text:
                stale.append(path)
            continue
        if old != text:
            with open(path, "w") as f:
                f.write(text)
        print("%s: %d operations, %d shapes -> %s" % (service, len(model["operations"]), len(model["shapes"]), os.path.relpath(path)), file=sys.stderr)
    if stale:
        print("not up to date: %s" % ", ".join(stale), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
