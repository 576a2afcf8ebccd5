"""The manpages collection: known-item search over man pages, rendered with groff."""

import gzip
import os
import re
import subprocess
from multiprocessing import Pool

from texts import MAX_DOC_CHARS, MIN_DOC_CHARS, cut, make_id, norm_query, tidy

# ---------------------------------------------------------------------------------------------
# manpages

# Left-adjusted text (no padding spaces between words): appended to the man macros' TH.
GROFF_PREFIX = b".am TH\n.ad l\n..\n"
GROFF = ["groff", "-k", "-t", "-man", "-Tutf8", "-P-cbou", "-rHY=0"]


def man_pages(root):
    """The man page files under root/usr/share/man/manN (no links, no .so stubs' targets)."""
    base = os.path.join(root, "usr", "share", "man")
    if not os.path.isdir(base):
        return []
    found = []
    for section in sorted(os.listdir(base)):
        if not re.fullmatch(r"man[0-9][a-z]*", section):
            continue  # translations live in usr/share/man/<lang>/
        d = os.path.join(base, section)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and not os.path.islink(p):
                found.append(p)
    return found


def read_source(path):
    data = open(path, "rb").read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data


def render_man(path):
    """(page name, NAME description or None, text without NAME/header/footer) or None."""
    src = read_source(path)
    requests = [l for l in src.split(b"\n") if l.strip() and not re.match(rb"^\.\s*\\\"", l)
                and not l.startswith(b"'\\\"")]
    if requests and re.match(rb"^\.so\s", requests[0]):
        return None  # an alias of another page
    name = os.path.basename(path)
    if name.endswith(".gz"):
        name = name[:-3]
    env = dict(os.environ, LC_ALL="C.UTF-8")
    lex = subprocess.run(["lexgrog", path], capture_output=True, text=True, env=env).stdout
    desc = None
    for line in lex.splitlines():
        m = re.search(r': "(.*?) - (.*)"$', line)
        if m and m.group(2).strip():
            desc = norm_query(m.group(2))
            break
    out = subprocess.run(GROFF, input=GROFF_PREFIX + src, capture_output=True, env=env).stdout
    text = out.decode("utf-8", "replace").replace("\u2010", "-").replace("\u2212", "-")
    lines = text.split("\n")
    nonempty = [i for i, l in enumerate(lines) if l.strip()]
    if len(nonempty) < 3:
        return None
    lines = lines[nonempty[0] + 1:nonempty[-1]]  # the running header and footer
    kept, in_name = [], False
    for line in lines:
        if line and not line[0].isspace():  # a section heading starts in the first column
            in_name = line.strip() == "NAME"
        if not in_name:
            kept.append(line)
    return name, desc, tidy("\n".join(kept))


def build_manpages(roots):
    paths = [(pkg, p) for pkg, root in roots for p in man_pages(root)]
    with Pool(os.cpu_count() or 1) as pool:
        rendered = pool.map(render_man, [p for _, p in paths], chunksize=16)
    pages = []
    for (pkg, path), r in zip(paths, rendered):
        if r is not None:
            pages.append((r[0], pkg, path, r[1], r[2]))
    pages.sort()
    docs, descs, seen = {}, {}, set()
    short = 0
    for name, pkg, _path, desc, text in pages:
        if len(text) < MIN_DOC_CHARS:
            short += 1
            continue
        doc_id = make_id("man:" + name)
        if doc_id in seen:
            doc_id = make_id(f"man:{name}:{pkg}")
        seen.add(doc_id)
        docs[doc_id] = cut(text)
        if desc:
            descs[doc_id] = desc
    counts = {}
    for desc in descs.values():
        counts[desc.lower()] = counts.get(desc.lower(), 0) + 1
    queries = {d: q for d, q in descs.items() if counts[q.lower()] == 1}
    stats = {"pages": len(pages), "pages_under_min_chars": short,
             "pages_without_description": len(docs) - len(descs),
             "queries_dropped_not_unique": len(descs) - len(queries),
             "docs_cut_at_max_chars": sum(len(t) >= MAX_DOC_CHARS - 100 for t in docs.values())}
    return docs, queries, stats
