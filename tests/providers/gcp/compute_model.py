#!/usr/bin/python3
"""Checks JSON against Google's own model of the Compute API: the messages of
testdata/compute_v1_subset.proto (copied from Google's compute.proto), with proto3's JSON mapping
(lowerCamelCase names, int64 as a decimal string, map<string, string> as an object) and the
enums the model names for string fields ("Check the X enum for the list of possible values").

Usage: compute_model.py PROTO MESSAGE JSON_FILE
Prints one line per violation; exit status 1 when there is any, 2 on a usage error.
"""

import json
import re
import sys

FIELD_RE = re.compile(r"^\s*(optional\s+|repeated\s+)?(map<\s*string\s*,\s*string\s*>|[\w.]+)\s+(\w+)\s*=\s*\d+")
ENUM_REF_RE = re.compile(r"Check the (\w+) enum for the list of possible values")


def json_name(name):
    parts = name.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def parse(path):
    """{message: {"fields": {json name: (type, repeated, enum)}, "enums": {enum: {values}}}}"""
    messages = {}
    stack = []  # ("message"|"enum", name)
    comment = []
    for line in open(path):
        s = line.strip()
        if s.startswith("//"):
            comment.append(s)
            continue
        m = re.match(r"^(message|enum)\s+(\w+)\s*\{", s)
        if m:
            stack.append((m.group(1), m.group(2)))
            if m.group(1) == "message":
                messages.setdefault(m.group(2), {"fields": {}, "enums": {}})
            else:
                messages[current_message(stack)]["enums"][m.group(2)] = set()
            comment = []
            continue
        if s == "}":
            if stack:
                stack.pop()
            comment = []
            continue
        if stack and stack[-1][0] == "enum":
            v = re.match(r"^(\w+)\s*=\s*-?\d+", s)
            if v:
                messages[current_message(stack)]["enums"][stack[-1][1]].add(v.group(1))
            comment = []
            continue
        f = FIELD_RE.match(line)
        if f and stack:
            enum = None
            for c in comment:
                r = ENUM_REF_RE.search(c)
                if r:
                    enum = r.group(1)
            typ = "map" if f.group(2).startswith("map<") else f.group(2)
            messages[current_message(stack)]["fields"][json_name(f.group(3))] = (
                typ, (f.group(1) or "").strip() == "repeated", enum)
        if s:
            comment = []
    return messages


def current_message(stack):
    for kind, name in reversed(stack):
        if kind == "message":
            return name
    raise ValueError("no message")


SCALARS = {"string", "bool", "int32", "uint32", "int64", "uint64", "double", "float", "bytes"}


def check(messages, message, value, path, errors):
    if message not in messages:
        errors.append("%s: message %s is not in the model subset" % (path, message))
        return
    if not isinstance(value, dict):
        errors.append("%s: expected an object (%s)" % (path, message))
        return
    model = messages[message]
    for key, item in value.items():
        here = path + "." + key
        if key not in model["fields"]:
            errors.append("%s: %s has no field %s" % (here, message, key))
            continue
        typ, repeated, enum = model["fields"][key]
        if repeated:
            if not isinstance(item, list):
                errors.append("%s: expected a list" % here)
                continue
            for i, element in enumerate(item):
                check_value(messages, message, typ, enum, element, "%s[%d]" % (here, i), errors)
        else:
            check_value(messages, message, typ, enum, item, here, errors)


def check_value(messages, owner, typ, enum, value, path, errors):
    if typ == "map":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            errors.append("%s: expected an object of strings" % path)
    elif typ == "string":
        if not isinstance(value, str):
            errors.append("%s: expected a string" % path)
        elif enum:
            values = messages[owner]["enums"].get(enum)
            if values is None:
                errors.append("%s: enum %s is not in the model subset" % (path, enum))
            elif value not in values:
                errors.append("%s: %r is not one of the %s values" % (path, value, enum))
    elif typ == "bool":
        if not isinstance(value, bool):
            errors.append("%s: expected a boolean" % path)
    elif typ in ("int64", "uint64"):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))):
            errors.append("%s: expected an int64 (a decimal string)" % path)
    elif typ in ("int32", "uint32"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append("%s: expected an int32 number" % path)
    elif typ in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append("%s: expected a number" % path)
    elif typ == "bytes":
        if not isinstance(value, str):
            errors.append("%s: expected base64 text" % path)
    elif typ.split(".")[-1] in messages.get(owner, {}).get("enums", {}):
        # A field typed by an enum (Operation.status): its JSON form is the value's name.
        if value not in messages[owner]["enums"][typ.split(".")[-1]]:
            errors.append("%s: %r is not one of the %s values" % (path, value, typ))
    else:
        check(messages, typ.split(".")[-1], value, path, errors)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    messages = parse(sys.argv[1])
    with open(sys.argv[3]) as f:
        value = json.load(f)
    errors = []
    check(messages, sys.argv[2], value, sys.argv[2], errors)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
