#!/usr/bin/python3
"""pgscript.py -- turn a bench/pg_*.sql template into a pgbench script that runs
the server's own statements (text printed by bench/stmts, built from store/).

    pgscript.py STMTS TEMPLATE OUT

In a template:
  {{name(a, b, ...)}}   the SQL of statement `name` with $1 -> a, $2 -> b, ...
                        (arguments are pgbench expressions such as :id, NULL,
                        ARRAY[:p1,:p2]; commas inside [] or () do not split)
  {{name}}              the SQL of `name` unchanged ($n kept: for PREPARE)
Exits 3 with "missing statement NAME" when the server has no such statement
(the route is not written yet), 2 on other errors.

pgbench -M prepared turns every ':word' into a parameter, also inside string
literals (to_char(..., 'HH24:MI:SS')), so colons inside literals are written
as E'\\x3a' escapes: the same string constant after parsing.
"""
import re
import sys


def load(path):
    stmts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            name, nparams, sql = line.split("\t", 2)
            stmts[name] = (int(nparams), sql)
    return stmts


def split_args(s):
    args, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        args.append(cur.strip())
    return args


def escape_literal_colons(sql):
    """'..:..' -> E'..\\x3a..' (only literals that contain a colon)."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch != "'":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        body = []
        while j < n:
            if sql[j] == "'" and j + 1 < n and sql[j + 1] == "'":
                body.append("''")
                j += 2
                continue
            if sql[j] == "'":
                break
            body.append(sql[j])
            j += 1
        text = "".join(body)
        prefix_e = i > 0 and sql[i - 1] in "eE"
        if ":" in text and not prefix_e:
            text = text.replace("\\", "\\\\").replace(":", "\\x3a")
            out.append("E'" + text + "'")
        else:
            out.append("'" + text + "'")
        i = j + 1
    return "".join(out)


def expand(stmts, m):
    name, args = m.group(1), m.group(2)
    if name not in stmts:
        raise KeyError(name)
    nparams, sql = stmts[name]
    if args is not None:
        vals = split_args(args)
        if len(vals) != nparams:
            raise ValueError(f"{name} takes {nparams} parameters, template gives {len(vals)}")
        sql = re.sub(r"\$(\d+)", lambda p: vals[int(p.group(1)) - 1], sql)
    return escape_literal_colons(sql)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    stmts = load(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        tmpl = f.read()
    pat = re.compile(r"\{\{([a-z0-9_]+)(?:\((.*?)\))?\}\}", re.S)
    try:
        text = pat.sub(lambda m: expand(stmts, m), tmpl)
    except KeyError as e:
        print(f"missing statement {e.args[0]}", file=sys.stderr)
        return 3
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    # pgbench wants one statement per line: fold the template's SQL lines.
    lines = [ln for ln in text.splitlines() if not ln.startswith("--")]
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
