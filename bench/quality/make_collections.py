#!/usr/bin/env python3
"""Builds the retrieval test collections of `scripts/bench quality` from Debian packages.

    make_collections.py OUT_DIR

Two known-item collections, both made of texts and queries written by others:

  manpages  query: the description on a man page's NAME line; relevant document: that page,
            rendered with groff, without its NAME section, running header and footer. Pages of
            manpages, manpages-dev, perl-doc and libssl-doc. Queries whose description is not
            unique are dropped; every page stays a document. Documents under 200 characters
            are dropped, longer ones cut at 60,000 characters (at a whitespace).
  faq       query: a FAQ question; relevant document: its answer. perlfaq (perl-doc), the
            Python FAQ (the newest python3.X-doc apt has) and the Debian FAQ (debian-faq).

The packages are fetched with `apt-get download` into OUT_DIR/debs and unpacked there with
`dpkg-deb -x`. Each collection goes to OUT_DIR/<name>/: docs.jsonl, queries.jsonl,
qrels.jsonl and meta.json (written last). A collection whose files exist and whose meta.json
records the same package versions (and builder version) is left as it is.

Standard library only: it runs with the system python3.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys

from faq import build_faq
from manpages import build_manpages
from texts import ID_RE, LONG_DOC_CHARS, log

# Bump when the way a collection is built changes, so that existing collections are rebuilt.
BUILDER_VERSION = 1

FILES = ("docs.jsonl", "queries.jsonl", "qrels.jsonl", "meta.json")
MAN_PACKAGES = ["manpages", "manpages-dev", "perl-doc", "libssl-doc"]


# ---------------------------------------------------------------------------------------------
# apt


class Apt:
    """apt-cache and apt-get download, with one `apt-get update` when something is not found."""

    def __init__(self, deb_dir):
        self.deb_dir = deb_dir
        self.updated = False

    def update(self):
        if self.updated:
            return False
        log("apt-get update")
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        self.updated = True
        return True

    def _candidate(self, package):
        out = subprocess.run(["apt-cache", "show", "--no-all-versions", package],
                             capture_output=True, text=True)
        m = re.search(r"^Version: (\S+)$", out.stdout, flags=re.M)
        return m.group(1) if out.returncode == 0 and m else None

    def version(self, package):
        v = self._candidate(package)
        if v is None and self.update():
            v = self._candidate(package)
        if v is None:
            sys.exit(f"apt knows no package {package}")
        return v

    def python_doc(self):
        """The python3.X-doc package with the highest X that apt has."""
        def search():
            out = subprocess.run(["apt-cache", "search", "--names-only", r"^python3\.[0-9]+-doc$"],
                                 capture_output=True, text=True).stdout
            return sorted((int(m.group(1)), m.group(0)) for m in
                          re.finditer(r"^python3\.([0-9]+)-doc", out, flags=re.M))
        found = search()
        if not found and self.update():
            found = search()
        if not found:
            sys.exit("apt has no python3.X-doc package")
        return found[-1][1]

    def unpacked(self, package, version):
        """The directory where package=version is unpacked, downloading it if needed."""
        target = os.path.join(self.deb_dir, "x", f"{package}_{version.replace(':', '%3a')}")
        if os.path.isdir(target):
            return target
        os.makedirs(self.deb_dir, exist_ok=True)
        deb = self._deb(package, version)
        if deb is None:
            log(f"apt-get download {package}={version}")
            done = self._download(package, version)
            if done.returncode != 0 and self.update():
                done = self._download(package, version)
            deb = self._deb(package, version)
            if done.returncode != 0 or deb is None:
                sys.exit(f"apt-get download {package}={version} failed:\n{done.stdout}")
        partial = target + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        subprocess.run(["dpkg-deb", "-x", deb, partial], check=True)
        os.rename(partial, target)
        return target

    def _download(self, package, version):
        # Its output (a warning that root downloads unsandboxed among it) only if it fails.
        return subprocess.run(["apt-get", "download", "-q", f"{package}={version}"],
                              cwd=self.deb_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)

    def _deb(self, package, version):
        # apt-get download names the file package_version_arch.deb, the epoch's ':' as %3a.
        prefix = f"{package}_{version.replace(':', '%3a')}_"
        for name in sorted(os.listdir(self.deb_dir)):
            if name.startswith(prefix) and name.endswith(".deb"):
                return os.path.join(self.deb_dir, name)
        return None


def ensure_tools(apt):
    if shutil.which("groff") and shutil.which("lexgrog") and shutil.which("preconv"):
        return
    log("apt-get install groff-base man-db")
    cmd = ["apt-get", "install", "-y", "-qq", "groff-base", "man-db"]
    if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
        apt.update()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# output


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_collection(out, name, packages, docs, queries, stats):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    meta_path = os.path.join(d, "meta.json")
    if os.path.exists(meta_path):
        os.remove(meta_path)  # written last: its presence says the collection is complete
    for doc_id in docs:
        assert ID_RE.match(doc_id), doc_id
    write_jsonl(os.path.join(d, "docs.jsonl"),
                ({"id": k, "text": docs[k]} for k in sorted(docs)))
    write_jsonl(os.path.join(d, "queries.jsonl"),
                ({"id": k, "text": queries[k]} for k in sorted(queries)))
    write_jsonl(os.path.join(d, "qrels.jsonl"),
                ({"query": k, "doc": k, "relevance": 1} for k in sorted(queries)))
    lengths = [len(t) for t in docs.values()]
    meta = {
        "name": name,
        "builder": BUILDER_VERSION,
        "packages": packages,
        "documents": len(docs),
        "queries": len(queries),
        "qrels": len(queries),
        "median_doc_chars": statistics.median(lengths),
        "mean_doc_chars": round(statistics.mean(lengths), 1),
        "max_doc_chars": max(lengths),
        "fraction_over_2048_chars": round(sum(n > LONG_DOC_CHARS for n in lengths) / len(lengths), 4),
        "median_query_chars": statistics.median(len(q) for q in queries.values()),
        "build": stats,
    }
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(meta_path + ".tmp", meta_path)
    return meta


def summary(meta, note=""):
    pk = ", ".join(f"{k} {v}" for k, v in sorted(meta["packages"].items()))
    return (f"{meta['name']}: {meta['documents']} documents, {meta['queries']} queries, "
            f"median {meta['median_doc_chars']:.0f} chars, "
            f"{100 * meta['fraction_over_2048_chars']:.1f}% over 2,048 chars ({pk}){note}")


def up_to_date(out, name, packages):
    d = os.path.join(out, name)
    if not all(os.path.exists(os.path.join(d, f)) for f in FILES):
        return None
    try:
        meta = json.load(open(os.path.join(d, "meta.json")))
    except (OSError, ValueError):
        return None
    if meta.get("packages") != packages or meta.get("builder") != BUILDER_VERSION:
        return None
    return meta


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.split("\n\n")[1])
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    apt = Apt(os.path.join(out, "debs"))
    python_doc = apt.python_doc()
    wanted = {"manpages": MAN_PACKAGES, "faq": ["perl-doc", python_doc, "debian-faq"]}
    versions = {p: apt.version(p) for ps in wanted.values() for p in ps}
    for name, pkgs in wanted.items():
        packages = {p: versions[p] for p in pkgs}
        meta = up_to_date(out, name, packages)
        if meta:
            print(summary(meta, "; up to date"))
            continue
        roots = {p: apt.unpacked(p, v) for p, v in packages.items()}
        if name == "manpages":
            ensure_tools(apt)
            docs, queries, stats = build_manpages([(p, roots[p]) for p in pkgs])
        else:
            docs, queries, stats = build_faq(roots["perl-doc"], roots[python_doc],
                                             roots["debian-faq"])
        print(summary(write_collection(out, name, packages, docs, queries, stats)), flush=True)


if __name__ == "__main__":
    main()
